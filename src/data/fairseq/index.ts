/** fairseq's on-disk formats: indexed datasets, dictionaries and the Mega tasks' folder layouts. */
export * from './indexed.js';
export * from './dictionary.js';
export * from './tasks.js';
export * from './numpy-random.js';
export * from './order.js';
