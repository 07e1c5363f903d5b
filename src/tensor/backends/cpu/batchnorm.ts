/**
 * CPU `batchNorm` / `batchNormGrad` (see `FusedKernels`): training-mode batch normalisation of
 * `[N, D]` rows in two passes forward (statistics, output) and two backward (channel sums,
 * input gradient), instead of ~8 and ~15 elementwise passes and reductions of the composition.
 *
 * Forward values are rounded step by step as the composition of primitive kernels rounds them
 * (float64 channel sums in increasing n, rounded to the element type, then `· (1/N)`, …), so they
 * are bitwise equal to it. The backward uses the closed form, with float64 sums (the composition
 * differentiates through mean and variance separately; the two agree to rounding).
 *
 * The loops are one source compiled per dtype (`new Function`), the f32 instance rounding with
 * Math.fround and the f64 one not, so each sees one typed-array class and one rounding function.
 */
import type { FloatStorage } from '../../dtype.js';
import { checkBatchNorm, checkBatchNormGrad } from '../checks.js';
import { fromStorage, type Tensor } from '../../tensor.js';
import { allocateOut } from './resident.js';
import { dense } from './elementwise.js';

type Round = (v: number) => number;
type ForwardFn = (
  x: FloatStorage,
  N: number,
  D: number,
  w: FloatStorage | null,
  b: FloatStorage | null,
  eps: number,
  y: FloatStorage,
  st: FloatStorage,
) => void;
type BackwardFn = (
  x: FloatStorage,
  g: FloatStorage,
  st: FloatStorage,
  N: number,
  D: number,
  w: FloatStorage | null,
  eps: number,
  dx: FloatStorage,
  dwb: FloatStorage,
) => void;

/** Forward loops; `R` rounds to the element type (recompiled per dtype, see the file comment). */
function makeForward(R: Round): ForwardFn {
  return function forward(x, N, D, w, b, eps, y, st) {
    const inv = R(1 / N),
      e = R(eps);
    const acc = new Float64Array(D);
    for (let n = 0, p = 0; n < N; n++) for (let d = 0; d < D; d++, p++) acc[d] += x[p];
    const mean = new Float64Array(D);
    for (let d = 0; d < D; d++) mean[d] = R(R(acc[d]) * inv);
    acc.fill(0);
    for (let n = 0, p = 0; n < N; n++) {
      for (let d = 0; d < D; d++, p++) {
        const c = R(x[p] - mean[d]);
        acc[d] += R(c * c);
      }
    }
    const r = new Float64Array(D);
    for (let d = 0; d < D; d++) {
      const v = R(R(acc[d]) * inv);
      st[d] = mean[d];
      st[D + d] = v;
      r[d] = R(1 / Math.sqrt(R(v + e)));
    }
    for (let n = 0, p = 0; n < N; n++) {
      for (let d = 0; d < D; d++, p++) {
        let v = R(R(x[p] - mean[d]) * r[d]);
        if (w) v = R(v * w[d]);
        if (b) v = R(v + b[d]);
        y[p] = v;
      }
    }
  };
}

/** Backward loops (float64 inside; `R` rounds rsqrt(var + eps) as the forward does). */
function makeBackward(R: Round): BackwardFn {
  return function backward(x, g, st, N, D, w, eps, dx, dwb) {
    const e = R(eps);
    const r = new Float64Array(D);
    for (let d = 0; d < D; d++) r[d] = R(1 / Math.sqrt(R(st[D + d] + e)));
    const sg = new Float64Array(D),
      sgx = new Float64Array(D);
    for (let n = 0, p = 0; n < N; n++) {
      for (let d = 0; d < D; d++, p++) {
        const gv = g[p];
        sg[d] += gv;
        sgx[d] += gv * ((x[p] - st[d]) * r[d]);
      }
    }
    // mean(ĝ) and mean(ĝ·x̂) per channel, ĝ = g·w
    const m1 = new Float64Array(D),
      m2 = new Float64Array(D);
    for (let d = 0; d < D; d++) {
      const wd = w ? w[d] : 1;
      m1[d] = (sg[d] * wd) / N;
      m2[d] = (sgx[d] * wd) / N;
      dwb[d] = sgx[d];
      dwb[D + d] = sg[d];
    }
    for (let n = 0, p = 0; n < N; n++) {
      for (let d = 0; d < D; d++, p++) {
        const xh = (x[p] - st[d]) * r[d];
        dx[p] = r[d] * (g[p] * (w ? w[d] : 1) - m1[d] - xh * m2[d]);
      }
    }
  };
}

const identity: Round = (v) => v;
const compiled = new Map<string, { forward: ForwardFn; backward: BackwardFn }>();

function loopsFor(dtype: 'f32' | 'f64'): { forward: ForwardFn; backward: BackwardFn } {
  let c = compiled.get(dtype);
  if (!c) {
    const R = dtype === 'f32' ? Math.fround : identity;
    c = {
      forward: (new Function(`"use strict"; return ${makeForward.toString()};`)() as typeof makeForward)(R),
      backward: (new Function(`"use strict"; return ${makeBackward.toString()};`)() as typeof makeBackward)(R),
    };
    compiled.set(dtype, c);
  }
  return c;
}

/** CPU `batchNorm`. */
export function batchNormCpu(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number): [Tensor, Tensor] {
  checkBatchNorm(x, weight, bias);
  const dt = x.dtype as 'f32' | 'f64';
  const [N, D] = x.shape;
  const y = allocateOut(dt, N * D, false) as FloatStorage,
    st = allocateOut(dt, 2 * D, false) as FloatStorage;
  const w = weight ? (dense(weight) as FloatStorage) : null,
    b = bias ? (dense(bias) as FloatStorage) : null;
  loopsFor(dt).forward(dense(x) as FloatStorage, N, D, w, b, eps, y, st);
  return [fromStorage(y, [N, D]), fromStorage(st, [2, D])];
}

/** CPU `batchNormGrad`. */
export function batchNormGradCpu(x: Tensor, g: Tensor, stats: Tensor, weight: Tensor | null, eps: number): [Tensor, Tensor] {
  checkBatchNormGrad(x, g, stats, weight);
  const dt = x.dtype as 'f32' | 'f64';
  const [N, D] = x.shape;
  const dx = allocateOut(dt, N * D, false) as FloatStorage,
    dwb = allocateOut(dt, 2 * D, false) as FloatStorage;
  const w = weight ? (dense(weight) as FloatStorage) : null;
  loopsFor(dt).backward(dense(x) as FloatStorage, dense(g) as FloatStorage, dense(stats) as FloatStorage, N, D, w, eps, dx, dwb);
  return [fromStorage(dx, [N, D]), fromStorage(dwb, [2, D])];
}
