/** Differentiable matrix products: matmul (batched, broadcast) and linear. */
import * as K from '../../tensor/kernels.js';
import type { Tensor } from '../../tensor/tensor.js';
import * as V from '../../tensor/view.js';
import { record } from '../engine.js';
import { add, sumTo } from './arith.js';

/** `[..., M, K] · [..., K, N]` with broadcast batch axes. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  const out = K.matmul(a, b);
  return record(out, 'matmul', [a, b], (g) => [
    a.requiresGrad ? sumTo(K.matmul(g, V.transpose(b, -1, -2)), a.shape) : null,
    b.requiresGrad ? sumTo(K.matmul(V.transpose(a, -1, -2), g), b.shape) : null,
  ]);
}

/**
 * PyTorch `Linear`: `x · weightᵀ + bias` on the last axis. x: `[..., in]`, weight `[out, in]`,
 * bias `[out]`.
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  const lead = x.shape.slice(0, -1);
  const x2 = V.reshape(x, [-1, x.shape[x.ndim - 1]]);
  const xr = record(x2, 'reshape', [x], (g) => [V.reshape(g, x.shape)]);
  let y = matmul(
    xr,
    record(V.transpose(weight, 0, 1), 'transpose', [weight], (g) => [V.transpose(g, 0, 1)]),
  );
  if (bias) y = add(y, bias);
  return record(V.reshape(y, [...lead, weight.shape[0]]), 'reshape', [y], (g) => [V.reshape(g, y.shape)]);
}
