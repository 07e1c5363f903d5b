/**
 * safetensors encoding and decoding of bytes (no file system: this part also runs in a browser);
 * `safetensors.ts` adds the file functions. Format (https://github.com/huggingface/safetensors):
 *
 *   [u64 little-endian N][N bytes UTF-8 JSON header][data buffer]
 *
 * The header maps tensor name → `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to
 * the data buffer, which the tensors must cover exactly, without holes or overlaps) plus an
 * optional `"__metadata__"` string → string map. We write dtypes F32/F64/I32/BOOL, pad the header
 * with spaces so the data starts on an 8-byte boundary and order tensors by decreasing item size
 * then name (keeps every tensor aligned). On read we also accept F16/BF16 (→ f32) and
 * I64/I16/I8/U8 (→ i32, range-checked).
 *
 * Checksums: with `{ checksums: true }` the writer stores, in the metadata key `tensor_sha256`, a
 * JSON object mapping every tensor name to the first 16 hex digits (64 bits) of the SHA-256 of its
 * data bytes. The reader checks them whenever the key is present, so a flipped bit in a tensor is
 * an error naming the file and the tensor instead of silently different weights.
 */
import { CheckpointError, describeValue } from './errors.js';
import {
  type RawDType,
  type RawTensor,
  type SourceDType,
  SOURCE_ITEMSIZE,
  SOURCE_TO_RAW,
  checkRawTensor,
  checkShape,
  decodeLE,
  encodeLE,
  numel,
  rawItemSize,
} from './raw.js';
import { sha256Hex } from './sha256.js';

/** Decoded content of a safetensors file. */
export interface SafetensorsContent {
  /** Tensor name → tensor, in header order. */
  tensors: Record<string, RawTensor>;
  /** The `__metadata__` map (`{}` when absent). */
  metadata: Record<string, string>;
  /** `verified`: every tensor matched its stored checksum; `absent`: the file stores none. */
  checksums: 'verified' | 'absent';
}

/** Options of {@link encodeSafetensors}. */
export interface SafetensorsWriteOptions {
  /** Store per-tensor data checksums in the metadata (key {@link CHECKSUM_KEY}). */
  checksums?: boolean;
}

/** Metadata key of the per-tensor data checksums. */
export const CHECKSUM_KEY = 'tensor_sha256';

/** Checksum of tensor data bytes: the first 16 hex digits of their SHA-256. */
export function dataChecksum(bytes: Uint8Array): string {
  return sha256Hex(bytes).slice(0, 16);
}

const METADATA_KEY = '__metadata__';
/** Largest header we accept (same limit as the reference implementation). */
const MAX_HEADER = 100_000_000;

const WRITE_DTYPE: Readonly<Record<RawDType, string>> = { f32: 'F32', f64: 'F64', i32: 'I32', bool: 'BOOL' };
const READ_DTYPE: Readonly<Record<string, SourceDType>> = {
  F32: 'f32',
  F64: 'f64',
  I32: 'i32',
  BOOL: 'bool',
  F16: 'f16',
  BF16: 'bf16',
  I64: 'i64',
  I16: 'i16',
  I8: 'i8',
  U8: 'u8',
};

function setKey(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/**
 * Serialise tensors (+ optional string metadata) to safetensors bytes.
 * @throws CheckpointError on an inconsistent tensor, a reserved/empty name or non-string metadata
 */
export function encodeSafetensors(tensors: Record<string, RawTensor>, metadata?: Record<string, string>, options: SafetensorsWriteOptions = {}): Uint8Array {
  const names = Object.keys(tensors);
  for (const name of names) {
    if (name === '' || name === METADATA_KEY) throw new CheckpointError(`safetensors: invalid tensor name ${JSON.stringify(name)}`);
    checkRawTensor(tensors[name], `safetensors tensor ${JSON.stringify(name)}`, CheckpointError);
  }
  names.sort((a, b) => rawItemSize(tensors[b].dtype) - rawItemSize(tensors[a].dtype) || (a < b ? -1 : a > b ? 1 : 0));
  const blobs = names.map((name) => encodeLE(tensors[name]));
  const header: Record<string, unknown> = {};
  if (metadata !== undefined || options.checksums) {
    const meta: Record<string, string> = {};
    for (const [k, v] of Object.entries(metadata ?? {})) {
      if (typeof v !== 'string') throw new CheckpointError(`safetensors metadata ${JSON.stringify(k)} is ${describeValue(v)}, expected a string`);
      setKey(meta, k, v);
    }
    if (options.checksums) {
      const sums: Record<string, string> = {};
      names.forEach((name, i) => setKey(sums, name, dataChecksum(blobs[i])));
      setKey(meta, CHECKSUM_KEY, JSON.stringify(sums));
    }
    setKey(header, METADATA_KEY, meta);
  }
  let offset = 0;
  names.forEach((name, i) => {
    const t = tensors[name];
    const end = offset + blobs[i].length;
    setKey(header, name, { dtype: WRITE_DTYPE[t.dtype], shape: t.shape, data_offsets: [offset, end] });
    offset = end;
  });
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const b of blobs) {
    out.set(b, pos);
    pos += b.length;
  }
  return out;
}

/**
 * Parse safetensors bytes. Tensor data is copied into fresh aligned typed arrays.
 * @param label name used in error messages (e.g. the file path)
 * @throws CheckpointError on a truncated file, a bad header or inconsistent offsets
 */
export function decodeSafetensors(bytes: Uint8Array, label = 'safetensors'): SafetensorsContent {
  const fail = (msg: string): never => {
    throw new CheckpointError(`${label}: ${msg}`);
  };
  if (bytes.length < 8) fail(`truncated safetensors file: ${bytes.length} bytes, need at least 8 for the header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER)) fail(`header length ${n64} exceeds the ${MAX_HEADER}-byte limit (corrupt or not a safetensors file)`);
  const n = Number(n64);
  if (8 + n > bytes.length) fail(`truncated safetensors file: header claims ${n} bytes but only ${bytes.length - 8} follow the length field`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    return fail(`bad header: not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    return fail(`bad header: expected a JSON object, got ${describeValue(header)}`);
  }
  const data = bytes.subarray(8 + n);
  const metadata: Record<string, string> = {};
  const tensors: Record<string, RawTensor> = {};
  const spans: Array<[number, number, string]> = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (info === null || typeof info !== 'object' || Array.isArray(info))
        fail(`bad header: __metadata__ must be an object of strings, got ${describeValue(info)}`);
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`bad header: __metadata__[${JSON.stringify(k)}] is ${describeValue(v)}, expected a string`);
        setKey(metadata, k, v);
      }
      continue;
    }
    const what = `tensor ${JSON.stringify(name)}`;
    if (info === null || typeof info !== 'object' || Array.isArray(info))
      fail(`bad header: ${what} entry is ${describeValue(info)}, expected {dtype, shape, data_offsets}`);
    const { dtype, shape, data_offsets: offs } = info as Record<string, unknown>;
    const src = typeof dtype === 'string' ? READ_DTYPE[dtype] : undefined;
    if (src === undefined)
      return fail(`bad header: ${what} has unsupported dtype ${describeValue(dtype)} (expected one of ${Object.keys(READ_DTYPE).join(', ')})`);
    const sh = checkShape(shape, `${label}: bad header: ${what}`, CheckpointError);
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0) || offs[0] > offs[1]) {
      return fail(`bad header: ${what} has data_offsets ${describeValue(offs)}, expected [begin, end] with 0 <= begin <= end`);
    }
    const [begin, end] = offs as [number, number];
    const want = numel(sh) * SOURCE_ITEMSIZE[src];
    if (end - begin !== want) fail(`bad header: ${what} spans ${end - begin} bytes, expected ${want} for shape [${sh.join(', ')}] of ${dtype}`);
    if (end > data.length) fail(`truncated safetensors file: ${what} needs data bytes [${begin}, ${end}) but only ${data.length} are present`);
    spans.push([begin, end, name]);
    setKey(tensors, name, { dtype: SOURCE_TO_RAW[src], shape: sh, data: decodeLE(data.subarray(begin, end), src, `${label}: ${what}`, CheckpointError) });
  }
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let covered = 0;
  for (const [begin, end, name] of spans) {
    if (begin !== covered)
      fail(`bad header: tensor ${JSON.stringify(name)} starts at ${begin}, expected ${covered} (data must be covered without holes or overlaps)`);
    covered = end;
  }
  if (covered !== data.length) fail(`bad header: tensors cover ${covered} data bytes but the file has ${data.length} (trailing bytes or truncation)`);
  const stored = metadata[CHECKSUM_KEY];
  if (stored === undefined) return { tensors, metadata, checksums: 'absent' };
  let sums: unknown;
  try {
    sums = JSON.parse(stored);
  } catch {
    sums = undefined;
  }
  if (sums === null || typeof sums !== 'object' || Array.isArray(sums)) return fail(`bad header: __metadata__.${CHECKSUM_KEY} is not a JSON object`);
  const byName = sums as Record<string, unknown>;
  for (const [begin, end, name] of spans) {
    const want = Object.hasOwn(byName, name) ? byName[name] : undefined;
    if (typeof want !== 'string') fail(`tensor ${JSON.stringify(name)}: no checksum stored for it in __metadata__.${CHECKSUM_KEY}`);
    if (dataChecksum(data.subarray(begin, end)) !== want) fail(`tensor ${JSON.stringify(name)}: data checksum mismatch (the file is corrupt)`);
  }
  return { tensors, metadata, checksums: 'verified' };
}
