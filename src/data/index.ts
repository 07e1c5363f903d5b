/** Data floor: readers, generators, vocabularies and batching (plain typed arrays, no Tensor). */
export * from './errors.js';
export * from './rng.js';
export * from './vocab.js';
export * from './files.js';
export * from './batch.js';
export * from './listops.js';
export * from './tsv.js';
export * from './translation.js';
export * from './lmtext.js';
export * from './idx.js';
export * from './wav.js';
