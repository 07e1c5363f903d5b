/** The autograd floor: tape, differentiable ops, gradcheck. */
export * from './engine.js';
export * from './gradcheck.js';
export * from './ops/activation.js';
export * from './ops/arith.js';
export * from './ops/conv.js';
export * from './ops/indexing.js';
export * from './ops/linalg.js';
export * from './ops/nn.js';
export * from './ops/reduce.js';
export * from './ops/shape.js';
