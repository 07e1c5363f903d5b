/** Golden verification: every adapter registered, the case runner and the comparison rule. */
import './families/norm.js';
import './families/relpos.js';
import './families/ema.js';
import './families/mega-layer.js';
import './families/nffn.js';
import './families/gca.js';
import './families/layers.js';
import './families/models.js';

export * from './adapters.js';
export * from './compare.js';
export * from './run.js';
