/** `mega-ts/models`: the Mega modules and the four models, their arch presets and builders. */
export * from './models/presets.js';
export { LRAModel, type SecondInput } from './models/lra.js';
export { MegaLanguageModel, type LmCriterion } from './models/lm.js';
export * from './adaptive/index.js';
export { MegaModel, type EncoderOut } from './models/nmt.js';
export { SCRawModel } from './models/speech.js';
export type { TaskInfo } from './models/common.js';
export { IncrementalState } from './incremental.js';
export * from './ema.js';
export * from './attention.js';
export * from './cross-attention.js';
export * from './nffn.js';
export * from './relpos.js';
export * from './layers.js';
