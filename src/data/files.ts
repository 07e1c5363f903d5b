/** File helpers shared by the data readers: reading with typed errors, gzip, line/field splitting. */

import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { constants as zc, gunzipSync } from 'node:zlib';
import { DataError, errorText } from './errors.js';

/** Largest data file read (or gzip stream inflated) by default: 2 GiB. */
export const MAX_DATA_FILE_BYTES = 2 ** 31;

/**
 * Read a whole regular file of at most `maxBytes` bytes. Devices, pipes and sockets are refused
 * (`/dev/zero` would never end), and so is a larger file, before anything is read.
 * @throws DataError (one line naming the file) when it cannot be read, is not a regular file or is too large
 */
export function readBytes(path: string, maxBytes = MAX_DATA_FILE_BYTES): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new DataError(`${path}: cannot read file (${errorText(e)})`, { cause: e });
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new DataError(`${path}: is a folder; expected a file`);
    if (!st.isFile()) throw new DataError(`${path}: not a regular file (a device, pipe or socket); expected a file`);
    if (st.size > maxBytes) throw new DataError(`${path}: ${st.size} bytes, more than the ${maxBytes}-byte limit of a data file`);
    return readFileSync(fd);
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(`${path}: cannot read file (${errorText(e)})`, { cause: e });
  } finally {
    closeSync(fd);
  }
}

/** Whether bytes start with the gzip magic `1f 8b`. */
export function isGzip(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
}

/**
 * Inflate a gzip stream to at most `maxBytes` bytes.
 * @param limitText how the limit is described in the error (default: the data-file limit)
 * @throws DataError when the stream is corrupt or inflates to more than `maxBytes`
 */
export function gunzipBounded(raw: Uint8Array, path: string, maxBytes: number, limitText = `the ${maxBytes}-byte limit of a data file`): Uint8Array {
  try {
    return gunzipSync(raw, { maxOutputLength: Math.max(1, maxBytes) });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new DataError(`${path}: decompresses to more than ${limitText}`);
    throw new DataError(`${path}: corrupt gzip data (${errorText(e)})`, { cause: e });
  }
}

/**
 * The first bytes (at least `n` when the stream has them) of a gzip stream, inflating only a short
 * prefix of it (so a small bomb cannot expand here).
 */
export function gunzipHead(raw: Uint8Array, path: string, n: number): Uint8Array {
  let out = new Uint8Array(0);
  for (const take of [256, 4096, 65536]) {
    try {
      out = gunzipSync(raw.subarray(0, take), { finishFlush: zc.Z_SYNC_FLUSH, maxOutputLength: 1100 * take + 1024 });
    } catch (e) {
      throw new DataError(`${path}: corrupt gzip data (${errorText(e)})`, { cause: e });
    }
    if (out.length >= n || take >= raw.length) break;
  }
  return out;
}

/** Text data compresses far less than this; a stream inflating more is a bomb, not data. */
const MAX_GZIP_RATIO = 64;

/**
 * Read a file, transparently gunzipping it when it starts with the gzip magic `1f 8b`; the file and
 * the inflated data are each limited to `maxBytes`, and inflation also to 64 × the compressed size
 * (at least 64 MiB), so a small bomb fails early.
 * @throws DataError when the file cannot be read, is corrupt gzip or is too large
 */
export function readMaybeGzip(path: string, maxBytes = MAX_DATA_FILE_BYTES): Uint8Array {
  const raw = readBytes(path, maxBytes);
  if (!isGzip(raw)) return raw;
  const ratioCap = Math.max(2 ** 26, MAX_GZIP_RATIO * raw.length);
  if (ratioCap >= maxBytes) return gunzipBounded(raw, path, maxBytes);
  return gunzipBounded(raw, path, ratioCap, `${ratioCap} bytes (${MAX_GZIP_RATIO} x its ${raw.length} compressed bytes, at least 64 MiB): not plain data`);
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
