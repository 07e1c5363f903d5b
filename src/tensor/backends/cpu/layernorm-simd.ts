/**
 * WebAssembly SIMD paths of the fused `layerNorm` / `layerNormGrad` kernels (wasm/layernorm.ts;
 * layer normalisation, or RMS normalisation without centering):
 * two passes over each row forward (statistics, output) and two backward, instead of the ~9 and
 * ~20 elementwise passes and reductions of the composition (generic-fused.ts, the reference and
 * the fallback). Rows are split across the worker pool for large inputs; operands and outputs go
 * through simd-fused.ts `Call` (resident ones read and written in place, others staged). The
 * weight's gradient sums `g·x̂` (written by the backward kernel) and the bias's sums g over the
 * rows with the SIMD column sum.
 * Each returns null where it does not apply (SIMD off, a small input, a non-f32/f64 dtype).
 */
import { type FloatStorage } from '../../dtype.js';
import { checkLayerNorm, checkLayerNormGrad } from '../checks.js';
import { fromStorage, type Tensor } from '../../tensor.js';
import * as K from '../../kernels.js';
import { allocateOut, residentActive } from './resident.js';
import { inPlace, minSize, runMap } from './simd.js';
import { Call } from './simd-fused.js';
import { LN_DESC } from './wasm/layernorm.js';
import { wasmRuntime } from './wasm/runtime.js';

/** SIMD `layerNorm`, or null. */
export function layerNormSimd(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number, center: boolean): [Tensor, Tensor] | null {
  checkLayerNorm(x, weight, bias);
  if (x.dtype !== 'f32' && x.dtype !== 'f64') return null;
  if (x.size < minSize(residentActive() && inPlace(x) >= 0)) return null;
  if (!wasmRuntime()) return null;
  const dt = x.dtype;
  const [R, D] = x.shape;
  const y = allocateOut(dt, R * D, false) as FloatStorage,
    st = allocateOut(dt, 2 * R, false) as FloatStorage;
  const c = new Call(dt);
  const ax = c.input(x),
    aw = weight ? c.input(weight) : 0,
    ab = bias ? c.input(bias) : 0,
    ay = c.output(y, R * D),
    as = c.output(st, 2 * R),
    desc = c.scratch(LN_DESC.bytes, 1);
  const view = c.open();
  const d = new Int32Array(view.buffer, desc, LN_DESC.bytes / 4);
  d[LN_DESC.D / 4] = D;
  d[LN_DESC.x / 4] = ax;
  d[LN_DESC.y / 4] = ay;
  d[LN_DESC.st / 4] = as;
  d[LN_DESC.w / 4] = aw;
  d[LN_DESC.b / 4] = ab;
  d[LN_DESC.center / 4] = center ? 1 : 0;
  view[(desc + LN_DESC.eps) / c.E] = eps;
  view[(desc + LN_DESC.invD) / c.E] = 1 / D;
  runMap(wasmRuntime()!, `ln_fwd_${dt}`, R, 4 * R * D, [desc], c.defer());
  c.close();
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
  if (!wasmRuntime()) return null;
  const dt = x.dtype;
  const [R, D] = x.shape;
  const dx = allocateOut(dt, R * D, false) as FloatStorage;
  const gx = weight ? (allocateOut(dt, R * D, false) as FloatStorage) : null;
  const c = new Call(dt);
  const ax = c.input(x),
    ag = c.input(g),
    ast = c.input(stats),
    aw = weight ? c.input(weight) : 0,
    adx = c.output(dx, R * D),
    agx = gx ? c.output(gx, R * D) : 0,
    desc = c.scratch(LN_DESC.bytes, 1);
  const view = c.open();
  const d = new Int32Array(view.buffer, desc, LN_DESC.bytes / 4);
  d[LN_DESC.D / 4] = D;
  d[LN_DESC.x / 4] = ax;
  d[LN_DESC.y / 4] = adx;
  d[LN_DESC.st / 4] = ast;
  d[LN_DESC.w / 4] = aw;
  d[LN_DESC.g / 4] = ag;
  d[LN_DESC.gx / 4] = agx;
  d[LN_DESC.center / 4] = center ? 1 : 0;
  runMap(wasmRuntime()!, `ln_bwd_${dt}`, R, 6 * R * D, [desc], c.defer());
  c.close();
  // the parameters' gradients: column sums over the rows
  const dw = gx ? K.reduce(fromStorage(gx, [R, D]), 'sum', [0], false) : null;
  const db = bias ? K.reduce(g, 'sum', [0], false) : null;
  return [fromStorage(dx, [R, D]), dw, db];
}
