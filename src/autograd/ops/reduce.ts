/** Differentiable reductions: sum, mean, max, var; argmax (not differentiable). */
import * as K from '../../tensor/kernels.js';
import { normAxes, normAxis } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import * as V from '../../tensor/view.js';
import { record } from '../engine.js';
import { mul, square, sub } from './arith.js';

/** The shape `x` would have with the reduced `axes` kept as size 1. */
function keptShape(x: Tensor, axes: number[]): number[] {
  return x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

/** Sum over `axes` (all when omitted). */
export function sum(x: Tensor, axes?: number | number[], keepdims = false): Tensor {
  const ax = normAxes(axes, x.ndim, 'sum');
  const out = K.reduce(x, 'sum', ax, keepdims);
  return record(out, 'sum', [x], (g) => [V.expand(V.reshape(g, keptShape(x, ax)), x.shape)]);
}

/** Mean over `axes` (all when omitted). */
export function mean(x: Tensor, axes?: number | number[], keepdims = false): Tensor {
  const ax = normAxes(axes, x.ndim, 'mean');
  const n = ax.reduce((p, a) => p * x.shape[a], 1);
  return mul(sum(x, ax, keepdims), 1 / n);
}

/** Maximum over `axes`; the gradient is shared equally among tied maxima. */
export function max(x: Tensor, axes?: number | number[], keepdims = false): Tensor {
  const ax = normAxes(axes, x.ndim, 'max');
  const out = K.reduce(x, 'max', ax, keepdims);
  return record(out, 'max', [x], (g) => {
    const m = V.reshape(out, keptShape(x, ax));
    const hit = K.cast(K.binary(x, m, 'eq'), x.dtype);
    const cnt = K.reduce(hit, 'sum', ax, true);
    return [K.binary(K.binary(hit, V.reshape(g, keptShape(x, ax)), 'mul'), cnt, 'div')];
  });
}

/** Variance over `axes` (biased by default, `unbiased` divides by n−1). */
export function variance(x: Tensor, axes?: number | number[], keepdims = false, unbiased = false): Tensor {
  const ax = normAxes(axes, x.ndim, 'var');
  const n = ax.reduce((p, a) => p * x.shape[a], 1);
  const mu = mean(x, ax, true);
  const s = sum(square(sub(x, mu)), ax, keepdims);
  return mul(s, 1 / (unbiased ? n - 1 : n));
}

/** Index of the maximum along `axis` (i32; not differentiable). */
export function argmax(x: Tensor, axis = -1): Tensor {
  return K.argmax(x, normAxis(axis, x.ndim, 'argmax'));
}
