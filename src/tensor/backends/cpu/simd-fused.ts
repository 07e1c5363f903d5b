/**
 * WebAssembly SIMD paths of fused CPU kernels (wasm/laplace.ts): the laplace attention function
 * and its vector-Jacobian product. Like simd.ts, each returns null when its path does not apply
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
