/**
 * `mega-ts/train` (Node): the training loop, Adam, LR schedules, checkpoints, decoding and the
 * arch presets (reference archs and the CPU presets).
 */
export { train, TrainingDivergedError, type TrainOptions, type TrainResult } from './trainer.js';
export * from './optim.js';
export * from './schedule.js';
export { loadCheckpoint, saveCheckpoint, type LoadedCheckpoint, type ModelSpec } from './checkpoint.js';
export { beamSearch, sampleLm, type BeamOptions, type Hypothesis, type SampleOptions, type SampleResult } from './generate.js';
export { allArchNames, buildArch, CPU_PRESETS, resolveModelArgs } from './arch.js';
export { loadModelFile, importFairseqFile } from './fairseq-import.js';
