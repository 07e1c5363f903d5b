/**
 * WebAssembly SIMD paths of the fused `layerNorm` / `layerNormGrad` kernels (wasm/layernorm.ts;
 * layer normalisation, or RMS normalisation without centering):
 * two passes over each row forward (statistics, output) and two backward, instead of the ~9 and
 * ~20 elementwise passes and reductions of the composition (generic-fused.ts, the reference and
 * the fallback). Rows are split across the worker pool for large inputs; resident operands are
 * read in place and resident outputs written in place. The weight's gradient sums `g·x̂` (written
 * by the backward kernel) and the bias's sums g over the rows with the SIMD column sum.
 * Each returns null where it does not apply (SIMD off, a small input, a non-f32/f64 dtype).
 */
import { type FloatStorage } from '../../dtype.js';
import { checkLayerNorm, checkLayerNormGrad } from '../checks.js';
import { fromStorage, type Tensor } from '../../tensor.js';
import * as K from '../../kernels.js';
import { allocateOut, residentActive } from './resident.js';
import { inPlace, minSize, runMap, stage, storageAddr } from './simd.js';
import { LN_DESC } from './wasm/layernorm.js';
import { wasmArena, wasmRuntime, type Arena } from './wasm/runtime.js';

/** Byte address of `t`'s elements in the wasm memory: in place when resident and contiguous, else staged into the arena. */
function operandAddr(ar: Arena, t: Tensor, E: number, staged: Tensor[]): number {
  const at = inPlace(t);
  if (at >= 0) return at;
  staged.push(t);
  return ar.alloc(t.size * E);
}

/** SIMD `layerNorm`, or null. */
export function layerNormSimd(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number, center: boolean): [Tensor, Tensor] | null {
  checkLayerNorm(x, weight, bias);
  if (x.dtype !== 'f32' && x.dtype !== 'f64') return null;
  if (x.size < minSize(residentActive() && inPlace(x) >= 0)) return null;
  const rt = wasmRuntime();
  if (!rt) return null;
  const dt = x.dtype;
  const E = dt === 'f32' ? 4 : 8;
  const [R, D] = x.shape;
  const y = allocateOut(dt, R * D, false) as FloatStorage,
    st = allocateOut(dt, 2 * R, false) as FloatStorage;
  const ar = wasmArena(rt);
  ar.reset();
  const staged: Tensor[] = [];
  const addrs = new Map<Tensor, number>();
  for (const t of [x, weight, bias]) if (t) addrs.set(t, operandAddr(ar, t, E, staged));
  const iy = storageAddr(y),
    ay = iy >= 0 ? iy : ar.alloc(R * D * E);
  const is = storageAddr(st),
    as = is >= 0 ? is : ar.alloc(2 * R * E);
  const desc = ar.alloc(LN_DESC.bytes);
  ar.commit();
  const view = dt === 'f32' ? ar.f32 : ar.f64;
  for (const t of staged) stage(view, addrs.get(t)!, E, t);
  const d = new Int32Array(view.buffer, desc, LN_DESC.bytes / 4);
  d[LN_DESC.D / 4] = D;
  d[LN_DESC.x / 4] = addrs.get(x)!;
  d[LN_DESC.y / 4] = ay;
  d[LN_DESC.st / 4] = as;
  d[LN_DESC.w / 4] = weight ? addrs.get(weight)! : 0;
  d[LN_DESC.b / 4] = bias ? addrs.get(bias)! : 0;
  d[LN_DESC.center / 4] = center ? 1 : 0;
  view[(desc + LN_DESC.eps) / E] = eps;
  view[(desc + LN_DESC.invD) / E] = 1 / D;
  runMap(rt, `ln_fwd_${dt}`, R, 4 * R * D, [desc]);
  if (iy < 0) y.set(view.subarray(ay / E, ay / E + R * D));
  if (is < 0) st.set(view.subarray(as / E, as / E + 2 * R));
  ar.close();
  return [fromStorage(y, [R, D]), fromStorage(st, [R, 2])];
}

/** SIMD `layerNormGrad`, or null. */
export function layerNormGradSimd(
  x: Tensor,
  g: Tensor,
  stats: Tensor,
  weight: Tensor | null,
  bias: boolean,
  center: boolean,
): [Tensor, Tensor | null, Tensor | null] | null {
  checkLayerNormGrad(x, g, stats, weight);
  if (x.dtype !== 'f32' && x.dtype !== 'f64') return null;
  if (x.size < minSize(residentActive() && inPlace(x) >= 0 && inPlace(g) >= 0)) return null;
  const rt = wasmRuntime();
  if (!rt) return null;
  const dt = x.dtype;
  const E = dt === 'f32' ? 4 : 8;
  const [R, D] = x.shape;
  const dx = allocateOut(dt, R * D, false) as FloatStorage;
  const gx = weight ? (allocateOut(dt, R * D, false) as FloatStorage) : null;
  const ar = wasmArena(rt);
  ar.reset();
  const staged: Tensor[] = [];
  const addrs = new Map<Tensor, number>();
  for (const t of [x, g, stats, weight]) if (t) addrs.set(t, operandAddr(ar, t, E, staged));
  const idx = storageAddr(dx),
    adx = idx >= 0 ? idx : ar.alloc(R * D * E);
  const igx = gx ? storageAddr(gx) : -1,
    agx = !gx ? 0 : igx >= 0 ? igx : ar.alloc(R * D * E);
  const desc = ar.alloc(LN_DESC.bytes);
  ar.commit();
  const view = dt === 'f32' ? ar.f32 : ar.f64;
  for (const t of staged) stage(view, addrs.get(t)!, E, t);
  const d = new Int32Array(view.buffer, desc, LN_DESC.bytes / 4);
  d[LN_DESC.D / 4] = D;
  d[LN_DESC.x / 4] = addrs.get(x)!;
  d[LN_DESC.y / 4] = adx;
  d[LN_DESC.st / 4] = addrs.get(stats)!;
  d[LN_DESC.w / 4] = weight ? addrs.get(weight)! : 0;
  d[LN_DESC.g / 4] = addrs.get(g)!;
  d[LN_DESC.gx / 4] = agx;
  d[LN_DESC.center / 4] = center ? 1 : 0;
  runMap(rt, `ln_bwd_${dt}`, R, 6 * R * D, [desc]);
  if (idx < 0) dx.set(view.subarray(adx / E, adx / E + R * D));
  if (gx && igx < 0) gx.set(view.subarray(agx / E, agx / E + R * D));
  ar.close();
  // the parameters' gradients: column sums over the rows
  const dw = gx ? K.reduce(fromStorage(gx, [R, D]), 'sum', [0], false) : null;
  const db = bias ? K.reduce(g, 'sum', [0], false) : null;
  return [fromStorage(dx, [R, D]), dw, db];
}
