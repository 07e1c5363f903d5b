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
