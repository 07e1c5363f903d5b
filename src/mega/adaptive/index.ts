/** Adaptive input and adaptive softmax (the WikiText-103 language model's embedding and output). */
export * from './cutoff.js';
export * from './input.js';
export * from './softmax.js';
