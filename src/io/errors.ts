/**
 * Typed errors raised by the readers and writers in `src/io`.
 *
 * Every message names the offending value (file, tensor, key, opcode, ...) and what was expected,
 * so that a caller such as the golden-check CLI can print it as one FAIL line instead of crashing.
 */

import { MegaError, type MegaErrorOptions } from '../errors.js';

/** Options accepted by the io error constructors. */
export type IoErrorOptions = MegaErrorOptions;

/**
 * A golden file (`mega-golden/1` msgpack) is malformed: unreadable, wrong `format`, missing or
 * mistyped keys, bad tensor encoding (unknown dtype, byte length != product(shape) * itemsize, ...).
 */
export class FormatError extends MegaError {
  static override readonly kind = 'user';
}

/**
 * A model checkpoint (fairseq/PyTorch `.pt` zip + pickle, or `.safetensors`) is malformed,
 * truncated, uses an unsupported feature (zip64, encryption, unknown opcode), or references a
 * pickle global outside the allow-list.
 */
export class CheckpointError extends MegaError {
  static override readonly kind = 'user';
}

/** Constructor of one of the io error classes; helpers take it to raise the caller's error type. */
export type IoErrorClass = new (message: string, options?: IoErrorOptions) => Error;

/** Short printable form of an arbitrary value for error messages (truncated to `max` chars). */
export function describeValue(v: unknown, max = 60): string {
  let s: string;
  if (v === undefined) s = 'undefined';
  else if (typeof v === 'string') s = JSON.stringify(v);
  else if (typeof v === 'bigint') s = `${v}n`;
  else if (v instanceof Uint8Array) s = `<${v.length} bytes>`;
  else if (ArrayBuffer.isView(v)) s = `<${v.constructor.name}>`;
  else if (v instanceof Map) s = `<Map of ${v.size}>`;
  else {
    try {
      s = JSON.stringify(v) ?? String(v);
    } catch {
      s = String(v);
    }
  }
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}
