/**
 * File formats: `mega-golden/1` reference cases, fairseq/PyTorch `.pt` checkpoints (read-only, no
 * code execution), safetensors, atomic file writes. All readers produce `RawTensor` records.
 */
export { CheckpointError, FormatError } from './errors.js';
export type { IoErrorOptions } from './errors.js';
export type { RawDType, RawData, RawTensor, SourceDType } from './raw.js';
export { checkRawTensor, decodeLE, encodeLE, isRawTensor, numel, rawItemSize, rawTensorsEqual } from './raw.js';
export { GOLDEN_FORMAT, decodeGolden, encodeGolden, readGoldenFile } from './golden.js';
export type { GoldenCase, GoldenReference, GoldenStep, GoldenTask, TensorMap } from './golden.js';
export { decodeFairseqCheckpoint, loadTorchZip, pyToPlain, readFairseqCheckpoint } from './pt.js';
export type { FairseqCheckpoint } from './pt.js';
export { ALLOWED_GLOBALS, PyObject, PyOrderedDict, unpickle } from './pickle.js';
export type { PyGlobal, UnpickleOptions } from './pickle.js';
export { ZipArchive, crc32 } from './zip.js';
export type { ZipEntry } from './zip.js';
export { decodeSafetensors, encodeSafetensors, readSafetensors, writeSafetensors } from './safetensors.js';
export type { SafetensorsContent } from './safetensors.js';
export { writeFileAtomic } from './atomic.js';
export type { AtomicWriteOptions } from './atomic.js';
