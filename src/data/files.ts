/** File helpers shared by the data readers: reading with typed errors, gzip, line/field splitting. */

import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { DataError, errorText } from './errors.js';

/**
 * Read a whole file.
 * @throws DataError (one line naming the file) when it cannot be read
 */
export function readBytes(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new DataError(`${path}: cannot read file (${errorText(e)})`, { cause: e });
  }
}

/**
 * Read a file, transparently gunzipping it when it starts with the gzip magic `1f 8b`.
 * @throws DataError when the file cannot be read or is corrupt gzip
 */
export function readMaybeGzip(path: string): Uint8Array {
  const raw = readBytes(path);
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      return gunzipSync(raw);
    } catch (e) {
      throw new DataError(`${path}: corrupt gzip data (${errorText(e)})`, { cause: e });
    }
  }
  return raw;
}

/** One line of a text file as a byte range (without the `\n` and a trailing `\r`). */
export interface LineRange {
  /** 1-based line number (for error messages). */
  lineNo: number;
  /** Start byte offset. */
  start: number;
  /** End byte offset (exclusive). */
  end: number;
}

/** Split a byte buffer into lines (`\n`, optional `\r\n`); blank lines are skipped. */
export function splitLines(buf: Uint8Array): LineRange[] {
  const out: LineRange[] = [];
  let start = 0;
  let lineNo = 1;
  for (let i = 0; i <= buf.length; i++) {
    if (i === buf.length || buf[i] === 0x0a) {
      let end = i;
      if (end > start && buf[end - 1] === 0x0d) end--;
      if (end > start) out.push({ lineNo, start, end });
      start = i + 1;
      lineNo++;
    }
  }
  return out;
}

/** Split a line (bytes) on TAB into sub-arrays (views, no copy). */
export function splitTabs(line: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let s = 0;
  for (let i = 0; i <= line.length; i++) {
    if (i === line.length || line[i] === 0x09) {
      out.push(line.subarray(s, i));
      s = i + 1;
    }
  }
  return out;
}

const utf8 = new TextDecoder('utf-8');

/** Decode bytes as UTF-8 text. */
export function bytesToString(b: Uint8Array): string {
  return utf8.decode(b);
}

/**
 * Parse an integer class label (optional surrounding spaces, optional sign).
 * @param where `file:line` for the error message
 * @param numClasses when given, the label must be in `[0, numClasses)`
 * @throws DataError for a non-integer or out-of-range label
 */
export function parseLabel(text: string, where: string, numClasses?: number): number {
  const t = text.trim();
  if (!/^[+-]?\d+$/.test(t)) {
    throw new DataError(`${where}: label ${JSON.stringify(t.slice(0, 20))} is not an integer`);
  }
  const v = Number(t);
  checkLabel(v, where, numClasses);
  return v;
}

/**
 * Check that a label is an integer in `[0, numClasses)` (or just `>= 0` when `numClasses` is unset).
 * @throws DataError otherwise
 */
export function checkLabel(v: number, where: string, numClasses?: number): void {
  if (!Number.isInteger(v) || v < 0 || (numClasses !== undefined && v >= numClasses)) {
    const range = numClasses !== undefined ? `0..${numClasses - 1}` : 'an integer >= 0';
    throw new DataError(`${where}: label ${v} out of range (expected ${range})`);
  }
}

/**
 * Validate an optional positive-integer option.
 * @throws DataError naming the option when it is not an integer >= `min`
 */
export function checkInt(name: string, v: number | undefined, min = 1): void {
  if (v !== undefined && !(Number.isInteger(v) && v >= min)) {
    throw new DataError(`${name} = ${v}: expected an integer >= ${min}`);
  }
}
