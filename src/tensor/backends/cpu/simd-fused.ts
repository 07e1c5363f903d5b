/**
 * WebAssembly SIMD paths of fused CPU kernels (wasm/laplace.ts, wasm/logsoftmax.ts): the laplace
 * attention function and its vector-Jacobian product, log-softmax and its backward; batch norm
 * and its backward as sequences of the elementwise map functions on operands kept in wasm memory. Like simd.ts, each returns null when its path does not apply
 * (dtype, size, SIMD disabled) and register.ts falls back to the plain-TypeScript kernel (fused.ts)
 * or the generic composition, which stay the references these paths are tested against.
 */
import { allocate, type FloatStorage } from '../../dtype.js';
import { ShapeError } from '../../errors.js';
import { checkBatchNorm, checkBatchNormGrad } from '../checks.js';
import { ERF_TABLE } from '../../special.js';
import { fromStorage, type Tensor } from '../../tensor.js';
import { runMap, simdMinSize, stage } from './simd.js';
import { wasmArena, wasmRuntime } from './wasm/runtime.js';

/**
 * Work units per element given to the pool's split (the erf polynomial and the exp cost several
 * times an elementwise op).
 */
const WORK_PER_ELEMENT = 8;

/** SIMD `laplace`: `0.5·(1 + erf((x − mu)/den))`, bitwise equal to `laplaceCpu`; or null. */
export function laplaceSimd(x: Tensor, mu: number, den: number): Tensor | null {
  if ((x.dtype !== 'f32' && x.dtype !== 'f64') || x.size < simdMinSize()) return null;
  const rt = wasmRuntime();
  if (!rt) return null;
  const dt = x.dtype;
  const E = dt === 'f32' ? 4 : 8;
  const n = x.size;
  const ar = wasmArena(rt);
  ar.reset();
  const px = ar.alloc(n * E),
    po = ar.alloc(n * E),
    prm = ar.alloc(3 * E),
    tbl = ar.alloc(ERF_TABLE.length * 8);
  ar.commit();
  const view = dt === 'f32' ? ar.f32 : ar.f64;
  stage(view, px, E, x);
  view[prm / E] = mu;
  view[prm / E + 1] = den;
  ar.f64.set(ERF_TABLE, tbl / 8);
  runMap(rt, `laplace_${dt}`, n, n * WORK_PER_ELEMENT, [px, po, prm, tbl]);
  const out = allocate(dt, n) as FloatStorage;
  out.set(view.subarray(po / E, po / E + n));
  return fromStorage(out, x.shape);
}

/**
 * SIMD `laplaceGrad`: `g · (exp(−z²) / (√π·den))`, `z = (x − mu)/den`, each step rounded to the
 * element type as the generic composition rounds it (bitwise equal to it on the SIMD kernels); or
 * null.
 */
export function laplaceGradSimd(x: Tensor, g: Tensor, mu: number, den: number): Tensor | null {
  if ((x.dtype !== 'f32' && x.dtype !== 'f64') || x.size < simdMinSize()) return null;
  if (g.dtype !== x.dtype || g.ndim !== x.ndim || g.shape.some((d, i) => d !== x.shape[i])) {
    throw new ShapeError(`laplaceGrad: gradient [${g.shape}] ${g.dtype} does not match input [${x.shape}] ${x.dtype}`);
  }
  const rt = wasmRuntime();
  if (!rt) return null;
  const dt = x.dtype;
  const E = dt === 'f32' ? 4 : 8;
  const n = x.size;
  const ar = wasmArena(rt);
  ar.reset();
  const px = ar.alloc(n * E),
    pg = ar.alloc(n * E),
    po = ar.alloc(n * E),
    prm = ar.alloc(3 * E);
  ar.commit();
  const view = dt === 'f32' ? ar.f32 : ar.f64;
  stage(view, px, E, x);
  stage(view, pg, E, g);
  view[prm / E] = mu;
  view[prm / E + 1] = den;
  view[prm / E + 2] = Math.sqrt(Math.PI) * den;
  runMap(rt, `laplacegrad_${dt}`, n, n * WORK_PER_ELEMENT, [px, pg, po, prm]);
  const out = allocate(dt, n) as FloatStorage;
  out.set(view.subarray(po / E, po / E + n));
  return fromStorage(out, x.shape);
}

/** SIMD log-softmax along the last axis (`x − (m + log Σ exp(x − m))`, float64 inside), or null. */
export function logSoftmaxSimd(x: Tensor): Tensor | null {
  if ((x.dtype !== 'f32' && x.dtype !== 'f64') || x.ndim === 0 || x.size < simdMinSize()) return null;
  const rt = wasmRuntime();
  if (!rt) return null;
  const dt = x.dtype;
  const E = dt === 'f32' ? 4 : 8;
  const n = x.shape[x.ndim - 1];
  const rows = x.size / n;
  const ar = wasmArena(rt);
  ar.reset();
  const px = ar.alloc(x.size * E),
    po = ar.alloc(x.size * E),
    st = ar.alloc(rows * 16);
  ar.commit();
  const view = dt === 'f32' ? ar.f32 : ar.f64;
  stage(view, px, E, x);
  runMap(rt, `lsmstats_${dt}`, rows, x.size * 4, [px, st, n]);
  // m + log Σ exp(x − m) per row (wasm has no log)
  const s = ar.f64;
  for (let r = 0, i = st / 8; r < rows; r++, i += 2) s[i] = Math.log(s[i + 1]) + s[i];
  runMap(rt, `lsmout_${dt}`, rows, x.size, [px, st, po, n]);
  const out = allocate(dt, x.size) as FloatStorage;
  out.set(view.subarray(po / E, po / E + x.size));
  return fromStorage(out, x.shape);
}

/** SIMD log-softmax backward along the last axis (`g − exp(y)·Σ g`, float64 inside), or null. */
export function logSoftmaxGradSimd(y: Tensor, g: Tensor): Tensor | null {
  if ((y.dtype !== 'f32' && y.dtype !== 'f64') || y.dtype !== g.dtype || y.ndim === 0 || y.size < simdMinSize()) return null;
  if (y.ndim !== g.ndim || y.shape.some((d, i) => d !== g.shape[i])) return null;
  const rt = wasmRuntime();
  if (!rt) return null;
  const dt = y.dtype;
  const E = dt === 'f32' ? 4 : 8;
  const n = y.shape[y.ndim - 1];
  const rows = y.size / n;
  const ar = wasmArena(rt);
  ar.reset();
  const py = ar.alloc(y.size * E),
    pg = ar.alloc(y.size * E),
    po = ar.alloc(y.size * E);
  ar.commit();
  const view = dt === 'f32' ? ar.f32 : ar.f64;
  stage(view, py, E, y);
  stage(view, pg, E, g);
  runMap(rt, `lsmgrad_${dt}`, rows, y.size * 4, [py, pg, po, n]);
  const out = allocate(dt, y.size) as FloatStorage;
  out.set(view.subarray(po / E, po / E + y.size));
  return fromStorage(out, y.shape);
}

/** Element-type rounding of a float64 value. */
const roundTo = (dt: 'f32' | 'f64'): ((v: number) => number) => (dt === 'f32' ? Math.fround : (v) => v);

/**
 * SIMD `batchNorm`: the composition of nn/norm.ts (column sums, row-broadcast sub / mul, square)
 * run as wasm map functions on operands that stay in wasm memory between the steps — one copy in,
 * one copy out. Bitwise equal to `batchNormCpu` and the composition (the per-channel scalars
 * `· 1/N` and `rsqrt(var + eps)` are computed in JS as the plain-TS kernels compute them); or null.
 */
export function batchNormSimd(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number): [Tensor, Tensor] | null {
  checkBatchNorm(x, weight, bias);
  if ((x.dtype !== 'f32' && x.dtype !== 'f64') || x.size < simdMinSize()) return null;
  const rt = wasmRuntime();
  if (!rt) return null;
  const dt = x.dtype;
  const E = dt === 'f32' ? 4 : 8;
  const R = roundTo(dt);
  const [N, D] = x.shape;
  const n = N * D;
  const ar = wasmArena(rt);
  ar.reset();
  const px = ar.alloc(n * E),
    pc = ar.alloc(n * E),
    pt = ar.alloc(n * E),
    pm = ar.alloc(D * E),
    pv = ar.alloc(D * E),
    pr = ar.alloc(D * E),
    pw = ar.alloc(D * E),
    pb = ar.alloc(D * E),
    tmp = ar.alloc(D * 8);
  ar.commit();
  const view = dt === 'f32' ? ar.f32 : ar.f64;
  stage(view, px, E, x);
  const inv = R(1 / N),
    e = R(eps);
  const [m, v, r] = [pm / E, pv / E, pr / E];
  runMap(rt, `csum_${dt}`, D, n, [px, pm, N, D, tmp]);
  for (let d = 0; d < D; d++) view[m + d] = view[m + d] * inv;
  runMap(rt, `bin_sub_${dt}_vv`, n, n, [px, pm, pc, D, D, 0]); // xc = x − mean
  runMap(rt, `un_square_${dt}`, n, n, [pc, pt]);
  runMap(rt, `csum_${dt}`, D, n, [pt, pv, N, D, tmp]);
  for (let d = 0; d < D; d++) {
    view[v + d] = view[v + d] * inv;
    view[r + d] = 1 / Math.sqrt(R(view[v + d] + e));
  }
  runMap(rt, `bin_mul_${dt}_vv`, n, n, [pc, pr, pt, D, D, 0]); // y = xc · r
  if (weight) {
    stage(view, pw, E, weight);
    runMap(rt, `bin_mul_${dt}_vv`, n, n, [pt, pw, pt, D, D, 0]);
  }
  if (bias) {
    stage(view, pb, E, bias);
    runMap(rt, `bin_add_${dt}_vv`, n, n, [pt, pb, pt, D, D, 0]);
  }
  const y = allocate(dt, n) as FloatStorage,
    st = allocate(dt, 2 * D) as FloatStorage;
  y.set(view.subarray(pt / E, pt / E + n));
  st.set(view.subarray(m, m + D));
  st.set(view.subarray(v, v + D), D);
  return [fromStorage(y, [N, D]), fromStorage(st, [2, D])];
}

/**
 * SIMD `batchNormGrad`: the composition of generic-fused.ts `batchNormGradGeneric` as wasm map
 * functions on operands kept in wasm memory (two copies in, one out); bitwise equal to it; or
 * null.
 */
export function batchNormGradSimd(x: Tensor, g: Tensor, stats: Tensor, weight: Tensor | null, eps: number): [Tensor, Tensor] | null {
  checkBatchNormGrad(x, g, stats, weight);
  if ((x.dtype !== 'f32' && x.dtype !== 'f64') || x.size < simdMinSize()) return null;
  const rt = wasmRuntime();
  if (!rt) return null;
  const dt = x.dtype;
  const E = dt === 'f32' ? 4 : 8;
  const R = roundTo(dt);
  const [N, D] = x.shape;
  const n = N * D;
  const ar = wasmArena(rt);
  ar.reset();
  const px = ar.alloc(n * E),
    pg = ar.alloc(n * E),
    pxh = ar.alloc(n * E),
    pgh = weight ? ar.alloc(n * E) : pg,
    pt = ar.alloc(n * E),
    pdx = ar.alloc(n * E),
    prow = ar.alloc(8 * D * E),
    tmp = ar.alloc(D * 8);
  ar.commit();
  const view = dt === 'f32' ? ar.f32 : ar.f64;
  // per-channel rows: mean, var → r, w, Σg, Σg·x̂, m1, m2
  const [pm, pv, pw, psg, psgx, pm1, pm2] = [0, 1, 2, 3, 4, 5, 6].map((i) => prow + i * D * E);
  stage(view, px, E, x);
  stage(view, pg, E, g);
  stage(view, pm, E, stats); // mean row then var row
  const inv = R(1 / N),
    e = R(eps);
  for (let d = 0, v = pv / E; d < D; d++) view[v + d] = 1 / Math.sqrt(R(view[v + d] + e)); // r
  const colSum = (src: number, dst: number) => runMap(rt, `csum_${dt}`, D, n, [src, dst, N, D, tmp]);
  const row = (op: string, a: number, b: number, out: number) => runMap(rt, `bin_${op}_${dt}_vv`, n, n, [a, b, out, D, D, 0]);
  const same = (op: string, a: number, b: number, out: number) => runMap(rt, `bin_${op}_${dt}_vv`, n, n, [a, b, out, n, 0, 0]);
  row('sub', px, pm, pxh);
  row('mul', pxh, pv, pxh); // x̂ = (x − mean) · r
  colSum(pg, psg);
  same('mul', pg, pxh, pt);
  colSum(pt, psgx);
  let s1 = psg,
    s2 = psgx;
  if (weight) {
    stage(view, pw, E, weight);
    row('mul', pg, pw, pgh); // ĝ = g · w
    s1 = pm1;
    colSum(pgh, s1);
    same('mul', pgh, pxh, pt);
    s2 = pm2;
    colSum(pt, s2);
  }
  for (let d = 0, a = pm1 / E, b = pm2 / E; d < D; d++) {
    view[a + d] = view[s1 / E + d] * inv;
    view[b + d] = view[s2 / E + d] * inv;
  }
  row('mul', pxh, pm2, pt); // x̂ · mean(ĝ·x̂)
  row('sub', pgh, pm1, pdx); // ĝ − mean(ĝ)
  same('sub', pdx, pt, pdx);
  row('mul', pdx, pv, pdx); // · r
  const dx = allocate(dt, n) as FloatStorage,
    dwb = allocate(dt, 2 * D) as FloatStorage;
  dx.set(view.subarray(pdx / E, pdx / E + n));
  dwb.set(view.subarray(psgx / E, psgx / E + D));
  dwb.set(view.subarray(psg / E, psg / E + D), D);
  return [fromStorage(dx, [N, D]), fromStorage(dwb, [2, D])];
}
