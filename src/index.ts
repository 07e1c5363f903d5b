/**
 * mega-ts: Mega (Moving Average Equipped Gated Attention) in TypeScript.
 *
 * The package root: load a model (`loadModel`), run it (`classify`, `generate`, `embed`, or the
 * typed `forward` of each model class), free memory (`tidy`, `dispose`, `keep`), pick the backend
 * and threads. Tensors, modules and training are the subpaths `mega-ts/tensor`, `mega-ts/nn`,
 * `mega-ts/models` (src/mega), `mega-ts/train` (Node). The same entry bundles for the browser.
 */
export { loadModel, MODEL_FOLDER_FILES, type LoadOptions, type ModelFiles, type ModelSource } from './api/load.js';
export { AudioClassifier, LanguageModel, SequenceClassifier, Translator, type Pretrained } from './api/models.js';
export { classify, embed, generate, type Classification, type GeneratedToken, type GenerateOptions, type ModelInput } from './api/tasks.js';
export { Tokenizer } from './api/tokenizer.js';
export { MODEL_FOLDER_FORMAT, parseModelConfig, type ModelConfig, type TokenizerConfig } from './api/config.js';
export { modelFolderFiles } from './api/export.js';
export { dispose, keep, tidy } from './api/memory.js';
export { useBackend, setNumThreads, getNumThreads, simdStatus, threadStats } from './api/backend.js';
export { MegaError, isUserError } from './errors.js';
export { Tensor } from './tensor/tensor.js';
export { tensor, zeros, ones, fromArray } from './tensor/create.js';
export type { DType, FloatDType } from './tensor/dtype.js';
export { noGrad } from './autograd/engine.js';
export { Dictionary } from './data/vocab.js';
