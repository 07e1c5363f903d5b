/**
 * WebAssembly SIMD paths of the CPU elementwise, reduction and softmax kernels (wasm/
 * elementwise.ts), threaded over the wasm pool for large tensors. Each function returns null when
 * its fast path does not apply (dtype, layout, op, size, SIMD disabled); register.ts then falls
 * back to the plain-TypeScript kernels, which stay the reference these paths are tested against.
 *
 * Layouts: binary operands whose broadcast over the output collapses to at most two axes
 * (outer × inner) with inner stride 0 or 1 (same shape, scalar, row and column broadcasts) are
 * read in place; other inputs are first staged into wasm memory in row-major order (`stage`);
 * sums must reduce one contiguous block of axes (after staging).
 */
import type { BinaryOp, ReduceOp, UnaryOp } from '../../backend.js';
import type { FloatStorage, Storage } from '../../dtype.js';
import { broadcastShapes, contiguousStrides, sizeOf } from '../../shape.js';
import { fromStorage, type Tensor } from '../../tensor.js';
import { copyInto } from './copy-fast.js';
import { getNumThreads } from './pool.js';
import { allocateOut, isResident, residentActive } from './resident.js';
import { SIMD_BINARY, SIMD_UNARY, type Pattern, type SimdBinary, type SimdUnary } from './wasm/elementwise.js';
import { COPY_DESC_BYTES, COPY_HEAD, COPY_MAX_OUTER } from './wasm/copy.js';
import { OP_MAP, runJob, simdTuning, wasmArena, wasmRuntime, type WasmRuntime } from './wasm/runtime.js';

/** Smallest tensor (elements) worth the copy into wasm memory. */
export const SIMD_MIN_SIZE = 2048;
/** Smallest tensor (elements) for the SIMD path when nothing needs copying (resident operands). */
export const SIMD_RESIDENT_MIN_SIZE = 256;
/** Operands up to this size are copied at no real cost (binarySimd counts them as resident). */
const CHEAP_OPERAND = 64;
/**
 * From this many elements of work on, a kernel runs on the pool. The pool's threads poll for the
 * next job between jobs (pool.ts), so in a training step a hand-off costs microseconds, not a
 * wake-up: measured in alternating steps of one process (2 threads), 1 << 14 instead of 1 << 18
 * took listops −13 %, lm −6 %, nmt −5 %, image −3 % of wall time per step.
 */
const PARALLEL_SIZE = 1 << 14;
/** Smallest task, in elements of work. */
const MIN_TASK = 1 << 14;

const UNARY_SET = new Set<string>(SIMD_UNARY);
const BINARY_SET = new Set<string>(SIMD_BINARY);

function isF(t: Tensor): boolean {
  return t.dtype === 'f32' || t.dtype === 'f64';
}

/**
 * Runs map function `name` over work items [0, total) in tasks; `work` = elements touched.
 * `defer`: the job may still run when this returns — for a caller that reads nothing back after
 * it; `true` when it reads and writes resident blocks alone, `'scratch'` when it also reads the
 * arena's scratch (wasm/runtime.ts).
 */
export function runMap(rt: WasmRuntime, name: string, total: number, work: number, args: number[], defer: boolean | 'scratch' = false): void {
  const idx = rt.mapIndex.get(name);
  if (idx === undefined) throw new Error(`wasm kernels: no map function ${name}`);
  const threads = getNumThreads();
  const force = simdTuning.force;
  const par = threads > 1 && (force || work >= PARALLEL_SIZE);
  const tasks = par ? Math.max(1, Math.min(threads * 2, Math.floor(work / (force ? 1 : MIN_TASK)), total)) : 1;
  const per = Math.ceil(total / tasks);
  runJob(
    rt,
    par,
    Math.ceil(total / per),
    (P) => {
      P[0] = OP_MAP;
      P[1] = idx;
      P[2] = total;
      P[3] = per;
      for (let i = 0; i < 6; i++) P[4 + i] = args[i] ?? 0;
    },
    defer,
  );
}

/** Copies storage elements [off, off+len) of `t` into the arena view at byte address `addr`. */
function copyIn(view: FloatStorage, addr: number, E: number, t: Tensor, off: number, len: number): void {
  // an ordinary array is no deferred job's output: read without settling (wasm/runtime.ts)
  const s = (isResident(t.data as Storage) ? t.storage : t.data) as FloatStorage;
  view.set(off === 0 && len === s.length ? s : s.subarray(off, off + len), addr / E);
}

/**
 * How a kernel's job may be deferred (wasm/runtime.ts): not when its output (byte address `io`,
 * −1 when not resident) is copied out after it; `true` when it reads resident blocks alone,
 * else `'scratch'`.
 */
export function deferral(io: number, residentOnly: boolean): boolean | 'scratch' {
  return io < 0 ? false : residentOnly ? true : 'scratch';
}

/** Byte address of `t`'s element `offset` when its storage is resident in the wasm memory (any strides), else -1. */
export function residentAddr(t: Tensor): number {
  if (t.device) return -1;
  const s = t.data as Storage; // the address only: no settle (host-sync.ts)
  return isResident(s) ? s.byteOffset + t.offset * s.BYTES_PER_ELEMENT : -1;
}

/** Byte address of `t`'s elements when it is contiguous and resident (read in place), else -1. */
export function inPlace(t: Tensor): number {
  return t.isContiguous() ? residentAddr(t) : -1;
}

/** Byte address of a resident storage, else -1. */
export function storageAddr(s: Storage): number {
  return isResident(s) ? s.byteOffset : -1;
}

/**
 * Smallest tensor worth the SIMD path: {@link SIMD_MIN_SIZE} when operands are copied into wasm
 * memory, {@link SIMD_RESIDENT_MIN_SIZE} when every operand and the output are resident.
 */
export function minSize(resident: boolean): number {
  return simdTuning.force ? 1 : resident ? SIMD_RESIDENT_MIN_SIZE : SIMD_MIN_SIZE;
}

/**
 * A strided copy as the wasm copy kernels take it (wasm/copy.ts): rows of `n` elements (source
 * stride `sj`, destination unit-stride), `m` rows per block (strides `si`, `di`), blocks over the
 * `outer` axes ([size, source stride, destination stride]); strides in elements.
 */
export interface CopyPlan {
  n: number;
  sj: number;
  m: number;
  si: number;
  di: number;
  outer: [number, number, number][];
  /** Transpose tiles (`copy_tr`): the source is unit-stride along the rows' axis. */
  transpose: boolean;
}

/**
 * The plan of copying the view (`shape`, source strides `ss`) to a destination with strides `ds`
 * (elements), or null when the kernels do not take it (destination rows not unit-stride after
 * dropping size-1 axes, more than COPY_MAX_OUTER outer axes, nothing to copy).
 */
export function copyPlan(shape: readonly number[], ss: readonly number[], ds: readonly number[], lanes: number): CopyPlan | null {
  // axes from innermost outward, size-1 axes dropped, an axis nested in the next one in both
  // layouts merged into it: [size, src stride, dst stride]
  const ax: [number, number, number][] = [];
  for (let i = shape.length - 1; i >= 0; i--) {
    const d = shape[i];
    if (d === 0) return null;
    if (d === 1) continue;
    const cur = ax[0];
    if (cur && ss[i] === cur[1] * cur[0] && ds[i] === cur[2] * cur[0]) cur[0] *= d;
    else ax.unshift([d, ss[i], ds[i]]);
  }
  if (ax.length === 0) ax.push([1, 1, 1]);
  const [n, sj, dj] = ax[ax.length - 1];
  if (dj !== 1) return null;
  // transpose: another axis is unit-stride in the source, and both it and the rows are long
  let t = -1;
  if (sj !== 1 && sj !== -1 && n >= lanes) t = ax.findIndex((a, i) => i < ax.length - 1 && a[1] === 1 && a[0] >= lanes);
  const r = t >= 0 ? t : ax.length - 2;
  const outer = ax.filter((_, i) => i !== r && i !== ax.length - 1);
  if (outer.length > COPY_MAX_OUTER) return null;
  const [m, si, di] = r >= 0 ? ax[r] : [1, 0, 0];
  return { n, sj, m, si, di, outer, transpose: t >= 0 };
}

/**
 * Runs `plan` from byte address `src` (the view's first element) to byte address `dst` on the
 * wasm copy kernels (threaded like the other map functions). The descriptor goes to the arena's
 * scratch: the calling kernel's when it holds the arena open, else a scratch of its own;
 * `defer`: the copy may still run when this returns, for a caller that reads `dst` from wasm code
 * only (wasm/runtime.ts).
 */
export function wasmCopy(rt: WasmRuntime, dt: 'f32' | 'f64', plan: CopyPlan, src: number, dst: number, defer = false): void {
  const E = dt === 'f32' ? 4 : 8;
  const ar = wasmArena(rt);
  const mine = !ar.isOpen;
  if (mine) ar.reset();
  const at = ar.alloc(COPY_DESC_BYTES);
  ar.commit();
  const view = ar.i32;
  const d = at / 4;
  view[d] = src | 0;
  view[d + 1] = dst | 0;
  view[d + 2] = plan.n;
  view[d + 3] = plan.sj * E;
  view[d + 4] = plan.m;
  view[d + 5] = plan.si * E;
  view[d + 6] = plan.di * E;
  view[d + 7] = plan.outer.length;
  plan.outer.forEach(([size, so, dO], a) => {
    view[d + COPY_HEAD + 3 * a] = size;
    view[d + COPY_HEAD + 3 * a + 1] = so * E;
    view[d + COPY_HEAD + 3 * a + 2] = dO * E;
  });
  const rows = plan.m * plan.outer.reduce((p, a) => p * a[0], 1);
  runMap(rt, `copy_${plan.transpose ? 'tr' : 'rows'}_${dt}`, rows, rows * plan.n, [at], defer ? 'scratch' : false);
  if (mine) ar.close();
}

/** The storage range `[lo, lo + len)` a view touches (any strides). */
export function storageRange(t: Tensor): [number, number] {
  let lo = t.offset,
    hi = t.offset;
  for (let i = 0; i < t.ndim; i++) {
    const reach = (t.shape[i] - 1) * t.strides[i];
    if (reach < 0) lo += reach;
    else hi += reach;
  }
  return [lo, hi - lo + 1];
}

/**
 * Writes `t`'s elements in row-major order into `view` from byte address `addr` (inside an open
 * arena): one copy when contiguous; else the wasm copy kernels reading `t` in place when it is
 * resident, or from a copy of the storage range it covers (when that is at most twice its size,
 * e.g. a transposed view of a plain tensor); else row copies (last axis unit-stride) or the
 * strided loop of copy-fast.ts. `defer`: for a caller that reads the staged elements from wasm
 * code only (the copy may still run when this returns, see {@link wasmCopy}).
 */
export function stage(view: FloatStorage, addr: number, E: number, t: Tensor, defer = false): void {
  if (t.isContiguous()) {
    copyIn(view, addr, E, t, t.offset, t.size);
    return;
  }
  const rt = wasmRuntime();
  const plan = rt ? copyPlan(t.shape, t.strides, contiguousStrides(t.shape), 16 / E) : null;
  if (plan) {
    const dt = t.dtype as 'f32' | 'f64';
    let at = residentAddr(t);
    const ar = wasmArena(rt!);
    const [lo, len] = storageRange(t);
    if (at < 0 && ar.isOpen && len <= 2 * t.size) {
      const p = ar.alloc(len * E);
      ar.commit();
      (dt === 'f32' ? ar.f32 : ar.f64).set((t.storage as FloatStorage).subarray(lo, lo + len), p / E);
      at = p + (t.offset - lo) * E;
    }
    if (at >= 0) {
      wasmCopy(rt!, dt, plan, at, addr, defer);
      return;
    }
  }
  const nd = t.ndim;
  const n = t.shape[nd - 1];
  if (t.strides[nd - 1] !== 1 || n < 8) {
    copyInto(t, view, addr / E);
    return;
  }
  const src = t.storage as FloatStorage;
  const rows = t.size / n;
  const idx = new Array<number>(nd).fill(0);
  let p = t.offset;
  let d = addr / E;
  for (let r = 0; r < rows; r++, d += n) {
    view.set(src.subarray(p, p + n), d);
    for (let a = nd - 2; a >= 0; a--) {
      idx[a]++;
      p += t.strides[a];
      if (idx[a] < t.shape[a]) break;
      p -= t.strides[a] * t.shape[a];
      idx[a] = 0;
    }
  }
}

/** SIMD `unary`, or null. */
export function unarySimd(x: Tensor, op: UnaryOp): Tensor | null {
  if (!UNARY_SET.has(op) || !isF(x)) return null;
  const n = x.size;
  if (n < minSize(residentActive() && inPlace(x) >= 0)) return null;
  const rt = wasmRuntime();
  if (!rt) return null;
  const dt = x.dtype as 'f32' | 'f64';
  const E = dt === 'f32' ? 4 : 8;
  const out = allocateOut(dt, n, false) as FloatStorage;
  const ix = inPlace(x),
    io = storageAddr(out);
  const ar = wasmArena(rt);
  ar.reset();
  const ax = ix >= 0 ? ix : ar.alloc(n * E),
    ao = io >= 0 ? io : ar.alloc(n * E);
  ar.commit();
  const view = dt === 'f32' ? ar.f32 : ar.f64;
  if (ix < 0) stage(view, ax, E, x, true);
  runMap(rt, `un_${op as SimdUnary}_${dt}`, n, n, [ax, ao], deferral(io, ix >= 0));
  if (io < 0) out.set(view.subarray(ao / E, ao / E + n));
  ar.close();
  return fromStorage(out, x.shape);
}

/** Collapsed 2-D description of a broadcast binary op, or null. */
function collapse(
  shape: readonly number[],
  sa: number[],
  sb: number[],
): { outer: number; inner: number; aso: number; asi: number; bso: number; bsi: number } | null {
  // dims from innermost outward: [size, strideA, strideB]
  const dims: [number, number, number][] = [];
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] === 1) continue;
    const cur = dims[dims.length - 1];
    if (cur && sa[i] === cur[1] * cur[0] && sb[i] === cur[2] * cur[0]) {
      // merge into cur: strides of the merged axis are the inner ones
      cur[0] *= shape[i];
      continue;
    }
    if (dims.length === 2) return null;
    dims.push([shape[i], sa[i], sb[i]]);
  }
  if (dims.length === 0) return null;
  const [inner, asi, bsi] = dims[0];
  const [outer, aso, bso] = dims[1] ?? [1, 0, 0];
  return { outer, inner, aso, asi, bso, bsi };
}

/** `t`'s shape with contiguous strides (the layout `stage` writes). */
function contiguousView(t: Tensor): Tensor {
  return { shape: t.shape, strides: contiguousStrides(t.shape), ndim: t.ndim } as unknown as Tensor;
}

/** Strides of `t` over `shape` (right-aligned broadcast: size-1 and missing axes get 0). */
function bstrides(t: Tensor, shape: readonly number[]): number[] {
  const lead = shape.length - t.ndim;
  return shape.map((d, i) => (i < lead || t.shape[i - lead] === 1 ? 0 : t.strides[i - lead]));
}

/** Elements of t's storage a strided walk touches, from t.offset (strides ≥ 0), or -1. */
function span(t: Tensor): number {
  let last = 0;
  for (let i = 0; i < t.ndim; i++) {
    if (t.shape[i] === 0) return 0;
    if (t.strides[i] < 0) return -1;
    last += (t.shape[i] - 1) * t.strides[i];
  }
  return last + 1;
}

/** SIMD `binary`, or null. */
export function binarySimd(a: Tensor, b: Tensor, op: BinaryOp): Tensor | null {
  if (!BINARY_SET.has(op) || a.dtype !== b.dtype || !isF(a)) return null;
  const shape = broadcastShapes(a.shape, b.shape, op);
  const n = sizeOf(shape);
  // a tiny operand (a scalar, a short row) costs nothing to copy: it counts as resident here
  const cheap = (t: Tensor) => residentAddr(t) >= 0 || t.size <= CHEAP_OPERAND;
  if (n < minSize(residentActive() && cheap(a) && cheap(b))) return null;
  // operands that do not collapse with the output (or not to a supported pattern) are first
  // staged to their own contiguous layout
  const pattern = (c: ReturnType<typeof collapse>): Pattern | null =>
    !c ? null : c.asi === 1 && c.bsi === 1 ? 'vv' : c.asi === 1 && c.bsi === 0 ? 'vs' : c.asi === 0 && c.bsi === 1 ? 'sv' : null;
  let c = collapse(shape, bstrides(a, shape), bstrides(b, shape));
  let pat = pattern(c);
  let stageA = false,
    stageB = false;
  // a view with negative strides, or (when not read in place) into a much larger storage (a split
  // piece, a narrow window) is staged too: copying its whole span would cost more than the op
  const far = (t: Tensor) => {
    const l = span(t);
    return l < 0 || (l > 2 * n + 64 && residentAddr(t) < 0);
  };
  if (!pat || far(a) || far(b)) {
    stageA = !a.isContiguous();
    stageB = !b.isContiguous();
    if (!stageA && !stageB) return null;
    c = collapse(shape, bstrides(stageA ? contiguousView(a) : a, shape), bstrides(stageB ? contiguousView(b) : b, shape));
    pat = pattern(c);
    if (!c || !pat) return null;
  }
  const la = stageA ? a.size : span(a),
    lb = stageB ? b.size : span(b);
  if (la < 0 || lb < 0) return null;
  const rt = wasmRuntime();
  if (!rt) return null;
  const dt = a.dtype as 'f32' | 'f64';
  const E = dt === 'f32' ? 4 : 8;
  const out = allocateOut(dt, n, false) as FloatStorage;
  // operands read in place: resident and not staged (staging needs its own contiguous copy)
  const ia = stageA ? -1 : residentAddr(a),
    ib = stageB ? -1 : residentAddr(b),
    io = storageAddr(out);
  const ar = wasmArena(rt);
  ar.reset();
  const pa = ia >= 0 ? ia : ar.alloc(la * E),
    pb = ib >= 0 ? ib : ar.alloc(lb * E),
    po = io >= 0 ? io : ar.alloc(n * E);
  ar.commit();
  const view = dt === 'f32' ? ar.f32 : ar.f64;
  if (stageA) stage(view, pa, E, a, true);
  else if (ia < 0) copyIn(view, pa, E, a, a.offset, la);
  if (stageB) stage(view, pb, E, b, true);
  else if (ib < 0) copyIn(view, pb, E, b, b.offset, lb);
  runMap(rt, `bin_${op as SimdBinary}_${dt}_${pat}`, n, n, [pa, pb, po, c!.inner, c!.aso, c!.bso], deferral(io, ia >= 0 && ib >= 0));
  if (io < 0) out.set(view.subarray(po / E, po / E + n));
  ar.close();
  return fromStorage(out, shape);
}

/** SIMD `reduce` (sum over one contiguous block of axes of a contiguous input), or null. */
export function reduceSimd(x: Tensor, op: ReduceOp, axes: number[], keepdims: boolean): Tensor | null {
  if (op !== 'sum' || !isF(x) || x.size < minSize(residentActive() && inPlace(x) >= 0) || axes.length === 0) return null;
  // reduced axes (ignoring size-1 ones) must be consecutive
  const red = axes.filter((a) => x.shape[a] !== 1);
  if (red.length === 0) return null;
  for (let i = red[0]; i <= red[red.length - 1]; i++) if (!axes.includes(i) && x.shape[i] !== 1) return null;
  const first = red[0],
    last = red[red.length - 1];
  const outer = sizeOf(x.shape.slice(0, first));
  const R = sizeOf(x.shape.slice(first, last + 1));
  const inner = sizeOf(x.shape.slice(last + 1));
  const rt = wasmRuntime();
  if (!rt) return null;
  const dt = x.dtype as 'f32' | 'f64';
  const E = dt === 'f32' ? 4 : 8;
  const nOut = outer * inner;
  const out = allocateOut(dt, nOut, false) as FloatStorage;
  const ix = inPlace(x),
    io = storageAddr(out);
  const ar = wasmArena(rt);
  ar.reset();
  const px = ix >= 0 ? ix : ar.alloc(x.size * E),
    po = io >= 0 ? io : ar.alloc(nOut * E);
  const tmp = inner > 1 && dt === 'f32' ? ar.alloc(nOut * 8) : 0;
  ar.commit();
  const view = dt === 'f32' ? ar.f32 : ar.f64;
  if (ix < 0) stage(view, px, E, x, true);
  if (inner === 1) runMap(rt, `rsum_${dt}`, outer, x.size, [px, po, R], deferral(io, ix >= 0));
  else runMap(rt, `csum_${dt}`, nOut, x.size, [px, po, R, inner, tmp], deferral(io, ix >= 0 && tmp === 0));
  if (io < 0) out.set(view.subarray(po / E, po / E + nOut));
  ar.close();
  const shape = keepdims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
  return fromStorage(out, shape);
}

/** SIMD `softmax` along the last axis of a contiguous input (not log-softmax), or null. */
export function softmaxSimd(x: Tensor, log: boolean): Tensor | null {
  if (log || !isF(x) || x.ndim === 0 || x.size < minSize(residentActive() && inPlace(x) >= 0)) return null;
  const rt = wasmRuntime();
  if (!rt) return null;
  const dt = x.dtype as 'f32' | 'f64';
  const E = dt === 'f32' ? 4 : 8;
  const n = x.shape[x.ndim - 1];
  const rows = x.size / n;
  const out = allocateOut(dt, x.size, false) as FloatStorage;
  const ix = inPlace(x),
    io = storageAddr(out);
  const ar = wasmArena(rt);
  ar.reset();
  const px = ix >= 0 ? ix : ar.alloc(x.size * E),
    po = io >= 0 ? io : ar.alloc(x.size * E);
  ar.commit();
  const view = dt === 'f32' ? ar.f32 : ar.f64;
  if (ix < 0) stage(view, px, E, x, true);
  runMap(rt, `softmax_${dt}`, rows, x.size * 4, [px, po, n], deferral(io, ix >= 0));
  if (io < 0) out.set(view.subarray(po / E, po / E + x.size));
  ar.close();
  return fromStorage(out, x.shape);
}

/** SIMD softmax backward along the last axis (`y ⊙ (g − Σ y·g)`; not log-softmax), or null. */
export function softmaxGradSimd(y: Tensor, g: Tensor, log: boolean): Tensor | null {
  if (log || !isF(y) || y.dtype !== g.dtype || y.ndim === 0 || y.size < minSize(residentActive() && inPlace(y) >= 0 && inPlace(g) >= 0)) return null;
  if (y.ndim !== g.ndim || y.shape.some((d, i) => d !== g.shape[i])) return null;
  const rt = wasmRuntime();
  if (!rt) return null;
  const dt = y.dtype as 'f32' | 'f64';
  const E = dt === 'f32' ? 4 : 8;
  const n = y.shape[y.ndim - 1];
  const rows = y.size / n;
  const out = allocateOut(dt, y.size, false) as FloatStorage;
  const iy = inPlace(y),
    ig = inPlace(g),
    io = storageAddr(out);
  const ar = wasmArena(rt);
  ar.reset();
  const py = iy >= 0 ? iy : ar.alloc(y.size * E),
    pg = ig >= 0 ? ig : ar.alloc(y.size * E),
    po = io >= 0 ? io : ar.alloc(y.size * E);
  ar.commit();
  const view = dt === 'f32' ? ar.f32 : ar.f64;
  if (iy < 0) stage(view, py, E, y, true);
  if (ig < 0) stage(view, pg, E, g, true);
  runMap(rt, `smgrad_${dt}`, rows, y.size * 2, [py, pg, po, n], deferral(io, iy >= 0 && ig >= 0));
  if (io < 0) out.set(view.subarray(po / E, po / E + y.size));
  ar.close();
  return fromStorage(out, y.shape);
}
