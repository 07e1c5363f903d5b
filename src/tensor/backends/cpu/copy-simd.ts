/**
 * Data movement on the WebAssembly copy kernels (wasm/copy.ts) inside resident scopes: `copy`
 * (a transposed, permuted or flipped view made contiguous), `concat` (e.g. the backward of
 * `split`) and `pad` (the backward of `narrow`, the EMA's kernel padding). Sources that are
 * resident are read in place, the output block is written in place, large copies are split over
 * the wasm pool. Each returns null where it does not apply (no scope, not f32/f64, small, a
 * layout the kernels do not take); register.ts then runs the plain kernels (copy-fast.ts,
 * indexing.ts, indexing-fast.ts), which give the same values (a copy moves bits).
 */
import { contiguousStrides, sizeOf } from '../../shape.js';
import { fromStorage, Tensor } from '../../tensor.js';
import { concatShape, padShape, splitAxis } from '../checks.js';
import { copyInto } from './copy-fast.js';
import { allocateOut, residentActive } from './resident.js';
import { copyPlan, minSize, residentAddr, storageAddr, storageRange, wasmCopy } from './simd.js';
import { wasmArena, wasmRuntime } from './wasm/runtime.js';

function floatDt(t: Tensor): 'f32' | 'f64' | null {
  return t.dtype === 'f32' || t.dtype === 'f64' ? t.dtype : null;
}

/** SIMD `copy` of a resident view into a resident block, or null. */
export function copySimd(x: Tensor): Tensor | null {
  const dt = floatDt(x);
  if (!dt || !residentActive() || x.size < minSize(true)) return null;
  const rt = wasmRuntime(),
    src = residentAddr(x);
  if (!rt || src < 0) return null;
  const E = dt === 'f32' ? 4 : 8;
  const plan = copyPlan(x.shape, x.strides, contiguousStrides(x.shape), 16 / E);
  if (!plan) return null;
  const out = allocateOut(dt, x.size, false);
  const dst = storageAddr(out);
  if (dst < 0) copyInto(x, out, 0);
  else wasmCopy(rt, dt, plan, src, dst, true);
  return fromStorage(out, x.shape);
}

/**
 * Copies the view `x` into the resident `out` at element `at` with destination strides `ds` on
 * the wasm kernels: read in place when `x` is resident, else from a copy of the storage range it
 * covers in the arena (when that is at most twice its size: a plain piece, a broadcast zero).
 * False (nothing written) when the layout does not fit or the arena is held by a caller. The
 * copy may still run when this returns (deferred jobs): the caller reads `out` through `.storage`.
 */
function copyRegion(x: Tensor, out: Float32Array | Float64Array, at: number, ds: readonly number[]): boolean {
  const rt = wasmRuntime(),
    dst = storageAddr(out);
  if (!rt || dst < 0) return false;
  const dt = x.dtype as 'f32' | 'f64';
  const E = dt === 'f32' ? 4 : 8;
  const plan = copyPlan(x.shape, x.strides, ds, 16 / E);
  if (!plan) return false;
  const src = residentAddr(x);
  if (src >= 0) {
    wasmCopy(rt, dt, plan, src, dst + at * E, true);
    return true;
  }
  const ar = wasmArena(rt);
  const [lo, len] = storageRange(x);
  if (ar.isOpen || len > 2 * x.size) return false;
  ar.reset();
  const p = ar.alloc(len * E);
  ar.commit();
  (dt === 'f32' ? ar.f32 : ar.f64).set((x.storage as Float32Array | Float64Array).subarray(lo, lo + len) as never, p / E);
  wasmCopy(rt, dt, plan, p + (x.offset - lo) * E, dst + at * E, true);
  ar.close();
  return true;
}

/** SIMD `concat` into a resident block (pieces that fit neither copy path are copied in JS), or null. */
export function concatSimd(xs: readonly Tensor[], axis: number): Tensor | null {
  const dt = floatDt(xs[0]);
  const shape = concatShape(xs, axis);
  const size = sizeOf(shape);
  if (!dt || !residentActive() || size < minSize(true) || xs.some((t) => t.dtype !== dt)) return null;
  if (!xs.some((t) => residentAddr(t) >= 0)) return null;
  const out = allocateOut(dt, size, false) as Float32Array | Float64Array;
  if (storageAddr(out) < 0) return null;
  const [outer, , inner] = splitAxis(shape, axis);
  const total = shape[axis];
  const os = contiguousStrides(shape);
  let at = 0;
  for (const t of xs) {
    const w = t.shape[axis] * inner;
    if (w > 0 && !copyRegion(t, out, at * inner, os)) {
      // piece by piece in JS: each outer row of the piece is w contiguous elements of its copy
      for (let o = 0; o < outer; o++) copyInto(sliceOuter(t, axis, o), out, o * total * inner + at * inner);
    }
    at += t.shape[axis];
  }
  return fromStorage(out, shape);
}

/** Row `o` of `t` over its axes before `axis` (row-major), as a view. */
function sliceOuter(t: Tensor, axis: number, o: number): Tensor {
  let off = t.offset;
  for (let a = axis - 1; a >= 0; a--) {
    const d = t.shape[a];
    off += (o % d) * t.strides[a];
    o = Math.floor(o / d);
  }
  return new Tensor(t.data, t.shape.slice(axis), t.strides.slice(axis), off); // (read through .storage: waits then)
}

/** SIMD `pad` of a resident tensor into a resident block, or null. */
export function padSimd(x: Tensor, pads: readonly (readonly [number, number])[], value: number): Tensor | null {
  const dt = floatDt(x);
  if (!dt || !residentActive() || x.ndim === 0 || residentAddr(x) < 0) return null;
  const shape = padShape(x, pads);
  const size = sizeOf(shape);
  if (size < minSize(true)) return null;
  // the region of x that survives, and where it lands
  const srcStart = pads.map((p) => Math.max(0, -p[0]));
  const region = x.shape.map((d, i) => Math.max(0, Math.min(d - srcStart[i], shape[i] - Math.max(0, pads[i][0]))));
  let off = x.offset;
  for (let i = 0; i < x.ndim; i++) off += srcStart[i] * x.strides[i];
  const ds = contiguousStrides(shape);
  let at = 0;
  for (let i = 0; i < x.ndim; i++) at += Math.max(0, pads[i][0]) * ds[i];
  const view = new Tensor(x.data, region, x.strides, off); // (x.data: read in wasm code, after x's job)
  const E = dt === 'f32' ? 4 : 8;
  if (view.size > 0 && !copyPlan(region, x.strides, ds, 16 / E)) return null;
  const out = allocateOut(dt, size, false) as Float32Array | Float64Array;
  if (storageAddr(out) < 0) return null;
  fillOutside(out, shape, region, at, value);
  if (view.size > 0) copyRegion(view, out, at, ds);
  return fromStorage(out, shape);
}

/**
 * Fills `out` (row-major `shape`) with `value` outside the block `region` placed at element
 * `at`: only the margins when the block spans every axis but one (a pad or a narrow backward
 * along one axis), else everything (the block is copied over it).
 */
function fillOutside(out: Float32Array | Float64Array, shape: readonly number[], region: readonly number[], at: number, value: number): void {
  const differ = shape.map((d, i) => i).filter((i) => region[i] !== shape[i]);
  if (differ.length === 0) return;
  if (differ.length > 1 || sizeOf(region) === 0) {
    out.fill(value);
    return;
  }
  const a = differ[0];
  const inner = sizeOf(shape.slice(a + 1)),
    row = shape[a] * inner,
    outer = sizeOf(shape) / row;
  const end = at + region[a] * inner; // `at` lies within the first row: no other axis is padded
  for (let o = 0; o < outer; o++) {
    if (at > 0) out.fill(value, o * row, o * row + at);
    if (end < row) out.fill(value, o * row + end, (o + 1) * row);
  }
}
