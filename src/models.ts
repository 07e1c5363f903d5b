/** `mega-ts/models`: the Mega modules and the four models, their arch presets and builders. */
export * from './mega/models/presets.js';
export { LRAModel, type SecondInput } from './mega/models/lra.js';
export { MegaLanguageModel } from './mega/models/lm.js';
export { MegaModel, type EncoderOut } from './mega/models/nmt.js';
export { SCRawModel } from './mega/models/speech.js';
export type { TaskInfo } from './mega/models/common.js';
export { IncrementalState } from './mega/incremental.js';
export * from './mega/ema.js';
export * from './mega/attention.js';
export * from './mega/cross-attention.js';
export * from './mega/nffn.js';
export * from './mega/relpos.js';
export * from './mega/layers.js';
