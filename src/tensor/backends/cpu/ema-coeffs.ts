/**
 * CPU `emaCoeffs` / `emaCoeffsGrad` (see `FusedKernels`): MultiHeadEMA's kernel coefficients from
 * its parameters in one loop each way over the `D × N` entries, instead of ~8 forward and ~14
 * backward kernel calls on tensors of a few hundred elements (each a few microseconds of dispatch
 * and autograd bookkeeping). The forward rounds every step to the element type as the composition
 * of primitive CPU kernels does (sigmoid as `1 / (1 + exp(−x))`, then mul, sub, mul, mul):
 * bitwise its results. The backward is the closed form in float64, rounded once.
 */
import type { FloatStorage } from '../../dtype.js';
import { fromStorage, type Tensor } from '../../tensor.js';
import { checkEmaCoeffs } from '../checks.js';
import { dense } from './elementwise.js';
import { allocateOut } from './resident.js';

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** `[2, D, N]` = (coef, q): `p = σ(δ)`, `q = 1 − p·σ(α)`, `coef = ((p·β)·γ)·scale`. */
export function emaCoeffsCpu(delta: Tensor, alpha: Tensor, beta: Tensor, gamma: Tensor, scale: number): Tensor {
  const [D, N] = checkEmaCoeffs('emaCoeffs', delta, alpha, beta, gamma);
  const [d, a, b, g] = [delta, alpha, beta, gamma].map(dense) as FloatStorage[];
  const n = D * N;
  const out = allocateOut(delta.dtype, 2 * n, false) as FloatStorage; // [coef | q]
  if (delta.dtype === 'f32') {
    // Math.fround written out at each step (through a variable it is a call per use, ~10× slower)
    const s = Math.fround(scale);
    for (let i = 0; i < n; i++) {
      const p = Math.fround(sigmoid(d[i]));
      out[n + i] = 1 - Math.fround(p * Math.fround(sigmoid(a[i])));
      out[i] = Math.fround(Math.fround(p * b[i]) * g[i]) * s;
    }
  } else {
    for (let i = 0; i < n; i++) {
      const p = sigmoid(d[i]);
      out[n + i] = 1 - p * sigmoid(a[i]);
      out[i] = p * b[i] * g[i] * scale;
    }
  }
  return fromStorage(out, [2, D, N]);
}

/** `[dδ, dα, dβ, dγ]` for the gradients `gcoef`, `gq` `[D, N]` (closed form, float64). */
export function emaCoeffsGradCpu(
  delta: Tensor,
  alpha: Tensor,
  beta: Tensor,
  gamma: Tensor,
  scale: number,
  gcoef: Tensor,
  gq: Tensor,
): [Tensor, Tensor, Tensor, Tensor] {
  const [D, N] = checkEmaCoeffs('emaCoeffsGrad', delta, alpha, beta, gamma, [gcoef, gq]);
  const dt = delta.dtype;
  const [d, a, b, g, gc, gqq] = [delta, alpha, beta, gamma, gcoef, gq].map(dense) as FloatStorage[];
  const n = D * N;
  const [dd, da, db, dg] = [0, 1, 2, 3].map(() => allocateOut(dt, n, false) as FloatStorage);
  // σ rounded to the dtype as the forward stored it (a typed array of the dtype rounds on store)
  const sig = dt === 'f32' ? new Float32Array(2) : new Float64Array(2);
  sig[0] = scale;
  const s = sig[0];
  for (let i = 0; i < n; i++) {
    sig[0] = sigmoid(d[i]);
    sig[1] = sigmoid(a[i]);
    const p = sig[0],
      sa = sig[1];
    const gcs = gc[i] * s;
    db[i] = gcs * p * g[i];
    dg[i] = gcs * p * b[i];
    dd[i] = (gcs * b[i] * g[i] - gqq[i] * sa) * p * (1 - p);
    da[i] = -gqq[i] * p * sa * (1 - sa);
  }
  const col = [D, N, 1];
  return [fromStorage(dd, col), fromStorage(da, col), fromStorage(db, col), fromStorage(dg, [D, N])];
}
