/**
 * Differentiable fused ops: each is one kernel call forward and one backward (see
 * `FusedKernels` in tensor/backend.ts), replacing a composition of many elementwise passes.
 */
import * as K from '../../tensor/kernels.js';
import type { Tensor } from '../../tensor/tensor.js';
import * as V from '../../tensor/view.js';
import { record } from '../engine.js';

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
