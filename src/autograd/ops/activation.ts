/** Differentiable activations: sigmoid, tanh, silu, relu, relu2, gelu (erf and tanh), laplace, softmax. */
import { scalar } from '../../tensor/create.js';
import { ShapeError, TensorError } from '../../tensor/errors.js';
import * as K from '../../tensor/kernels.js';
import { normAxis } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import * as V from '../../tensor/view.js';
import { record } from '../engine.js';
import { add, mul } from './arith.js';

const c = (v: number, t: Tensor): Tensor => scalar(v, t.dtype);

/** σ(x) = 1/(1+e^(−x)). */
export function sigmoid(x: Tensor): Tensor {
  const out = K.unary(x, 'sigmoid');
  return record(out, 'sigmoid', [x], (g) => [K.binary(g, K.binary(out, K.binary(c(1, x), out, 'sub'), 'mul'), 'mul')]);
}

/** tanh(x). */
export function tanh(x: Tensor): Tensor {
  const out = K.unary(x, 'tanh');
  return record(out, 'tanh', [x], (g) => [K.binary(g, K.binary(c(1, x), K.unary(out, 'square'), 'sub'), 'mul')]);
}

/** erf(x) (gradient 2/√π·e^(−x²)). */
export function erf(x: Tensor): Tensor {
  return record(K.unary(x, 'erf'), 'erf', [x], (g) => [
    K.binary(g, K.binary(K.unary(K.unary(K.unary(x, 'square'), 'neg'), 'exp'), c(2 / Math.sqrt(Math.PI), x), 'mul'), 'mul'),
  ]);
}

/** silu(x) = x·σ(x); backward: the fused kernel siluGrad = g ⊙ σ(x)·(1 + x·(1 − σ(x))). */
export function silu(x: Tensor): Tensor {
  return record(K.unary(x, 'silu'), 'silu', [x], (g) => [K.siluGrad(x, g)]);
}

/** max(0, x). */
export function relu(x: Tensor): Tensor {
  return record(K.unary(x, 'relu'), 'relu', [x], (g) => [K.binary(g, K.unary(x, 'step'), 'mul')]);
}

/** relu(x)² (Mega's element attention). */
export function relu2(x: Tensor): Tensor {
  const r = K.unary(x, 'relu');
  return record(K.unary(r, 'square'), 'relu2', [x], (g) => [K.binary(g, K.binary(r, c(2, x), 'mul'), 'mul')]);
}

/** Exact GELU 0.5·x·(1 + erf(x/√2)). */
export function gelu(x: Tensor): Tensor {
  return record(K.unary(x, 'gelu'), 'gelu', [x], (g) => [K.binary(g, K.unary(x, 'geluGrad'), 'mul')]);
}

/** Tanh-approximated GELU (fairseq's `gelu_accurate`), composed from ops. */
export function geluTanh(x: Tensor): Tensor {
  const inner = mul(add(x, mul(mul(mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
  return mul(mul(x, 0.5), add(tanh(inner), 1));
}

/** Mega's laplace attention function 0.5·(1 + erf((x − μ)/(σ·√2))), μ = 0.707107, σ = 0.282095 (one fused pass each way). */
export function laplace(x: Tensor, mu = 0.707107, sigma = 0.282095): Tensor {
  const den = sigma * Math.SQRT2;
  return record(K.laplace(x, mu, den), 'laplace', [x], (g) => [K.laplaceGrad(x, g, mu, den)]);
}

/** Moves `axis` last, applies `fn`, moves it back. */
function alongLast(x: Tensor, axis: number, fn: (t: Tensor) => Tensor): Tensor {
  const a = normAxis(axis, x.ndim, 'softmax');
  if (a === x.ndim - 1) return fn(x);
  return V.transpose(fn(V.transpose(x, a, x.ndim - 1)), a, x.ndim - 1);
}

/** Softmax along `axis` (max-shifted). */
export function softmax(x: Tensor, axis = -1): Tensor {
  if (x.ndim === 0) throw new ShapeError('softmax: needs at least one dimension');
  const out = alongLast(x, axis, (t) => K.softmax(t, false));
  const a = normAxis(axis, x.ndim, 'softmax');
  // backward: the fused kernel softmaxGrad = out ⊙ (g − Σ out·g) along the axis
  return record(out, 'softmax', [x], (g) => [alongLast(out, a, (y) => K.softmaxGrad(y, a === x.ndim - 1 ? g : V.transpose(g, a, x.ndim - 1), false))]);
}

/** Log-softmax along `axis`. */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  if (x.ndim === 0) throw new ShapeError('logSoftmax: needs at least one dimension');
  const out = alongLast(x, axis, (t) => K.softmax(t, true));
  const a = normAxis(axis, x.ndim, 'logSoftmax');
  // backward: the fused kernel softmaxGrad(log) = g − e^out · Σ g along the axis
  return record(out, 'logSoftmax', [x], (g) => [alongLast(out, a, (y) => K.softmaxGrad(y, a === x.ndim - 1 ? g : V.transpose(g, a, x.ndim - 1), true))]);
}

/** fairseq activation by name: silu, relu, gelu, gelu_accurate/gelu_fast, tanh, linear. */
export function activation(name: string): (x: Tensor) => Tensor {
  switch (name) {
    case 'silu':
    case 'swish':
      return silu;
    case 'relu':
      return relu;
    case 'gelu':
      return gelu;
    case 'gelu_accurate':
    case 'gelu_fast':
      return geluTanh;
    case 'tanh':
      return tanh;
    case 'linear':
      return (x) => x;
    case 'sigmoid':
      return sigmoid;
    default:
      throw new TensorError(`unknown activation '${name}' (expected silu, relu, gelu, gelu_accurate, tanh, linear)`);
  }
}
