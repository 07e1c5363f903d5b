/** The tensor floor: Tensor, dtypes, creation, views, RNG, kernel registry. */
export * from './backend.js';
export * from './create.js';
export * from './dtype.js';
export * from './errors.js';
export * from './random.js';
export { residentBytes, residentDebug, residentScope } from './backends/cpu/resident.js';
export * from './shape.js';
export * from './tensor.js';
export * as kernels from './kernels.js';
export * as views from './view.js';
