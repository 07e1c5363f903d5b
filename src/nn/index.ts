/** The nn floor: Module, layers, norms, initialisers. */
export * from './errors.js';
export * from './init.js';
export * from './layers.js';
export * from './module.js';
export * from './norm.js';
