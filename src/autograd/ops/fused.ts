/**
 * Differentiable fused ops: each is one kernel call forward and one backward (see
 * `FusedKernels` in tensor/backend.ts), replacing a composition of many elementwise passes.
 */
import type { GateActivation } from '../../tensor/backend.js';
import { scalar } from '../../tensor/create.js';
import * as K from '../../tensor/kernels.js';
import type { Tensor } from '../../tensor/tensor.js';
import * as V from '../../tensor/view.js';
import { record } from '../engine.js';
import { recordPieces } from './shape.js';

/**
 * The EMA kernel build (docs/MEGA.md §5.3) as one op: `k[d, l] = Σ_n coef[d, n] · exp(l · ln q[d, n])`
 * for `l < length`; coef, q `[D, N]` → `[D, length]`. Equals
 * `sum(coef[..., None] * exp(arange(length) * log(q)[..., None]), 1)` without the `[D, N, length]`
 * intermediates.
 */
export function emaKernel(coef: Tensor, q: Tensor, length: number): Tensor {
  const out = K.emaKernel(coef, q, length);
  return record(out, 'emaKernel', [coef, q], (g) => {
    const both = K.emaKernelGrad(coef, q, g); // [2, D, N]
    return [V.reshape(V.narrow(both, 0, 0, 1), coef.shape), V.reshape(V.narrow(both, 0, 1, 1), q.shape)];
  });
}

/**
 * The Toeplitz matrix of the simple relative-position bias as one op: `w` `[2M − 1]` → `[n, n]`,
 * `out[i, j] = w[M − 1 + j − i]` (= `indexSelect` of that index; the gradient is its
 * `indexAdd`, as diagonal sums).
 */
export function toeplitz(w: Tensor, n: number): Tensor {
  return record(K.toeplitz(w, n), 'toeplitz', [w], (g) => [K.toeplitzGrad(g, w.shape[0])]);
}

/**
 * MultiHeadEMA's kernel coefficients (docs/MEGA.md §5.2–5.3) as one op: from delta, alpha, beta
 * `[D, N, 1]` and gamma `[D, N]`, `coef = ((σ(delta)·beta)·gamma)·scale` and
 * `q = 1 − σ(delta)·σ(alpha)`, each `[D, N]` (kernels `emaCoeffs`, `emaCoeffsGrad`). Equals the
 * composition of sigmoid, mul, sub and squeeze it replaces.
 */
export function emaCoeffs(delta: Tensor, alpha: Tensor, beta: Tensor, gamma: Tensor, scale: number): { coef: Tensor; q: Tensor } {
  const [D, N] = gamma.shape;
  const both = K.emaCoeffs(delta, alpha, beta, gamma, scale); // 2 × D × N
  const halves = [V.reshape(V.narrow(both, 0, 0, 1), [D, N]), V.reshape(V.narrow(both, 0, 1, 1), [D, N])];
  const [coef, q] = recordPieces(halves, 'emaCoeffs', [delta, alpha, beta, gamma], ([gc, gq]) => {
    const zero = V.expand(scalar(0, delta.dtype), [D, N]);
    return K.emaCoeffsGrad(delta, alpha, beta, gamma, scale, gc ?? zero, gq ?? zero);
  });
  return { coef, q };
}

/**
 * Training-mode batch normalisation of the rows of `x` `[N, D]` as one op (nn/norm.ts
 * `BatchNorm`): `y = (x − mean) · rsqrt(var + eps) · weight + bias` with per-channel statistics
 * over N. Also returns those statistics, `[2, D]` = (mean, biased variance), which are not
 * differentiated (they feed the running averages).
 */
export function batchNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number): { y: Tensor; stats: Tensor } {
  const [y, stats] = K.batchNorm(x, weight, bias, eps);
  const D = x.shape[1];
  const inputs = [x, weight, bias].filter((t): t is Tensor => t !== null);
  const out = record(y, 'batchNorm', inputs, (g) => {
    const [dx, dwb] = K.batchNormGrad(x, g, stats, weight, eps);
    const grads = [dx];
    if (weight) grads.push(V.reshape(V.narrow(dwb, 0, 0, 1), [D]));
    if (bias) grads.push(V.reshape(V.narrow(dwb, 0, 1, 1), [D]));
    return grads;
  });
  return { y: out, stats };
}

/**
 * Layer normalisation of the rows of `x` `[R, D]` as one op (nn/norm.ts `LayerNorm`; `RMSNorm`
 * and `ScaleNorm` with `center` false): `y = (x − mean) · rsqrt(var + eps)`, `· weight`,
 * `+ bias` when given, statistics over D (mean 0 without centering). One kernel each way
 * (`layerNorm`, `layerNormGrad`) instead of ~9 forward and ~20 backward passes of the composition.
 */
export function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number, center = true): Tensor {
  const [y, stats] = K.layerNorm(x, weight, bias, eps, center);
  const inputs = [x, weight, bias].filter((t): t is Tensor => t !== null);
  return record(y, 'layerNorm', inputs, (g) => {
    const [dx, dw, db] = K.layerNormGrad(x, g, stats, weight, bias !== null, center);
    return [dx, dw, db].filter((t): t is Tensor => t !== null);
  });
}

/**
 * Mega's query and key (docs/MEGA.md §6.2 steps 7–8) from the pre-activation `z` `[..., Z]`:
 * `[silu(z) ⊙ gamma[0] + beta[0], silu(z) ⊙ gamma[1] + beta[1]]` — one pass each way (kernels
 * `gateQK`, `gateQKGrad`), views into one `[..., 2Z]` result. Equals the composition
 * `s = silu(z); [add(mul(s, gamma[0]), beta[0]), add(mul(s, gamma[1]), beta[1])]`.
 */
export function gateQK(z: Tensor, gamma: Tensor, beta: Tensor): [Tensor, Tensor] {
  const Z = z.shape[z.ndim - 1];
  const qk = K.gateQK(z, gamma, beta);
  const halves = [V.narrow(qk, z.ndim - 1, 0, Z), V.narrow(qk, z.ndim - 1, Z, Z)];
  const [q, k] = recordPieces(halves, 'gateQK', [z, gamma, beta], ([gq, gk]) => {
    const zero = V.expand(scalar(0, z.dtype), z.shape);
    return K.gateQKGrad(z, gamma, gq ?? zero, gk ?? zero);
  });
  return [q, k];
}

/** `h ⊙ silu(r)` in one pass each way (kernels `siluMul`, `siluMulGrad`); equals `mul(h, silu(r))`. */
export function siluMul(h: Tensor, r: Tensor): Tensor {
  return record(K.siluMul(h, r), 'siluMul', [h, r], (g) => K.siluMulGrad(h, r, g));
}

/**
 * Mega's gated output (docs/MEGA.md §6.2 steps 6, 15–17) in one pass each way (kernels `gateOut`,
 * `gateOutGrad`): `x + σ(u) ⊙ (act(hx + y) ⊙ mask − x)`, `mask` the scaled dropout mask of the
 * layer output or null. Equals `gatedResidual(x, sigmoid(u), mul(act(add(hx, y)), mask))`.
 */
export function gateOut(x: Tensor, u: Tensor, hx: Tensor, y: Tensor, mask: Tensor | null, act: GateActivation): Tensor {
  return record(K.gateOut(x, u, hx, y, mask, act), 'gateOut', [x, u, hx, y], (g) => {
    const [dx, du, da] = K.gateOutGrad(x, u, hx, y, mask, act, g);
    return [dx, du, da, da];
  });
}
