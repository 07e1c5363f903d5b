/**
 * WebAssembly SIMD paths of fused CPU kernels: the laplace attention function and its
 * vector-Jacobian product (wasm/laplace.ts), log-softmax and its backward (wasm/logsoftmax.ts),
 * batch norm and its backward (sequences of the elementwise map functions on operands kept in
 * wasm memory). Like simd.ts, each returns null when its path does not apply (dtype, size, SIMD
 * disabled) and register.ts falls back to the plain-TypeScript kernel or the generic composition,
 * which stay the references these paths are tested against. Resident operands (see resident.ts)
 * are read in place and outputs allocated resident, as in simd.ts.
 */
import type { FloatStorage } from '../../dtype.js';
import { ShapeError } from '../../errors.js';
import { ERF_TABLE } from '../../special.js';
import { fromStorage, type Tensor } from '../../tensor.js';
import { checkBatchNorm, checkBatchNormGrad } from '../checks.js';
import { allocateOut, residentActive } from './resident.js';
import { inPlace, minSize, runMap, stage, storageAddr } from './simd.js';
import { bnBlock } from './wasm/batchnorm.js';
import { wasmArena, wasmRuntime, type Arena } from './wasm/runtime.js';

/**
 * Work units per element given to the pool's split (the erf polynomial and the exp cost several
 * times an elementwise op).
 */
const WORK_PER_ELEMENT = 8;

type DT = 'f32' | 'f64';

/** The dtype when floating and the SIMD runtime is up, and `size` reaches the threshold; else null. */
function eligible(ts: Tensor[], size: number): DT | null {
  const dt = ts[0].dtype;
  if ((dt !== 'f32' && dt !== 'f64') || ts.some((t) => t.dtype !== dt)) return null;
  if (size < minSize(residentActive() && ts.every((t) => inPlace(t) >= 0))) return null;
  return wasmRuntime() ? dt : null;
}

/**
 * One kernel call's wasm memory: inputs read in place when resident and contiguous (else staged
 * into scratch), outputs written in place when resident (else into scratch and copied out).
 * Outputs must be allocated before `open()`.
 */
export class Call {
  readonly E: number;
  readonly ar: Arena;
  private readonly ins: [Tensor, number][] = [];
  private readonly outs: [FloatStorage, number, number][] = [];
  constructor(readonly dt: DT) {
    this.E = dt === 'f32' ? 4 : 8;
    this.ar = wasmArena(wasmRuntime()!);
    this.ar.reset();
  }
  /** Byte address of input `t` (row-major). */
  input(t: Tensor): number {
    const at = inPlace(t);
    if (at >= 0) return at;
    const a = this.ar.alloc(t.size * this.E);
    this.ins.push([t, a]);
    return a;
  }
  /** Byte address of output storage `s` (`n` elements). */
  output(s: FloatStorage, n: number): number {
    const at = storageAddr(s);
    if (at >= 0) return at;
    const a = this.ar.alloc(n * this.E);
    this.outs.push([s, a, n]);
    return a;
  }
  /** Scratch of `n` elements (`bytes` per element, default the element size). */
  scratch(n: number, bytes = this.E): number {
    return this.ar.alloc(n * bytes);
  }
  /**
   * Grows the memory over the scratch and stages the inputs; returns the element view. The
   * staging copies may still run when this returns (deferred jobs): the staged inputs are read by
   * the call's wasm jobs only, which run after them.
   */
  open(): FloatStorage {
    this.ar.commit();
    const view = this.view();
    for (const [t, a] of this.ins) stage(view, a, this.E, t, true);
    return view;
  }
  view(): FloatStorage {
    return this.dt === 'f32' ? this.ar.f32 : this.ar.f64;
  }
  /**
   * How the call's last job may be deferred (wasm/runtime.ts) when the kernel reads nothing back
   * after it: not when outputs are copied out at `close`.
   */
  defer(): 'scratch' | false {
    return this.outs.length === 0 ? 'scratch' : false;
  }
  /** Copies the non-resident outputs out and releases the scratch. */
  close(): void {
    const view = this.view();
    for (const [s, a, n] of this.outs) s.set(view.subarray(a / this.E, a / this.E + n));
    this.ar.close();
  }
}

/** SIMD `laplace`: `0.5·(1 + erf((x − mu)/den))`, bitwise equal to `laplaceCpu`; or null. */
export function laplaceSimd(x: Tensor, mu: number, den: number): Tensor | null {
  const dt = eligible([x], x.size);
  if (!dt) return null;
  const n = x.size;
  const out = allocateOut(dt, n, false) as FloatStorage;
  const c = new Call(dt);
  const px = c.input(x),
    po = c.output(out, n),
    prm = c.scratch(2),
    tbl = dt === 'f64' ? c.scratch(ERF_TABLE.length, 8) : 0; // f32's erf32 needs no table
  const view = c.open();
  view[prm / c.E] = mu;
  view[prm / c.E + 1] = den;
  if (tbl) c.ar.f64.set(ERF_TABLE, tbl / 8);
  runMap(wasmRuntime()!, `laplace_${dt}`, n, n * WORK_PER_ELEMENT, [px, po, prm, tbl], c.defer());
  c.close();
  return fromStorage(out, x.shape);
}

/**
 * SIMD `laplaceGrad`: `g · (exp(−z²) / (√π·den))`, `z = (x − mu)/den`, each step rounded to the
 * element type as the generic composition rounds it (bitwise equal to it on the SIMD kernels); or
 * null.
 */
export function laplaceGradSimd(x: Tensor, g: Tensor, mu: number, den: number): Tensor | null {
  if (g.dtype !== x.dtype || g.ndim !== x.ndim || g.shape.some((d, i) => d !== x.shape[i])) {
    throw new ShapeError(`laplaceGrad: gradient [${g.shape}] ${g.dtype} does not match input [${x.shape}] ${x.dtype}`);
  }
  const dt = eligible([x, g], x.size);
  if (!dt) return null;
  const n = x.size;
  const out = allocateOut(dt, n, false) as FloatStorage;
  const c = new Call(dt);
  const px = c.input(x),
    pg = c.input(g),
    po = c.output(out, n),
    prm = c.scratch(3);
  const view = c.open();
  view[prm / c.E] = mu;
  view[prm / c.E + 1] = den;
  view[prm / c.E + 2] = Math.sqrt(Math.PI) * den;
  runMap(wasmRuntime()!, `laplacegrad_${dt}`, n, n * WORK_PER_ELEMENT, [px, pg, po, prm], c.defer());
  c.close();
  return fromStorage(out, x.shape);
}

/** SIMD log-softmax along the last axis (`x − (m + log Σ exp(x − m))`; sums float64, f32's exps float32: wasm/logsoftmax.ts), or null. */
export function logSoftmaxSimd(x: Tensor): Tensor | null {
  if (x.ndim === 0) return null;
  const dt = eligible([x], x.size);
  if (!dt) return null;
  const rt = wasmRuntime()!;
  const n = x.shape[x.ndim - 1];
  const rows = x.size / n;
  const out = allocateOut(dt, x.size, false) as FloatStorage;
  const c = new Call(dt);
  const px = c.input(x),
    po = c.output(out, x.size),
    st = c.scratch(2 * rows, 8);
  c.open();
  runMap(rt, `lsmstats_${dt}`, rows, x.size * 4, [px, st, n]);
  // m + log Σ exp(x − m) per row (wasm has no log)
  const s = c.ar.f64;
  for (let r = 0, i = st / 8; r < rows; r++, i += 2) s[i] = Math.log(s[i + 1]) + s[i];
  runMap(rt, `lsmout_${dt}`, rows, x.size, [px, st, po, n], c.defer());
  c.close();
  return fromStorage(out, x.shape);
}

/** SIMD log-softmax backward along the last axis (`g − exp(y)·Σ g`; Σ g float64, f32's exp float32: wasm/logsoftmax.ts), or null. */
export function logSoftmaxGradSimd(y: Tensor, g: Tensor): Tensor | null {
  if (y.ndim === 0 || y.ndim !== g.ndim || y.shape.some((d, i) => d !== g.shape[i])) return null;
  const dt = eligible([y, g], y.size);
  if (!dt) return null;
  const n = y.shape[y.ndim - 1];
  const rows = y.size / n;
  const out = allocateOut(dt, y.size, false) as FloatStorage;
  const c = new Call(dt);
  const py = c.input(y),
    pg = c.input(g),
    po = c.output(out, y.size);
  c.open();
  runMap(wasmRuntime()!, `lsmgrad_${dt}`, rows, y.size * 4, [py, pg, po, n], c.defer());
  c.close();
  return fromStorage(out, y.shape);
}

/** Element-type rounding of a float64 value. */
const roundTo = (dt: DT): ((v: number) => number) => (dt === 'f32' ? Math.fround : (v) => v);

/**
 * SIMD `batchNorm`: the composition of nn/norm.ts (column sums, row-broadcast sub / mul, square)
 * run as wasm map functions on operands that stay in wasm memory between the steps. Bitwise equal
 * to `batchNormCpu` and the composition (the per-channel scalars `· 1/N` and `rsqrt(var + eps)`
 * are computed in JS as the plain-TS kernels compute them); or null.
 */
export function batchNormSimd(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number): [Tensor, Tensor] | null {
  checkBatchNorm(x, weight, bias);
  const dt = eligible([x], x.size);
  if (!dt) return null;
  const rt = wasmRuntime()!;
  const R = roundTo(dt);
  const [N, D] = x.shape;
  const n = N * D;
  const y = allocateOut(dt, n, false) as FloatStorage,
    st = allocateOut(dt, 2 * D, false) as FloatStorage;
  const c = new Call(dt);
  const E = c.E;
  const px = c.input(x),
    py = c.output(y, n),
    pm = c.output(st, 2 * D),
    pv = pm + D * E,
    pw = weight ? c.input(weight) : 0,
    pb = bias ? c.input(bias) : 0,
    pc = c.scratch(n),
    pr = c.scratch(D),
    tmp = c.scratch(D, 8);
  const view = c.open();
  const inv = R(1 / N),
    e = R(eps);
  const [m, v, r] = [pm / E, pv / E, pr / E];
  const colSum = (src: number, dst: number) => runMap(rt, `csum_${dt}`, D, n, [src, dst, N, D, tmp]);
  const row = (op: string, a: number, b: number, out: number) => runMap(rt, `bin_${op}_${dt}_vv`, n, n, [a, b, out, D, D, 0]);
  colSum(px, pm);
  for (let d = 0; d < D; d++) view[m + d] = view[m + d] * inv;
  row('sub', px, pm, pc); // xc = x − mean
  runMap(rt, `un_square_${dt}`, n, n, [pc, py]);
  colSum(py, pv);
  for (let d = 0; d < D; d++) {
    view[v + d] = view[v + d] * inv;
    view[r + d] = 1 / Math.sqrt(R(view[v + d] + e));
  }
  row('mul', pc, pr, py); // y = xc · r
  if (weight) row('mul', py, pw, py);
  if (bias) row('add', py, pb, py);
  c.close();
  return [fromStorage(y, [N, D]), fromStorage(st, [2, D])];
}

/**
 * SIMD `batchNormGrad`: the composition of generic-fused.ts `batchNormGradGeneric` as wasm map
 * functions on operands kept in wasm memory; bitwise equal to it; or null.
 */
export function batchNormGradSimd(x: Tensor, g: Tensor, stats: Tensor, weight: Tensor | null, eps: number): [Tensor, Tensor] | null {
  checkBatchNormGrad(x, g, stats, weight);
  const dt = eligible([x, g], x.size);
  if (!dt) return null;
  const rt = wasmRuntime()!;
  const R = roundTo(dt);
  const [N, D] = x.shape;
  const n = N * D;
  const dx = allocateOut(dt, n, false) as FloatStorage,
    dwb = allocateOut(dt, 2 * D, false) as FloatStorage;
  const c = new Call(dt);
  const E = c.E;
  const px = c.input(x),
    pg = c.input(g),
    pdx = c.output(dx, n),
    psgx = c.output(dwb, 2 * D),
    psg = psgx + D * E,
    pw = weight ? c.input(weight) : 0,
    // rows mean, r (from var), mean(ĝ), mean(ĝ·x̂), then x̂, g·x̂, ĝ, ĝ·x̂ (wasm/batchnorm.ts)
    blk = bnBlock(D, n, E),
    st = c.scratch((weight ? blk.bytes : blk.gh) / E),
    sums = weight ? c.scratch(2 * D) : 0, // Σĝ, Σĝ·x̂ (without a weight they are Σg, Σg·x̂: dwb itself)
    tmp = c.scratch(D, 8);
  const [, pr, pm1, pm2] = blk.rows.map((o) => st + o);
  const view = c.open();
  stage(view, st, E, stats); // mean row, then var row (→ r below)
  const inv = R(1 / N),
    e = R(eps);
  for (let d = 0, v = pr / E; d < D; d++) view[v + d] = 1 / Math.sqrt(R(view[v + d] + e));
  const colSum = (src: number, dst: number) => runMap(rt, `csum_${dt}`, D, n, [src, dst, N, D, tmp]);
  runMap(rt, `bngprep_${dt}`, n, 2 * n, [px, pg, pw, st, D, n]);
  colSum(pg, psg);
  colSum(st + blk.t1, psgx);
  let s1 = psg,
    s2 = psgx;
  if (weight) {
    s1 = sums;
    s2 = sums + D * E;
    colSum(st + blk.gh, s1);
    colSum(st + blk.t2, s2);
  }
  for (let d = 0, a = pm1 / E, b = pm2 / E; d < D; d++) {
    view[a + d] = view[s1 / E + d] * inv;
    view[b + d] = view[s2 / E + d] * inv;
  }
  runMap(rt, `bngout_${dt}`, n, n, [weight ? st + blk.gh : pg, st, D, pdx]);
  c.close();
  return [fromStorage(dx, [N, D]), fromStorage(dwb, [2, D])];
}
