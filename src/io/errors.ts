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

/**
 * Short printable form of an arbitrary value for error messages (JSON-like, truncated to `max`
 * chars). Work is bounded by `max`, not by the value: a structure nested 200k levels deep or a
 * graph of shared references that would expand to 10^39 nodes prints in microseconds.
 */
export function describeValue(v: unknown, max = 60): string {
  const s = brief(v, max);
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}

/** Nesting shown by {@link describeValue} before `[...]` / `{...}`. */
const BRIEF_DEPTH = 8;

function brief(v: unknown, budget: number): string {
  let out = '';
  const walk = (x: unknown, depth: number): void => {
    if (out.length > budget) return;
    if (x === undefined) out += 'undefined';
    else if (x === null) out += 'null';
    else if (typeof x === 'string') out += JSON.stringify(x.length > budget ? x.slice(0, budget) : x);
    else if (typeof x === 'bigint') out += `${x}n`;
    else if (typeof x !== 'object') out += String(x);
    else if (x instanceof Uint8Array) out += `<${x.length} bytes>`;
    else if (ArrayBuffer.isView(x)) out += `<${x.constructor.name}>`;
    else if (x instanceof Map) out += `<Map of ${x.size}>`;
    else if (x instanceof Set) out += `<Set of ${x.size}>`;
    else if (depth >= BRIEF_DEPTH) out += Array.isArray(x) ? '[...]' : '{...}';
    else if (Array.isArray(x)) {
      out += '[';
      for (let i = 0; i < x.length && out.length <= budget; i++) {
        if (i) out += ',';
        walk(x[i], depth + 1);
      }
      out += ']';
    } else {
      out += '{';
      let first = true;
      for (const [k, y] of Object.entries(x)) {
        if (out.length > budget) break;
        out += `${first ? '' : ','}${JSON.stringify(k)}:`;
        first = false;
        walk(y, depth + 1);
      }
      out += '}';
    }
  };
  walk(v, 0);
  return out;
}
