/** Differentiable arithmetic: + − × ÷, powers, exp/log, comparisons, where / maskedFill, casts. */
import type { BinaryOp } from '../../tensor/backend.js';
import { scalar } from '../../tensor/create.js';
import { isFloat, type DType } from '../../tensor/dtype.js';
import { DTypeError } from '../../tensor/errors.js';
import * as K from '../../tensor/kernels.js';
import { sameShape } from '../../tensor/shape.js';
import * as V from '../../tensor/view.js';
import type { Tensor } from '../../tensor/tensor.js';
import { record } from '../engine.js';

/** A tensor or a plain number (promoted to a 0-d tensor of the other operand's dtype). */
export type TensorLike = Tensor | number;

/** `x` as a tensor of dtype `like`. */
export function lift(x: TensorLike, like: DType): Tensor {
  return typeof x === 'number' ? scalar(x, like) : x;
}

function pair(a: TensorLike, b: TensorLike, op: string): [Tensor, Tensor] {
  if (typeof a === 'number' && typeof b === 'number') throw new DTypeError(`${op}: at least one operand must be a tensor`);
  const dt = typeof a === 'number' ? (b as Tensor).dtype : a.dtype;
  return [lift(a, dt), lift(b, dt)];
}

/** Sums `g` over broadcast axes so that it has `shape` (the reverse of broadcasting). */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.ndim - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.ndim; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  return V.reshape(K.reduce(g, 'sum', axes, true), shape);
}

/** a + b. */
export function add(a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = pair(a, b, 'add');
  return record(K.binary(x, y, 'add'), 'add', [x, y], (g) => [sumTo(g, x.shape), sumTo(g, y.shape)]);
}

/** a − b. */
export function sub(a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = pair(a, b, 'sub');
  return record(K.binary(x, y, 'sub'), 'sub', [x, y], (g) => [sumTo(g, x.shape), sumTo(K.unary(g, 'neg'), y.shape)]);
}

/** a ⊙ b. */
export function mul(a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = pair(a, b, 'mul');
  return record(K.binary(x, y, 'mul'), 'mul', [x, y], (g) => [
    x.requiresGrad ? sumTo(K.binary(g, y, 'mul'), x.shape) : null,
    y.requiresGrad ? sumTo(K.binary(g, x, 'mul'), y.shape) : null,
  ]);
}

/** a ÷ b. */
export function div(a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = pair(a, b, 'div');
  const out = K.binary(x, y, 'div');
  return record(out, 'div', [x, y], (g) => [
    x.requiresGrad ? sumTo(K.binary(g, y, 'div'), x.shape) : null,
    y.requiresGrad ? sumTo(K.unary(K.binary(K.binary(g, out, 'mul'), y, 'div'), 'neg'), y.shape) : null,
  ]);
}

/** −x. */
export function neg(x: Tensor): Tensor {
  return record(K.unary(x, 'neg'), 'neg', [x], (g) => [K.unary(g, 'neg')]);
}

/** x^p (p a number or a tensor). */
export function pow(x: Tensor, p: TensorLike): Tensor {
  const e = lift(p, x.dtype);
  const out = K.binary(x, e, 'pow');
  return record(out, 'pow', [x, e], (g) => [
    x.requiresGrad ? sumTo(K.binary(g, K.binary(e, K.binary(x, K.binary(e, scalar(1, x.dtype), 'sub'), 'pow'), 'mul'), 'mul'), x.shape) : null,
    e.requiresGrad ? sumTo(K.binary(g, K.binary(out, K.unary(x, 'log'), 'mul'), 'mul'), e.shape) : null,
  ]);
}

/** x². */
export function square(x: Tensor): Tensor {
  return record(K.unary(x, 'square'), 'square', [x], (g) => [K.binary(g, K.binary(x, scalar(2, x.dtype), 'mul'), 'mul')]);
}

/** √x. */
export function sqrt(x: Tensor): Tensor {
  const out = K.unary(x, 'sqrt');
  return record(out, 'sqrt', [x], (g) => [K.binary(g, K.binary(out, scalar(2, x.dtype), 'mul'), 'div')]);
}

/** 1/√x. */
export function rsqrt(x: Tensor): Tensor {
  const out = K.unary(x, 'rsqrt');
  // d/dx x^(-1/2) = -1/2 · out³
  return record(out, 'rsqrt', [x], (g) => [K.binary(g, K.binary(K.binary(out, K.binary(out, out, 'mul'), 'mul'), scalar(-0.5, x.dtype), 'mul'), 'mul')]);
}

/** eˣ. */
export function exp(x: Tensor): Tensor {
  const out = K.unary(x, 'exp');
  return record(out, 'exp', [x], (g) => [K.binary(g, out, 'mul')]);
}

/** ln x. */
export function log(x: Tensor): Tensor {
  return record(K.unary(x, 'log'), 'log', [x], (g) => [K.binary(g, x, 'div')]);
}

/** |x| (gradient sign(x)). */
export function abs(x: Tensor): Tensor {
  return record(K.unary(x, 'abs'), 'abs', [x], (g) => [K.binary(g, K.unary(x, 'sign'), 'mul')]);
}

/** Elementwise comparison or logic (not differentiable; bool result). */
export function compare(a: TensorLike, b: TensorLike, op: Extract<BinaryOp, 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge' | 'and' | 'or'>): Tensor {
  const [x, y] = pair(a, b, op);
  return K.binary(x, y, op);
}

/** Logical not of a bool tensor. */
export function logicalNot(x: Tensor): Tensor {
  return K.unary(x, 'not');
}

/** Elementwise maximum (gradient to the larger operand, to `a` on ties). */
export function maximum(a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = pair(a, b, 'maximum');
  const takeA = K.binary(x, y, 'ge');
  return record(K.binary(x, y, 'max'), 'maximum', [x, y], (g) => {
    const z = scalar(0, g.dtype);
    return [sumTo(K.where(takeA, g, z), x.shape), sumTo(K.where(takeA, z, g), y.shape)];
  });
}

/** `cond ? a : b` with broadcasting. */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = pair(a, b, 'where');
  return record(K.where(cond, x, y), 'where', [x, y], (g) => {
    const z = scalar(0, g.dtype);
    return [x.requiresGrad ? sumTo(K.where(cond, g, z), x.shape) : null, y.requiresGrad ? sumTo(K.where(cond, z, g), y.shape) : null];
  });
}

/** `x` with `value` wherever the (broadcast) bool `mask` is true. */
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  return where(mask, scalar(value, x.dtype), x);
}

/** Dtype conversion; differentiable between float dtypes. */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  const out = K.cast(x, dtype);
  if (!isFloat(dtype) || !isFloat(x.dtype)) return out;
  return record(out, 'cast', [x], (g) => [K.cast(g, x.dtype)]);
}
