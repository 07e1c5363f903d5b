/**
 * Faster plain-JS paths for the data-movement kernels the Mega layer leans on (pad — the
 * backward of narrow/split —, indexSelect / indexAdd on 1-D tables — the relative position bias —
 * and on rows — the embeddings and their gradients).
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
import { splitAxis } from '../checks.js';

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

/**
 * Rows of `inner` elements: `out[(o·m + i)·inner + j] = src[so + (o·n + idx[i])·inner + j]`; returns the
 * first bad index position or -1 (checked before anything is written).
 */
type GatherRows = (out: Storage, src: Storage, so: number, idx: Int32Array, n: number, outer: number, inner: number) => number;
/**
 * Rows of `inner` elements: `out[(o·n + idx[i])·inner + j] += src[so + (o·m + i)·inner + j]`, i
 * increasing; returns the first bad index position or -1 (checked before anything is added).
 */
type ScatterRows = GatherRows;

const CHECK = `for (let i = 0; i < idx.length; i++) { const r = idx[i]; if (r < 0 || r >= n) return i; }`;
const GATHER_ROWS = perClass<GatherRows>(`return function (out, src, so, idx, n, outer, inner) {
  ${CHECK}
  const m = idx.length;
  for (let o = 0; o < outer; o++) for (let i = 0; i < m; i++) {
    const s = so + (o * n + idx[i]) * inner, d = (o * m + i) * inner;
    if (inner >= 16) out.set(src.subarray(s, s + inner), d);
    else for (let j = 0; j < inner; j++) out[d + j] = src[s + j];
  }
  return -1;
};`);
const SCATTER_ROWS = perClass<ScatterRows>(`return function (out, src, so, idx, n, outer, inner) {
  ${CHECK}
  const m = idx.length;
  for (let o = 0; o < outer; o++) for (let i = 0; i < m; i++) {
    const d = (o * n + idx[i]) * inner, q = so + (o * m + i) * inner;
    for (let j = 0; j < inner; j++) out[d + j] += src[q + j];
  }
  return -1;
};`);

/** The indices of a 1-D contiguous i32 tensor, or null. */
export function indices(index: Tensor): Int32Array | null {
  if (index.dtype !== 'i32' || index.ndim !== 1 || !index.isContiguous()) return null;
  return (index.storage as Int32Array).subarray(index.offset, index.offset + index.size);
}

/** `indexSelect` of a contiguous 1-D tensor (an element gather), or of rows of a contiguous tensor. */
export function indexSelectFast(x: Tensor, axis: number, index: Tensor): Tensor | null {
  const idx = indices(index);
  if (!idx || !x.isContiguous() || x.ndim === 0) return null;
  const n = x.shape[axis];
  if (n === 0) return null;
  const out = allocateOut(x.dtype, (x.size / n) * idx.length);
  let bad: number;
  if (x.ndim === 1) bad = GATHER.get(out.constructor)!(out, x.storage, x.offset, idx, n);
  else {
    const [outer, , inner] = splitAxis(x.shape, axis);
    bad = GATHER_ROWS.get(out.constructor)!(out, x.storage, x.offset, idx, n, outer, inner);
  }
  if (bad >= 0) throw new IndexError(`indexSelect: index ${idx[bad]} is out of range for axis ${axis} of size ${n}`);
  const shape = [...x.shape];
  shape[axis] = idx.length;
  return fromStorage(out, shape);
}

/** `indexAdd` from a contiguous source: elements into a 1-D result, or rows (e.g. an embedding's gradient). */
export function indexAddFast(shape: readonly number[], axis: number, index: Tensor, src: Tensor): Tensor | null {
  const idx = indices(index);
  if (!idx || !src.isContiguous() || src.ndim !== shape.length || src.shape[axis] !== idx.length) return null;
  if (shape.some((d, i) => i !== axis && src.shape[i] !== d)) return null;
  const n = shape[axis];
  if (n === 0) return null;
  const out = allocateOut(src.dtype, sizeOf(shape));
  let bad: number;
  if (shape.length === 1) bad = SCATTER.get(out.constructor)!(out, src.storage, src.offset, idx, n);
  else {
    const [outer, , inner] = splitAxis(shape, axis);
    bad = SCATTER_ROWS.get(out.constructor)!(out, src.storage, src.offset, idx, n, outer, inner);
  }
  if (bad >= 0) throw new IndexError(`indexAdd: index ${idx[bad]} is out of range for axis ${axis} of size ${n}`);
  return fromStorage(out, shape);
}
