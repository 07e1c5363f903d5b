/**
 * Faster plain-JS paths for the data-movement kernels the Mega layer leans on (pad — the
 * backward of narrow/split —, indexSelect / indexAdd on 1-D tables — the relative position bias).
 * Each returns null when it does not apply; register.ts then runs the general kernel in indexing.ts.
 * Results are identical (pure copies and the same summation order).
 *
 * The generic kernels index a `Storage` union, which V8 compiles polymorphically (slow, see
 * docs/BACKENDS.md); here copies go through `TypedArray.set` and the scalar loops are instantiated
 * once per array class.
 */
import { allocateOut } from './resident.js';
import { type Storage } from '../../dtype.js';
import { IndexError } from '../../errors.js';
import { contiguousStrides, sizeOf } from '../../shape.js';
import { fromStorage, type Tensor } from '../../tensor.js';

/** Smallest run (elements) copied with `set`; shorter runs go to the general kernel. */
const MIN_RUN = 16;

/** `pad` when the kept region's rows (last axis) are unit-stride runs of ≥ MIN_RUN elements. */
export function padFast(x: Tensor, pads: readonly (readonly [number, number])[], value: number): Tensor | null {
  const nd = x.ndim;
  if (nd === 0 || pads.length !== nd || x.strides[nd - 1] !== 1) return null;
  const shape = x.shape.map((d, i) => d + pads[i][0] + pads[i][1]);
  if (shape.some((d) => d < 0)) return null;
  const srcStart = pads.map((p) => Math.max(0, -p[0]));
  const region = x.shape.map((d, i) => Math.max(0, Math.min(d - srcStart[i], shape[i] - Math.max(0, pads[i][0]))));
  const n = region[nd - 1];
  if (n < MIN_RUN) return null;
  const out = allocateOut(x.dtype, sizeOf(shape));
  if (value !== 0) out.fill(value);
  if (sizeOf(region) === 0) return fromStorage(out, shape);
  let s = x.offset;
  for (let i = 0; i < nd; i++) s += srcStart[i] * x.strides[i];
  const ds = contiguousStrides(shape);
  let d = 0;
  for (let i = 0; i < nd; i++) d += Math.max(0, pads[i][0]) * ds[i];
  const src = x.storage;
  const rows = sizeOf(region) / n;
  const idx = new Array<number>(nd).fill(0);
  for (let r = 0; r < rows; r++) {
    (out as Float64Array).set((src as Float64Array).subarray(s, s + n), d);
    for (let a = nd - 2; a >= 0; a--) {
      idx[a]++;
      s += x.strides[a];
      d += ds[a];
      if (idx[a] < region[a]) break;
      s -= x.strides[a] * region[a];
      d -= ds[a] * region[a];
      idx[a] = 0;
    }
  }
  return fromStorage(out, shape);
}

type Gather = (out: Storage, src: Storage, so: number, idx: Int32Array, n: number) => number;
type Scatter = (out: Storage, src: Storage, so: number, idx: Int32Array, n: number) => number;

/** One monomorphic instance per array class. */
function perClass<T>(src: string): Map<object, T> {
  const m = new Map<object, T>();
  for (const C of [Float32Array, Float64Array, Int32Array, Uint8Array]) m.set(C, new Function(src)() as T);
  return m;
}
/** out[i] = src[so + idx[i]]; returns the first bad index position or -1. */
const GATHER = perClass<Gather>(`return function (out, src, so, idx, n) {
  for (let i = 0; i < idx.length; i++) { const r = idx[i]; if (r < 0 || r >= n) return i; out[i] = src[so + r]; }
  return -1;
};`);
/** out[idx[i]] += src[so + i]; returns the first bad index position or -1. */
const SCATTER = perClass<Scatter>(`return function (out, src, so, idx, n) {
  for (let i = 0; i < idx.length; i++) { const r = idx[i]; if (r < 0 || r >= n) return i; out[r] += src[so + i]; }
  return -1;
};`);

/** `indexSelect` of a contiguous 1-D tensor. */
export function indexSelectFast(x: Tensor, axis: number, index: Tensor): Tensor | null {
  if (x.ndim !== 1 || axis !== 0 || index.dtype !== 'i32' || index.ndim !== 1 || !index.isContiguous() || x.strides[0] !== 1) return null;
  const idx = (index.storage as Int32Array).subarray(index.offset, index.offset + index.size);
  const out = allocateOut(x.dtype, idx.length);
  const bad = GATHER.get(out.constructor)!(out, x.storage, x.offset, idx, x.shape[0]);
  if (bad >= 0) throw new IndexError(`indexSelect: index ${idx[bad]} is out of range for axis 0 of size ${x.shape[0]}`);
  return fromStorage(out, [idx.length]);
}

/** `indexAdd` into a 1-D result from a contiguous 1-D source. */
export function indexAddFast(shape: readonly number[], axis: number, index: Tensor, src: Tensor): Tensor | null {
  if (shape.length !== 1 || axis !== 0 || index.dtype !== 'i32' || index.ndim !== 1 || !index.isContiguous()) return null;
  if (src.ndim !== 1 || src.shape[0] !== index.size || src.strides[0] !== 1) return null;
  const idx = (index.storage as Int32Array).subarray(index.offset, index.offset + index.size);
  const out = allocateOut(src.dtype, shape[0]);
  const bad = SCATTER.get(out.constructor)!(out, src.storage, src.offset, idx, shape[0]);
  if (bad >= 0) throw new IndexError(`indexAdd: index ${idx[bad]} is out of range for axis 0 of size ${shape[0]}`);
  return fromStorage(out, shape);
}
