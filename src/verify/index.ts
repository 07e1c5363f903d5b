/** Golden verification: every adapter registered, the case runner and the comparison rule. */
import './families/norm.js';

export * from './adapters.js';
export * from './compare.js';
export * from './run.js';
