/**
 * `RawTensor`: the plain tensor record shared by every reader/writer in `src/io` (golden msgpack,
 * PyTorch `.pt`, safetensors). It does not depend on the project's `Tensor` class.
 *
 * Data is C-contiguous (row-major) with `data.length === product(shape)`; a 0-d tensor has
 * `shape: []` and one element. Storage dtypes with no `RawDType` counterpart are converted on read:
 * f16/bf16 → f32 (exact widening), i64/u8/i8/i16 → i32 (range-checked), bool → Uint8Array of 0/1.
 */
import { describeValue, type IoErrorClass } from './errors.js';

/** Element type of a `RawTensor`. */
export type RawDType = 'f32' | 'f64' | 'i32' | 'bool';

/** Typed-array storage of a `RawTensor` (`bool` is a Uint8Array of 0/1). */
export type RawData = Float32Array | Float64Array | Int32Array | Uint8Array;

/** A dense, C-contiguous tensor: `data.length === product(shape)`. */
export interface RawTensor {
  dtype: RawDType;
  shape: number[];
  data: Float32Array | Float64Array | Int32Array | Uint8Array;
}

/** Element types found in files (little-endian), converted to a `RawDType` by `decodeLE`. */
export type SourceDType = 'f16' | 'bf16' | 'f32' | 'f64' | 'i64' | 'i32' | 'i16' | 'i8' | 'u8' | 'bool';

/** Bytes per element of each on-disk element type. */
export const SOURCE_ITEMSIZE: Readonly<Record<SourceDType, number>> = {
  f16: 2,
  bf16: 2,
  f32: 4,
  f64: 8,
  i64: 8,
  i32: 4,
  i16: 2,
  i8: 1,
  u8: 1,
  bool: 1,
};

/** `RawDType` that an on-disk element type is converted to. */
export const SOURCE_TO_RAW: Readonly<Record<SourceDType, RawDType>> = {
  f16: 'f32',
  bf16: 'f32',
  f32: 'f32',
  f64: 'f64',
  i64: 'i32',
  i32: 'i32',
  i16: 'i32',
  i8: 'i32',
  u8: 'i32',
  bool: 'bool',
};

const RAW_ITEMSIZE: Readonly<Record<RawDType, number>> = { f32: 4, f64: 8, i32: 4, bool: 1 };

/** True on little-endian hosts (fast typed-array copies); big-endian hosts use DataView loops. */
const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Bytes per element of a `RawDType` in memory and in files (f32 4, f64 8, i32 4, bool 1). */
export function rawItemSize(dtype: RawDType): number {
  return RAW_ITEMSIZE[dtype];
}

/** True if `s` is one of the four `RawDType` names. */
export function isRawDType(s: unknown): s is RawDType {
  return s === 'f32' || s === 'f64' || s === 'i32' || s === 'bool';
}

/** Number of elements of a shape (1 for `[]`). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Validate a shape read from a file: an array of non-negative safe integers whose product is a
 * safe integer. Throws `Err` naming `what` otherwise.
 */
export function checkShape(shape: unknown, what: string, Err: IoErrorClass): number[] {
  if (!Array.isArray(shape)) {
    throw new Err(`${what}: shape must be an array of non-negative integers, got ${describeValue(shape)}`);
  }
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new Err(`${what}: shape ${describeValue(shape)} has invalid dimension ${describeValue(d)} (expected a non-negative integer)`);
    }
    n *= d;
  }
  if (!Number.isSafeInteger(n)) throw new Err(`${what}: shape ${describeValue(shape)} has too many elements`);
  return shape.slice() as number[];
}

/** True if `v` looks like a `RawTensor` (dtype name, shape array and a typed array of the right kind). */
export function isRawTensor(v: unknown): v is RawTensor {
  if (v === null || typeof v !== 'object') return false;
  const t = v as Partial<RawTensor>;
  if (!isRawDType(t.dtype) || !Array.isArray(t.shape)) return false;
  switch (t.dtype) {
    case 'f32':
      return t.data instanceof Float32Array;
    case 'f64':
      return t.data instanceof Float64Array;
    case 'i32':
      return t.data instanceof Int32Array;
    case 'bool':
      return t.data instanceof Uint8Array;
  }
}

/**
 * Check that a `RawTensor` is consistent (data kind matches dtype, `data.length === numel(shape)`,
 * bool values are 0/1). Throws `Err` naming `what` otherwise; returns the tensor.
 */
export function checkRawTensor(t: unknown, what: string, Err: IoErrorClass): RawTensor {
  if (!isRawTensor(t)) {
    throw new Err(`${what}: expected a RawTensor {dtype: f32|f64|i32|bool, shape, data: matching typed array}, got ${describeValue(t)}`);
  }
  const shape = checkShape(t.shape, what, Err);
  const n = numel(shape);
  if (t.data.length !== n) {
    throw new Err(`${what}: data has ${t.data.length} elements, expected ${n} for shape [${shape.join(', ')}]`);
  }
  if (t.dtype === 'bool') checkBool(t.data as Uint8Array, what, Err);
  return t;
}

function checkBool(d: Uint8Array, what: string, Err: IoErrorClass): void {
  for (let i = 0; i < d.length; i++) {
    if (d[i] > 1) throw new Err(`${what}: bool element ${i} is ${d[i]}, expected 0 or 1`);
  }
}

/** Convert IEEE half-precision bits to a number (exact). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/**
 * Decode a little-endian C-contiguous buffer of `src` elements into fresh, aligned `RawData`
 * (never a view of `bytes`). `bytes.length` must be a multiple of the item size. i64/u8/i8/i16 become
 * Int32Array (i64 values outside int32 throw `Err`), f16/bf16 become Float32Array, bool → 0/1.
 * `what` names the tensor in error messages.
 */
export function decodeLE(bytes: Uint8Array, src: SourceDType, what: string, Err: IoErrorClass): RawData {
  const size = SOURCE_ITEMSIZE[src];
  if (bytes.length % size !== 0) {
    throw new Err(`${what}: ${bytes.length} bytes is not a multiple of the ${src} item size ${size}`);
  }
  const n = bytes.length / size;
  if (HOST_LE && (src === 'f32' || src === 'f64' || src === 'i32')) {
    const fresh = new Uint8Array(bytes.length); // not bytes.slice(): Buffer#slice is a view
    fresh.set(bytes);
    const copy = fresh.buffer; // offset 0: aligned for any element size
    return src === 'f32' ? new Float32Array(copy) : src === 'f64' ? new Float64Array(copy) : new Int32Array(copy);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (src) {
    case 'f32': {
      const o = new Float32Array(n);
      for (let i = 0; i < n; i++) o[i] = dv.getFloat32(4 * i, true);
      return o;
    }
    case 'f64': {
      const o = new Float64Array(n);
      for (let i = 0; i < n; i++) o[i] = dv.getFloat64(8 * i, true);
      return o;
    }
    case 'i32': {
      const o = new Int32Array(n);
      for (let i = 0; i < n; i++) o[i] = dv.getInt32(4 * i, true);
      return o;
    }
    case 'f16': {
      const o = new Float32Array(n);
      for (let i = 0; i < n; i++) o[i] = halfToFloat(dv.getUint16(2 * i, true));
      return o;
    }
    case 'bf16': {
      const o = new Float32Array(n);
      const bits = new Uint32Array(o.buffer);
      for (let i = 0; i < n; i++) bits[i] = dv.getUint16(2 * i, true) << 16;
      return o;
    }
    case 'i64': {
      const o = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const lo = dv.getInt32(8 * i, true);
        const hi = dv.getInt32(8 * i + 4, true);
        if (hi !== lo >> 31) {
          const v = dv.getBigInt64(8 * i, true);
          throw new Err(`${what}: int64 element ${i} = ${v} does not fit in int32 (range -2147483648..2147483647)`);
        }
        o[i] = lo;
      }
      return o;
    }
    case 'i16': {
      const o = new Int32Array(n);
      for (let i = 0; i < n; i++) o[i] = dv.getInt16(2 * i, true);
      return o;
    }
    case 'i8': {
      const o = new Int32Array(n);
      for (let i = 0; i < n; i++) o[i] = dv.getInt8(i);
      return o;
    }
    case 'u8': {
      const o = new Int32Array(n);
      for (let i = 0; i < n; i++) o[i] = bytes[i];
      return o;
    }
    case 'bool': {
      const o = new Uint8Array(n);
      for (let i = 0; i < n; i++) o[i] = bytes[i] !== 0 ? 1 : 0;
      return o;
    }
  }
}

/**
 * Little-endian bytes of a tensor's data (fresh copy). `asI64` writes i32 tensors as int64
 * (sign-extended), as the golden format stores integers.
 */
export function encodeLE(t: RawTensor, asI64 = false): Uint8Array {
  const d = t.data;
  if (t.dtype === 'i32' && asI64) {
    const out = new Uint8Array(d.length * 8);
    const dv = new DataView(out.buffer);
    for (let i = 0; i < d.length; i++) {
      dv.setInt32(8 * i, d[i], true);
      dv.setInt32(8 * i + 4, d[i] < 0 ? -1 : 0, true);
    }
    return out;
  }
  if (HOST_LE || t.dtype === 'bool') {
    const out = new Uint8Array(d.byteLength);
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    return out;
  }
  const out = new Uint8Array(d.byteLength);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < d.length; i++) {
    if (t.dtype === 'f32') dv.setFloat32(4 * i, d[i], true);
    else if (t.dtype === 'f64') dv.setFloat64(8 * i, d[i], true);
    else dv.setInt32(4 * i, d[i], true);
  }
  return out;
}

/** Bitwise equality of two tensors: same dtype, shape and element bytes (NaN payloads included). */
export function rawTensorsEqual(a: RawTensor, b: RawTensor): boolean {
  if (a.dtype !== b.dtype || a.shape.length !== b.shape.length) return false;
  if (a.shape.some((d, i) => d !== b.shape[i]) || a.data.byteLength !== b.data.byteLength) return false;
  const x = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const y = new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}
