/**
 * safetensors files: read, and write atomically (temp file + fsync + rename). The byte encoding
 * and decoding live in `safetensors-codec.ts` (re-exported here).
 */
import { type AtomicWriteOptions, writeFileAtomic } from './atomic.js';
import { CheckpointError } from './errors.js';
import type { RawTensor } from './raw.js';
import { readFileBounded } from './read.js';
import { decodeSafetensors, encodeSafetensors, type SafetensorsContent, type SafetensorsWriteOptions } from './safetensors-codec.js';

export {
  CHECKSUM_KEY,
  dataChecksum,
  decodeSafetensors,
  encodeSafetensors,
  type SafetensorsContent,
  type SafetensorsWriteOptions,
} from './safetensors-codec.js';

/**
 * Write a safetensors file atomically (temp file + fsync + rename; the old file survives errors).
 * @throws CheckpointError on invalid input; filesystem errors as thrown by node:fs
 */
export function writeSafetensors(
  path: string,
  tensors: Record<string, RawTensor>,
  metadata?: Record<string, string>,
  options?: AtomicWriteOptions & SafetensorsWriteOptions,
): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata, options), options);
}

/**
 * Read a safetensors file.
 * @throws CheckpointError if unreadable, truncated or malformed (message names the path)
 */
export function readSafetensors(path: string): SafetensorsContent {
  let bytes: Uint8Array;
  try {
    bytes = readFileBounded(path, CheckpointError);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(`cannot read safetensors file ${path}: ${(e as Error).message}`, { cause: e });
  }
  return decodeSafetensors(bytes, path);
}
