/**
 * Strided copies (a view → a new row-major tensor) faster than the generic elementwise loop.
 * The view's axes are first collapsed (size-1 axes dropped, axes nested in the next merged), so
 * e.g. a `[B, L, D]` view of a time-major `[L, B, D]` tensor is a 3-D copy of unit-stride rows.
 * Then:
 * - **rows** (last axis unit-stride, or no axis is): one row at a time, unit-stride rows of ≥ 32
 *   elements with `TypedArray.set`;
 * - **transpose** (last axis strided, another axis unit-stride, both ≥ 8 long): 8 × 8 tiles of
 *   those two axes, so that the strided reads of a tile stay in cache while its rows are written.
 *
 * The loop is one source compiled once per storage class (`new Function`), so every instance sees
 * one typed-array class (monomorphic), like codegen.ts's loops.
 */
import type { DType, Storage } from '../../dtype.js';
import { fromStorage, type Tensor } from '../../tensor.js';
import { allocateOut } from './resident.js';

/**
 * Side of the square tiles of the transpose path. Small: with power-of-two strides (a 1024-wide
 * row is 4 KiB) every strided access of a tile falls in one L1 set, so tiles of more than ~8
 * lines evict themselves (measured on [784, 1024]: 8 × 8 tiles 1.0 ms, 32 × 32 1.5 ms; [1567,
 * 1024]: 2.2 vs 3.1 ms).
 */
const TILE = 8;
/** Shortest axis worth tiling. */
const MIN_TILE_AXIS = 8;
/** Shortest unit-stride row copied with `TypedArray.set` (shorter ones: an element loop). */
const MIN_SET_ROW = 32;

type CopyFn = (src: Storage, off: number, shape: number[], strides: number[], out: Storage, o0: number, tile: number, minAxis: number, minRow: number) => void;

/**
 * Copies `src` viewed as (`off`, `shape`, `strides`) into `out` row-major from index `o0`.
 * Self-contained (it is recompiled from its source text per storage class).
 */
function copyLoop(
  src: Storage,
  off: number,
  shape: number[],
  strides: number[],
  out: Storage,
  o0: number,
  tile: number,
  minAxis: number,
  minRow: number,
): void {
  const nd = shape.length;
  const n = shape[nd - 1],
    s = strides[nd - 1];
  // output strides (row-major)
  const os: number[] = new Array(nd);
  let total = 1;
  for (let a = nd - 1; a >= 0; a--) {
    os[a] = total;
    total *= shape[a];
  }
  let t = -1;
  if (s !== 1 && n >= minAxis) {
    for (let a = nd - 2; a >= 0; a--) {
      if (strides[a] === 1 && shape[a] >= minAxis) {
        t = a;
        break;
      }
    }
  }
  const idx = new Int32Array(nd);
  if (t < 0) {
    const rows = total / n;
    let p = off,
      o = o0;
    for (let r = 0; r < rows; r++) {
      if (s === 1) {
        if (n >= minRow) out.set(src.subarray(p, p + n) as never, o);
        else for (let j = 0; j < n; j++) out[o + j] = src[p + j];
      } else for (let j = 0, q = p; j < n; j++, q += s) out[o + j] = src[q];
      o += n;
      for (let a = nd - 2; a >= 0; a--) {
        idx[a]++;
        p += strides[a];
        if (idx[a] < shape[a]) break;
        p -= strides[a] * shape[a];
        idx[a] = 0;
      }
    }
    return;
  }
  // transpose: axis t (unit-stride in src, output stride os[t]) × the last axis (src stride s)
  const m = shape[t],
    ot = os[t];
  const blocks = total / (n * m);
  let p = off,
    o = o0;
  for (let b = 0; b < blocks; b++) {
    for (let i0 = 0; i0 < m; i0 += tile) {
      const i1 = Math.min(m, i0 + tile);
      for (let j0 = 0; j0 < n; j0 += tile) {
        const j1 = Math.min(n, j0 + tile);
        for (let i = i0; i < i1; i++) {
          let q = p + i + j0 * s;
          const oo = o + i * ot;
          for (let j = j0; j < j1; j++, q += s) out[oo + j] = src[q];
        }
      }
    }
    // next combination of the other axes (all but t and the last)
    for (let a = nd - 2; a >= 0; a--) {
      if (a === t) continue;
      idx[a]++;
      p += strides[a];
      o += os[a];
      if (idx[a] < shape[a]) break;
      p -= strides[a] * shape[a];
      o -= os[a] * shape[a];
      idx[a] = 0;
    }
  }
}

const loops = new Map<DType, CopyFn>();

function loopFor(dtype: DType): CopyFn {
  let fn = loops.get(dtype);
  if (!fn) {
    fn = new Function(`"use strict"; return ${copyLoop.toString()};`)() as CopyFn;
    loops.set(dtype, fn);
  }
  return fn;
}

/** `t`'s axes with size-1 axes dropped and nested axes merged: [shape, strides] (empty for one element). */
export function collapsedAxes(t: Tensor): [number[], number[]] {
  const shape: number[] = [],
    strides: number[] = [];
  for (let i = t.ndim - 1; i >= 0; i--) {
    const d = t.shape[i];
    if (d === 1) continue;
    if (shape.length > 0 && t.strides[i] === strides[0] * shape[0]) {
      shape[0] *= d;
      continue;
    }
    shape.unshift(d);
    strides.unshift(t.strides[i]);
  }
  return [shape, strides];
}

/** Writes the elements of `x` (any strides; `out` of the same storage class) row-major into `out` from index `at`. */
export function copyInto(x: Tensor, out: Storage, at: number): void {
  const [shape, strides] = collapsedAxes(x);
  if (shape.length === 0) out[at] = x.storage[x.offset];
  else if (shape.length === 1 && strides[0] === 1) out.set(x.storage.subarray(x.offset, x.offset + x.size) as never, at);
  else loopFor(x.dtype)(x.storage, x.offset, shape, strides, out, at, TILE, MIN_TILE_AXIS, MIN_SET_ROW);
}

/** A row-major copy of `x` (any strides, any dtype), or null for empty tensors. */
export function copyStrided(x: Tensor): Tensor | null {
  if (x.size === 0) return null;
  const out = allocateOut(x.dtype, x.size, false);
  copyInto(x, out, 0);
  return fromStorage(out, x.shape);
}
