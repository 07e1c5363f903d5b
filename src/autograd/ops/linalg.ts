/** Differentiable matrix products: matmul (batched, broadcast) and linear. */
import { scalar } from '../../tensor/create.js';
import * as K from '../../tensor/kernels.js';
import type { Tensor } from '../../tensor/tensor.js';
import * as V from '../../tensor/view.js';
import { record } from '../engine.js';
import { residentDispose } from '../../tensor/backends/cpu/resident.js';
import { sumTo } from './arith.js';

/** `[..., M, K] · [..., K, N]` with broadcast batch axes. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  const out = K.matmul(a, b);
  return record(out, 'matmul', [a, b], (g) => [
    a.requiresGrad ? sumTo(K.matmul(g, V.transpose(b, -1, -2)), a.shape) : null,
    b.requiresGrad ? sumTo(K.matmul(V.transpose(a, -1, -2), g), b.shape) : null,
  ]);
}

/**
 * The scores of square-chunk causal attention, `tril(q · kT)` (`[..., C, Z] · [..., Z, C]`): the
 * entries above the diagonal, which the causal mask then replaces (−∞ added, or a multiplicative
 * 0), are 0 and not computed. The backward takes the output gradient as zero above the diagonal —
 * what that mask makes it (the softmax's gradient there is `p·(…)` with p = 0; a multiplicative
 * mask's is `g·0`) — and skips those terms (kernel `triMatmul`).
 */
export function causalScores(q: Tensor, kT: Tensor): Tensor {
  const out = K.triMatmul(q, kT, 'lower');
  return record(out, 'causalScores', [q, kT], (g) => [
    q.requiresGrad ? sumTo(K.triMatmul(g, V.transpose(kT, -1, -2), 'a-lower'), q.shape) : null,
    kT.requiresGrad ? sumTo(K.triMatmul(V.transpose(q, -1, -2), g, 'b-lower'), kT.shape) : null,
  ]);
}

/**
 * `p · v` for causal attention weights p `[..., C, C]` that are zero above the diagonal (after the
 * causal mask), skipping those terms. The gradient of p is given on and below the diagonal (0
 * above): p's producer (a softmax whose output is 0 there, or a multiplicative 0 mask) passes
 * nothing back from those entries.
 */
export function causalWeighted(p: Tensor, v: Tensor): Tensor {
  const out = K.triMatmul(p, v, 'a-lower');
  return record(out, 'causalWeighted', [p, v], (g) => [
    p.requiresGrad ? sumTo(K.triMatmul(g, V.transpose(v, -1, -2), 'lower'), p.shape) : null,
    v.requiresGrad ? sumTo(K.triMatmul(V.transpose(p, -1, -2), g, 'a-upper'), v.shape) : null,
  ]);
}

/**
 * Softmax attention probabilities `softmax((q · scaling) · kT + bias [+ attnMask])` along the keys,
 * entries where the bool `fill` (broadcast to the scores) is true set to −∞ first (docs/MEGA.md
 * §2). q `[..., Cq, Z]`, kT `[..., Z, Ck]` → `[..., Cq, Ck]`; `causal`: square chunks under a causal
 * `attnMask`, whose products above the diagonal are skipped (as `causalScores`). One tape node over
 * the kernel calls of that composition (mul, product, adds, masked fill, softmax), so the same
 * values and gradients; the scores and their sums were nodes that no backward reads (adds and the
 * fill pass gradients through, the softmax's backward reads its output), and inside a resident
 * scope they now go back to the heap at once — up to three `[..., Cq, Ck]` blocks per layer.
 */
export function softmaxAttention(q: Tensor, kT: Tensor, scaling: number, bias: Tensor, causal: boolean, attnMask: Tensor | null, fill: Tensor | null): Tensor {
  const sc = scalar(scaling, q.dtype);
  const qs = K.binary(q, sc, 'mul');
  let x = causal ? K.triMatmul(qs, kT, 'lower') : K.matmul(qs, kT);
  const then = (y: Tensor) => {
    residentDispose(x);
    x = y;
  };
  then(K.binary(x, bias, 'add'));
  if (attnMask) then(K.binary(x, attnMask, 'add'));
  if (fill) then(K.where(fill, scalar(-Infinity, x.dtype), x));
  const scores = x;
  const p = K.softmax(scores, false);
  residentDispose(scores);
  const inputs = attnMask ? [q, kT, bias, attnMask] : [q, kT, bias];
  return record(p, 'softmaxAttention', inputs, (g) => {
    let ds = K.softmaxGrad(p, g, false);
    if (fill) ds = K.where(fill, scalar(0, g.dtype), ds);
    const k = V.transpose(kT, -1, -2),
      qsT = V.transpose(qs, -1, -2);
    const grads = [
      q.requiresGrad ? sumTo(K.binary(sumTo(causal ? K.triMatmul(ds, k, 'a-lower') : K.matmul(ds, k), qs.shape), sc, 'mul'), q.shape) : null,
      kT.requiresGrad ? sumTo(causal ? K.triMatmul(qsT, ds, 'b-lower') : K.matmul(qsT, ds), kT.shape) : null,
      bias.requiresGrad ? sumTo(ds, bias.shape) : null,
    ];
    if (attnMask) grads.push(attnMask.requiresGrad ? sumTo(ds, attnMask.shape) : null);
    return grads;
  });
}

/**
 * PyTorch `Linear`: `x · weightᵀ + bias` on the last axis. x: `[..., in]`, weight `[out, in]`,
 * bias `[out]`. One tape node; its values and gradients are those of the composition (reshape,
 * matmul, add). The bias is added by the `matmulBias` kernel as the product is stored: no
 * `[tokens, out]` product of its own (as a node of the composition it stayed until the backward
 * reached it, a sixth of an LM step's peak) and no second pass over it.
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  const x2 = V.reshape(x, [-1, x.shape[x.ndim - 1]]); // [T, in]
  const wT = V.transpose(weight, 0, 1);
  const y = bias ? K.matmulBias(x2, wT, bias) : K.matmul(x2, wT); // [T, out]
  const out = V.reshape(y, [...x.shape.slice(0, -1), weight.shape[0]]);
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return record(out, 'linear', inputs, (g) => {
    const g2 = V.reshape(g, y.shape); // [T, out]
    const grads = [
      x.requiresGrad ? V.reshape(K.matmul(g2, weight), x.shape) : null,
      // gᵀ·x: [out, in] as the weight is laid out (its transpose (xᵀ·g)ᵀ would be a strided view
      // that the engine copies); each element is the same sum over tokens in the same order
      weight.requiresGrad ? K.matmul(V.transpose(g2, 0, 1), x2) : null,
    ];
    if (bias) grads.push(bias.requiresGrad ? sumTo(g2, bias.shape) : null);
    return grads;
  });
}
