/**
 * WebAssembly SIMD paths of fused CPU kernels (wasm/laplace.ts, wasm/logsoftmax.ts): the laplace
 * attention function and its vector-Jacobian product, log-softmax and its backward. Like simd.ts, each returns null when its path does not apply
 * (dtype, size, SIMD disabled) and register.ts falls back to the plain-TypeScript kernel (fused.ts)
 * or the generic composition, which stay the references these paths are tested against.
 */
import { allocate, type FloatStorage } from '../../dtype.js';
import { ShapeError } from '../../errors.js';
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
