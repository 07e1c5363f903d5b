/**
 * fairseq's indexed dataset, the "mmap" implementation `fairseq-preprocess` writes by default
 * (`<prefix>.bin` + `<prefix>.idx`).
 *
 * `.bin` has no header: the token ids of every sentence, concatenated, in the dtype named by the
 * index. `.idx` (little-endian):
 *
 * | offset | size | content |
 * |---|---|---|
 * | 0 | 9 | magic `MMIDIDX\0\0` |
 * | 9 | 8 | u64 version (1) |
 * | 17 | 1 | u8 dtype code: 1 uint8, 2 int8, 3 int16, 4 int32, 5 int64, 6 / 7 float64, 8 uint16 |
 * | 18 | 8 | u64 N (sentences) |
 * | 26 | 4N | int32 sizes (tokens of each sentence, `</s>` included) |
 * | 26+4N | 8N | int64 byte offsets of each sentence in `.bin` |
 *
 * So `.idx` is exactly `26 + 12N` bytes and `.bin` is `itemsize × Σ sizes` bytes. The older
 * "cached"/"lazy" format (magic `TNTIDX\0\0`) is recognised and refused with a clear message.
 */
import { existsSync } from 'node:fs';
import { DataError } from '../errors.js';
import { readBytes } from '../files.js';

/** Magic of the mmap index (9 bytes). */
export const MMAP_MAGIC = Uint8Array.from([0x4d, 0x4d, 0x49, 0x44, 0x49, 0x44, 0x58, 0x00, 0x00]);
/** Magic of the older cached / lazy index (8 bytes). */
export const LEGACY_MAGIC = Uint8Array.from([0x54, 0x4e, 0x54, 0x49, 0x44, 0x58, 0x00, 0x00]);
/** Bytes of the `.idx` header before the sizes. */
export const IDX_HEADER_BYTES = 26;

/** A dtype fairseq's mmap builder can write: name and item size in bytes. */
export interface IndexedDType {
  readonly name: 'uint8' | 'int8' | 'int16' | 'int32' | 'int64' | 'float64' | 'uint16';
  readonly itemsize: number;
}

/** fairseq's dtype codes (`indexed_dataset.dtypes`; 6 and 7 are both float64). */
export const DTYPE_CODES: Readonly<Record<number, IndexedDType>> = {
  1: { name: 'uint8', itemsize: 1 },
  2: { name: 'int8', itemsize: 1 },
  3: { name: 'int16', itemsize: 2 },
  4: { name: 'int32', itemsize: 4 },
  5: { name: 'int64', itemsize: 8 },
  6: { name: 'float64', itemsize: 8 },
  7: { name: 'float64', itemsize: 8 },
  8: { name: 'uint16', itemsize: 2 },
};

/** An indexed dataset read into memory. */
export interface IndexedDataset {
  /** The prefix it was read from (`<prefix>.bin` / `.idx`). */
  readonly prefix: string;
  /** dtype code of `.bin`. */
  readonly dtypeCode: number;
  /** Tokens of each sentence (`</s>` included). */
  readonly sizes: Int32Array;
  /** Number of sentences. */
  readonly length: number;
  /** Sentence `i` as token ids (a view; do not modify). */
  get(i: number): Int32Array;
}

function hasPrefix(buf: Uint8Array, magic: Uint8Array): boolean {
  if (buf.length < magic.length) return false;
  for (let i = 0; i < magic.length; i++) if (buf[i] !== magic[i]) return false;
  return true;
}

function hex(buf: Uint8Array, n: number): string {
  return Array.from(buf.subarray(0, n), (b) => b.toString(16).padStart(2, '0')).join(' ');
}

/** Whether `<prefix>.idx` and `<prefix>.bin` both exist. */
export function indexedDatasetExists(prefix: string): boolean {
  return existsSync(`${prefix}.idx`) && existsSync(`${prefix}.bin`);
}

/** Parsed `.idx`: dtype, sizes, pointers (checked against each other). */
export function readIndex(path: string): { dtypeCode: number; sizes: Int32Array; pointers: Float64Array } {
  const buf = readBytes(path);
  if (hasPrefix(buf, LEGACY_MAGIC)) {
    throw new DataError(`${path}: a fairseq "cached"/"lazy" index (magic TNTIDX); expected the mmap format (magic "MMIDIDX", --dataset-impl mmap)`);
  }
  if (!hasPrefix(buf, MMAP_MAGIC)) {
    throw new DataError(
      `${path}: not a fairseq mmap index (first bytes ${hex(buf, 9) || '(empty file)'}; expected magic 4d 4d 49 44 49 44 58 00 00 "MMIDIDX")`,
    );
  }
  if (buf.length < IDX_HEADER_BYTES) throw new DataError(`${path}: ${buf.length} bytes, too short for the index header (expected >= ${IDX_HEADER_BYTES})`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const version = dv.getBigUint64(9, true);
  if (version !== 1n) throw new DataError(`${path}: index version ${version} (expected 1)`);
  const code = buf[17]!;
  if (!DTYPE_CODES[code]) throw new DataError(`${path}: dtype code ${code} (expected one of 1..8)`);
  const nBig = dv.getBigUint64(18, true);
  const expected = BigInt(IDX_HEADER_BYTES) + 12n * nBig;
  if (BigInt(buf.length) !== expected) {
    throw new DataError(`${path}: ${buf.length} bytes for ${nBig} sentences (expected 26 + 12 x ${nBig} = ${expected} bytes)`);
  }
  const n = Number(nBig);
  const sizes = new Int32Array(n);
  const pointers = new Float64Array(n);
  const item = DTYPE_CODES[code]!.itemsize;
  let offset = 0;
  for (let i = 0; i < n; i++) {
    const s = dv.getInt32(IDX_HEADER_BYTES + 4 * i, true);
    if (s < 0) throw new DataError(`${path}: sentence ${i} has size ${s} (expected >= 0)`);
    sizes[i] = s;
    const p = Number(dv.getBigInt64(IDX_HEADER_BYTES + 4 * n + 8 * i, true));
    if (p !== offset) throw new DataError(`${path}: sentence ${i} starts at byte ${p} of .bin (expected ${offset}, the sum of the previous sizes x ${item})`);
    pointers[i] = p;
    offset += s * item;
  }
  return { dtypeCode: code, sizes, pointers };
}

/** Decode `count` items of `.bin` bytes as int32 token ids. */
function decode(bin: Uint8Array, code: number, path: string): Int32Array {
  const { itemsize } = DTYPE_CODES[code]!;
  const n = bin.length / itemsize;
  const dv = new DataView(bin.buffer, bin.byteOffset, bin.byteLength);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let v: number;
    switch (code) {
      case 1:
        v = bin[i]!;
        break;
      case 2:
        v = dv.getInt8(i);
        break;
      case 3:
        v = dv.getInt16(2 * i, true);
        break;
      case 4:
        v = dv.getInt32(4 * i, true);
        break;
      case 5:
        v = Number(dv.getBigInt64(8 * i, true));
        break;
      case 8:
        v = dv.getUint16(2 * i, true);
        break;
      default:
        v = dv.getFloat64(8 * i, true);
    }
    if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) throw new DataError(`${path}: item ${i} is ${v} (expected a token id, an integer in 0..2^31-1)`);
    out[i] = v;
  }
  return out;
}

/**
 * Reads `<prefix>.idx` and `<prefix>.bin`.
 * @throws DataError for a missing file, a wrong magic / version / dtype code, an index whose size
 *   or pointers do not match its sentence count, or a `.bin` whose size does not match the index
 */
export function readIndexedDataset(prefix: string): IndexedDataset {
  for (const ext of ['.idx', '.bin']) {
    if (!existsSync(prefix + ext)) throw new DataError(`${prefix}${ext}: no such file (expected a fairseq indexed dataset ${prefix}.bin + ${prefix}.idx)`);
  }
  const { dtypeCode, sizes, pointers } = readIndex(`${prefix}.idx`);
  const bin = readBytes(`${prefix}.bin`);
  const item = DTYPE_CODES[dtypeCode]!.itemsize;
  let total = 0;
  for (const s of sizes) total += s;
  if (bin.length !== total * item) {
    throw new DataError(`${prefix}.bin: ${bin.length} bytes (expected ${total * item}: ${total} tokens x ${item} bytes, from ${prefix}.idx)`);
  }
  const tokens = decode(bin, dtypeCode, `${prefix}.bin`);
  return {
    prefix,
    dtypeCode,
    sizes,
    length: sizes.length,
    get(i: number): Int32Array {
      if (!(i >= 0 && i < sizes.length)) throw new DataError(`${prefix}: sentence index ${i} out of range [0, ${sizes.length})`);
      const start = pointers[i]! / item;
      return tokens.subarray(start, start + sizes[i]!);
    },
  };
}
