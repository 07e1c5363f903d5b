/**
 * The generic fused kernels (registered under the pseudo-backend `*`): what a backend without its
 * own fused kernels runs. Each is the composition of primitive kernels the fused kernel replaces,
 * called through the registry, so on any backend they run that backend's primitives (on a device
 * backend: on the device) instead of host code.
 */
import { ANY_BACKEND, registerKernel, type AdamHyper } from '../backend.js';
import { arange, scalar } from '../create.js';
import * as K from '../kernels.js';
import { ShapeError } from '../errors.js';
import { Tensor } from '../tensor.js';
import { checkBatchNorm, checkBatchNormGrad, checkCoefQ, checkEmaGrad, checkSoftmaxGrad } from './checks.js';

/** `t` with a size-1 axis appended (a view). */
function unsqueezeLast(t: Tensor): Tensor {
  return new Tensor(t.data, [...t.shape, 1], [...t.strides, 1], t.offset);
}

/** `q^l` for l < L: `[D, N, L]`, as exp(l · ln q). */
function powers(q: Tensor, L: number): Tensor {
  const l = K.cast(arange(0, L, 1, 'i32'), q.dtype); // L
  return K.unary(K.binary(unsqueezeLast(K.unary(q, 'log')), l, 'mul'), 'exp');
}

/** Generic `emaKernel`: `Σ_n coef[d, n] · q[d, n]^l` → `[D, length]`. */
export function emaKernelGeneric(coef: Tensor, q: Tensor, length: number): Tensor {
  checkCoefQ(coef, q, 'emaKernel');
  return K.reduce(K.binary(unsqueezeLast(coef), powers(q, length), 'mul'), 'sum', [1], false);
}

/** Generic `emaKernelGrad`: `[2, D, N]` = (`Σ_l g·q^l`, `coef · Σ_l g · l · q^(l−1)`). */
export function emaKernelGradGeneric(coef: Tensor, q: Tensor, g: Tensor): Tensor {
  checkCoefQ(coef, q, 'emaKernelGrad');
  checkEmaGrad(coef, g);
  const [D, N] = coef.shape,
    L = g.shape[1];
  const gv = new Tensor(g.data, [D, 1, L], [g.strides[0], 0, g.strides[1]], g.offset); // D × 1 × L
  const v = K.binary(gv, powers(q, L), 'mul'); // D × N × L
  const s0 = K.reduce(v, 'sum', [2], false);
  const l = K.cast(arange(0, L, 1, 'i32'), q.dtype);
  const s1 = K.reduce(K.binary(v, l, 'mul'), 'sum', [2], false);
  const d1 = K.binary(K.binary(coef, s1, 'mul'), q, 'div');
  const head = (t: Tensor) => new Tensor(t.data, [1, D, N], [0, ...t.strides], t.offset);
  return K.concat([head(s0), head(d1)], 0);
}

/** Generic `softmaxGrad`: `y ⊙ (g − Σ y·g)`, or `g − e^y · Σ g` for log-softmax (last axis). */
export function softmaxGradGeneric(y: Tensor, g: Tensor, log: boolean): Tensor {
  checkSoftmaxGrad(y, g);
  const last = y.ndim - 1;
  if (log) return K.binary(g, K.binary(K.unary(y, 'exp'), K.reduce(g, 'sum', [last], true), 'mul'), 'sub');
  return K.binary(y, K.binary(g, K.reduce(K.binary(y, g, 'mul'), 'sum', [last], true), 'sub'), 'mul');
}

/** Generic `adamUpdate`, from elementwise primitives (scalars as 0-d tensors). */
export function adamUpdateGeneric(p: Tensor, g: Tensor, m: Tensor, v: Tensor, h: AdamHyper): [Tensor, Tensor, Tensor] {
  const c = (x: number) => scalar(x, p.dtype);
  const mul = (a: Tensor, b: Tensor) => K.binary(a, b, 'mul'),
    add = (a: Tensor, b: Tensor) => K.binary(a, b, 'add');
  const m1 = add(mul(c(h.beta1), m), mul(c(1 - h.beta1), g));
  const v1 = add(mul(c(h.beta2), v), mul(mul(c(1 - h.beta2), g), g));
  const denom = add(K.unary(v1, 'sqrt'), c(h.eps));
  const decayed = h.decay !== 0 ? K.binary(p, mul(c(h.decay), p), 'sub') : p;
  return [K.binary(decayed, K.binary(mul(c(h.stepSize), m1), denom, 'div'), 'sub'), m1, v1];
}

/** `z = (x − mu)/den` in x's dtype. */
function laplaceZ(x: Tensor, mu: number, den: number): Tensor {
  return K.binary(K.binary(x, scalar(mu, x.dtype), 'sub'), scalar(den, x.dtype), 'div');
}

/** Generic `laplace`: `0.5·(1 + erf((x − mu)/den))` from primitives. */
export function laplaceGeneric(x: Tensor, mu: number, den: number): Tensor {
  const c = (v: number) => scalar(v, x.dtype);
  return K.binary(c(0.5), K.binary(c(1), K.unary(laplaceZ(x, mu, den), 'erf'), 'add'), 'mul');
}

/** Generic `laplaceGrad`: `g · exp(−z²)/(√π·den)` from primitives. */
export function laplaceGradGeneric(x: Tensor, g: Tensor, mu: number, den: number): Tensor {
  if (g.dtype !== x.dtype || g.ndim !== x.ndim || g.shape.some((d, i) => d !== x.shape[i])) {
    throw new ShapeError(`laplaceGrad: gradient [${g.shape}] ${g.dtype} does not match input [${x.shape}] ${x.dtype}`);
  }
  const z = laplaceZ(x, mu, den);
  const d = K.binary(K.unary(K.unary(K.unary(z, 'square'), 'neg'), 'exp'), scalar(Math.sqrt(Math.PI) * den, x.dtype), 'div');
  return K.binary(g, d, 'mul');
}

/** `[1, D]` view of a `[D]` tensor. */
function row(t: Tensor): Tensor {
  return new Tensor(t.data, [1, ...t.shape], [0, ...t.strides], t.offset);
}

/** Generic `batchNorm` from primitives (the composition of nn/norm.ts). */
export function batchNormGeneric(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number): [Tensor, Tensor] {
  checkBatchNorm(x, weight, bias);
  const c = (v: number) => scalar(v, x.dtype);
  const n = x.shape[0];
  const mean = K.binary(K.reduce(x, 'sum', [0], false), c(1 / n), 'mul');
  const xc = K.binary(x, mean, 'sub');
  const varB = K.binary(K.reduce(K.unary(xc, 'square'), 'sum', [0], false), c(1 / n), 'mul');
  let y = K.binary(xc, K.unary(K.binary(varB, c(eps), 'add'), 'rsqrt'), 'mul');
  if (weight) y = K.binary(y, weight, 'mul');
  if (bias) y = K.binary(y, bias, 'add');
  return [y, K.concat([row(mean), row(varB)], 0)];
}

/** Generic `batchNormGrad` from primitives. */
export function batchNormGradGeneric(x: Tensor, g: Tensor, stats: Tensor, weight: Tensor | null, eps: number): [Tensor, Tensor] {
  checkBatchNormGrad(x, g, stats, weight);
  const c = (v: number) => scalar(v, x.dtype);
  const n = x.shape[0];
  const sum0 = (t: Tensor) => K.reduce(t, 'sum', [0], true);
  const [mean, varB] = [0, 1].map((i) => K.copy(new Tensor(stats.data, [1, stats.shape[1]], [0, stats.strides[1]], stats.offset + i * stats.strides[0])));
  const r = K.unary(K.binary(varB, c(eps), 'add'), 'rsqrt');
  const xh = K.binary(K.binary(x, mean, 'sub'), r, 'mul');
  const gh = weight ? K.binary(g, weight, 'mul') : g;
  const m1 = K.binary(sum0(gh), c(1 / n), 'mul');
  const m2 = K.binary(sum0(K.binary(gh, xh, 'mul')), c(1 / n), 'mul');
  const dx = K.binary(r, K.binary(K.binary(gh, m1, 'sub'), K.binary(xh, m2, 'mul'), 'sub'), 'mul');
  return [dx, K.concat([sum0(K.binary(g, xh, 'mul')), sum0(g)], 0)];
}

registerKernel('adamUpdate', ANY_BACKEND, adamUpdateGeneric);
registerKernel('batchNorm', ANY_BACKEND, batchNormGeneric);
registerKernel('batchNormGrad', ANY_BACKEND, batchNormGradGeneric);
registerKernel('laplace', ANY_BACKEND, laplaceGeneric);
registerKernel('laplaceGrad', ANY_BACKEND, laplaceGradGeneric);
registerKernel('emaKernel', ANY_BACKEND, emaKernelGeneric);
registerKernel('emaKernelGrad', ANY_BACKEND, emaKernelGradGeneric);
registerKernel('softmaxGrad', ANY_BACKEND, softmaxGradGeneric);
