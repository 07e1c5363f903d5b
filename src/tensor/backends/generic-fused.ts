/**
 * The generic fused kernels (registered under the pseudo-backend `*`): what a backend without its
 * own fused kernels runs. Each is the composition of primitive kernels the fused kernel replaces,
 * called through the registry, so on any backend they run that backend's primitives (on a device
 * backend: on the device) instead of host code.
 */
import { ANY_BACKEND, registerKernel, type AdamHyper, type GateActivation, type Triangle } from '../backend.js';
import { arange, fromArray, scalar } from '../create.js';
import * as K from '../kernels.js';
import { ShapeError } from '../errors.js';
import { Tensor } from '../tensor.js';
import * as V from '../view.js';
import {
  checkBatchNorm,
  checkBatchNormGrad,
  checkCoefQ,
  checkEmaCoeffs,
  checkEmaGrad,
  checkGateOperands,
  checkGateQK,
  checkLayerNorm,
  checkLayerNormGrad,
  checkSoftmaxGrad,
  checkToeplitz,
  checkToeplitzGrad,
  checkTriMatmul,
} from './checks.js';

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
function asRow(t: Tensor): Tensor {
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
  return [y, K.concat([asRow(mean), asRow(varB)], 0)];
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

/** Generic `layerNorm` from primitives (the composition nn/norm.ts's LayerNorm / RMSNorm ran). */
export function layerNormGeneric(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number, center: boolean): [Tensor, Tensor] {
  checkLayerNorm(x, weight, bias);
  const c = (v: number) => scalar(v, x.dtype);
  const [R, D] = x.shape;
  const mean = center ? K.binary(K.reduce(x, 'sum', [1], true), c(1 / D), 'mul') : K.copy(V.expand(c(0), [R, 1])); // R × 1
  const xc = center ? K.binary(x, mean, 'sub') : x;
  const varB = K.binary(K.reduce(K.unary(xc, 'square'), 'sum', [1], true), c(1 / D), 'mul');
  const r = K.unary(K.binary(varB, c(eps), 'add'), 'rsqrt');
  let y = K.binary(xc, r, 'mul');
  if (weight) y = K.binary(y, weight, 'mul');
  if (bias) y = K.binary(y, bias, 'add');
  return [y, K.concat([mean, r], 1)];
}

/** Generic `layerNormGrad` from primitives (the closed form). */
export function layerNormGradGeneric(
  x: Tensor,
  g: Tensor,
  stats: Tensor,
  weight: Tensor | null,
  bias: boolean,
  center: boolean,
): [Tensor, Tensor | null, Tensor | null] {
  checkLayerNormGrad(x, g, stats, weight);
  const c = (v: number) => scalar(v, x.dtype);
  const D = x.shape[1];
  const sum1 = (t: Tensor) => K.reduce(t, 'sum', [1], true),
    sum0 = (t: Tensor) => K.reduce(t, 'sum', [0], false);
  const mean = V.narrow(stats, 1, 0, 1),
    r = V.narrow(stats, 1, 1, 1); // R × 1
  const xh = K.binary(K.binary(x, mean, 'sub'), r, 'mul');
  const gh = weight ? K.binary(g, weight, 'mul') : g;
  const m2 = K.binary(sum1(K.binary(gh, xh, 'mul')), c(1 / D), 'mul');
  const centered = center ? K.binary(gh, K.binary(sum1(gh), c(1 / D), 'mul'), 'sub') : gh;
  const dx = K.binary(r, K.binary(centered, K.binary(xh, m2, 'mul'), 'sub'), 'mul');
  return [dx, weight ? sum0(K.binary(g, xh, 'mul')) : null, bias ? sum0(g) : null];
}

// ---- the Mega layer's gates (docs/MEGA.md §6.2) -------------------------------------------------

const mul = (a: Tensor, b: Tensor) => K.binary(a, b, 'mul'),
  add = (a: Tensor, b: Tensor) => K.binary(a, b, 'add'),
  sub = (a: Tensor, b: Tensor) => K.binary(a, b, 'sub');

/** Row `i` of a `[2, Z]` parameter as a `[Z]` view. */
function row(p: Tensor, i: number): Tensor {
  return V.reshape(V.narrow(p, 0, i, 1), [p.shape[1]]);
}

/** silu'(x) = σ(x)·(1 + x·(1 − σ(x))). */
function siluDeriv(x: Tensor): Tensor {
  const one = scalar(1, x.dtype);
  const s = K.unary(x, 'sigmoid');
  return mul(s, add(one, mul(x, sub(one, s))));
}

/** Generic `gateQK`: `[silu(z)·γ0 + β0 | silu(z)·γ1 + β1]` along the last axis. */
export function gateQKGeneric(z: Tensor, gamma: Tensor, beta: Tensor): Tensor {
  checkGateQK('gateQK', z, [gamma, beta]);
  const s = K.unary(z, 'silu');
  return K.concat([add(mul(s, row(gamma, 0)), row(beta, 0)), add(mul(s, row(gamma, 1)), row(beta, 1))], z.ndim - 1);
}

/** Generic `gateQKGrad`: `[dz, dgamma, dbeta]`. */
export function gateQKGradGeneric(z: Tensor, gamma: Tensor, gq: Tensor, gk: Tensor): [Tensor, Tensor, Tensor] {
  checkGateQK('gateQKGrad', z, [gamma]);
  checkGateOperands('gateQKGrad', [z, gq, gk]);
  const s = K.unary(z, 'silu');
  const dz = mul(add(mul(gq, row(gamma, 0)), mul(gk, row(gamma, 1))), siluDeriv(z));
  const lead = z.shape.slice(0, -1).map((_, i) => i);
  const Z = z.shape[z.ndim - 1];
  const sum = (t: Tensor) => V.reshape(K.reduce(t, 'sum', lead, false), [1, Z]);
  return [dz, K.concat([sum(mul(gq, s)), sum(mul(gk, s))], 0), K.concat([sum(gq), sum(gk)], 0)];
}

/** Generic `siluGrad`: `g ⊙ silu'(x)`. */
export function siluGradGeneric(x: Tensor, g: Tensor): Tensor {
  checkGateOperands('siluGrad', [x, g]);
  return mul(g, siluDeriv(x));
}

/** Generic `siluMul`: `h ⊙ silu(r)`. */
export function siluMulGeneric(h: Tensor, r: Tensor): Tensor {
  checkGateOperands('siluMul', [h, r]);
  return mul(h, K.unary(r, 'silu'));
}

/** Generic `siluMulGrad`: `[g ⊙ silu(r), g ⊙ h ⊙ silu'(r)]`. */
export function siluMulGradGeneric(h: Tensor, r: Tensor, g: Tensor): [Tensor, Tensor] {
  checkGateOperands('siluMulGrad', [h, r, g]);
  return [mul(g, K.unary(r, 'silu')), mul(mul(g, h), siluDeriv(r))];
}

/** act(a) of gateOut. */
function gateAct(a: Tensor, act: GateActivation): Tensor {
  return act === 'linear' ? a : K.unary(a, act);
}

/** `act(hx + y) ⊙ mask` of gateOut. */
function gatedValue(hx: Tensor, y: Tensor, mask: Tensor | null, act: GateActivation): Tensor {
  const h = gateAct(add(hx, y), act);
  return mask ? mul(h, mask) : h;
}

/** Generic `gateOut`: `x + σ(u) ⊙ (act(hx + y) ⊙ mask − x)`. */
export function gateOutGeneric(x: Tensor, u: Tensor, hx: Tensor, y: Tensor, mask: Tensor | null, act: GateActivation): Tensor {
  checkGateOperands('gateOut', [x, u, hx, y]);
  return add(x, mul(K.unary(u, 'sigmoid'), sub(gatedValue(hx, y, mask, act), x)));
}

/** Generic `gateOutGrad`: `[dx, du, d(hx + y)]`. */
export function gateOutGradGeneric(x: Tensor, u: Tensor, hx: Tensor, y: Tensor, mask: Tensor | null, act: GateActivation, g: Tensor): [Tensor, Tensor, Tensor] {
  checkGateOperands('gateOutGrad', [x, u, hx, y, g]);
  const one = scalar(1, x.dtype);
  const s = K.unary(u, 'sigmoid');
  const a = add(hx, y);
  const dx = mul(g, sub(one, s));
  const du = mul(mul(g, sub(gatedValue(hx, y, mask, act), x)), mul(s, sub(one, s)));
  const dAct = act === 'silu' ? siluDeriv(a) : act === 'relu' ? K.unary(a, 'step') : null;
  let da = mul(g, s);
  if (mask) da = mul(da, mask);
  if (dAct) da = mul(da, dAct);
  return [dx, du, da];
}

/** Generic `emaCoeffs`: the composition MultiHeadEMA ran (`[2, D, N]` = coef, q). */
export function emaCoeffsGeneric(delta: Tensor, alpha: Tensor, beta: Tensor, gamma: Tensor, scale: number): Tensor {
  const [D, N] = checkEmaCoeffs('emaCoeffs', delta, alpha, beta, gamma);
  const dt = delta.dtype;
  const p = K.unary(delta, 'sigmoid'); // D × N × 1
  const q = K.binary(scalar(1, dt), K.binary(p, K.unary(alpha, 'sigmoid'), 'mul'), 'sub');
  const coef = K.binary(K.binary(V.reshape(K.binary(p, beta, 'mul'), [D, N]), gamma, 'mul'), scalar(scale, dt), 'mul');
  return K.concat([V.reshape(coef, [1, D, N]), V.reshape(q, [1, D, N])], 0);
}

/** Generic `emaCoeffsGrad`: the closed form from primitives. */
export function emaCoeffsGradGeneric(
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
  const mat = (t: Tensor) => V.reshape(t.isContiguous() ? t : K.copy(t), [D, N]);
  const col = (t: Tensor) => V.reshape(t, [D, N, 1]);
  const one = scalar(1, dt);
  const p = K.unary(mat(delta), 'sigmoid'),
    a = K.unary(mat(alpha), 'sigmoid'),
    b = mat(beta);
  const gcs = mul(gcoef, scalar(scale, dt));
  const dd = mul(sub(mul(mul(gcs, b), gamma), mul(gq, a)), mul(p, sub(one, p)));
  const da = mul(K.unary(mul(gq, p), 'neg'), mul(a, sub(one, a)));
  return [col(dd), col(da), col(mul(mul(gcs, p), gamma)), mul(mul(gcs, p), b)];
}

/** The host index `M − 1 + j − i` over (i, j) of an `n × n` Toeplitz matrix (the last one is kept: every step asks for the same). */
let toeplitzIndexCache: { n: number; M: number; index: Tensor } | null = null;
function toeplitzIndex(n: number, M: number): Tensor {
  if (toeplitzIndexCache?.n !== n || toeplitzIndexCache.M !== M) {
    const idx = new Int32Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) idx[i * n + j] = M - 1 + j - i;
    toeplitzIndexCache = { n, M, index: fromArray(idx, [n * n]) };
  }
  return toeplitzIndexCache.index;
}

/** Generic `toeplitz`: `indexSelect` of the Toeplitz index, reshaped to `[n, n]`. */
export function toeplitzGeneric(w: Tensor, n: number): Tensor {
  const M = checkToeplitz(w, n);
  return V.reshape(K.indexSelect(w, 0, toeplitzIndex(n, M)), [n, n]);
}

/** Generic `toeplitzGrad`: `indexAdd` of the flattened gradient at the Toeplitz index. */
export function toeplitzGradGeneric(g: Tensor, length: number): Tensor {
  const M = checkToeplitzGrad(g, length);
  const n = g.shape[0];
  return K.indexAdd([length], 0, toeplitzIndex(n, M), V.reshape(g.isContiguous() ? g : K.copy(g), [n * n]));
}

/** The host bool mask `j ≤ i` of an `M × N` matrix (the last one is kept: every step asks for the same). */
let lowerMaskCache: { M: number; N: number; mask: Tensor } | null = null;
function lowerMask(M: number, N: number): Tensor {
  if (lowerMaskCache?.M !== M || lowerMaskCache.N !== N) {
    const m = new Uint8Array(M * N);
    for (let i = 0; i < M; i++) m.fill(1, i * N, i * N + Math.min(i + 1, N));
    lowerMaskCache = { M, N, mask: fromArray(m, [M, N]) };
  }
  return lowerMaskCache.mask;
}

/** Generic `triMatmul`: the full `matmul`, and for `'lower'` its entries above the diagonal set to 0 (`where`). */
export function triMatmulGeneric(a: Tensor, b: Tensor, tri: Triangle): Tensor {
  const { M, N } = checkTriMatmul(a, b, tri);
  const c = K.matmul(a, b);
  return tri === 'lower' ? K.where(lowerMask(M, N), c, scalar(0, c.dtype)) : c;
}

/** Generic `matmulBias`: the product, then the bias added (two kernels). */
export function matmulBiasGeneric(a: Tensor, b: Tensor, bias: Tensor): Tensor {
  return K.binary(K.matmul(a, b), bias, 'add');
}

registerKernel('adamUpdate', ANY_BACKEND, adamUpdateGeneric);
registerKernel('matmulBias', ANY_BACKEND, matmulBiasGeneric);
registerKernel('triMatmul', ANY_BACKEND, triMatmulGeneric);
registerKernel('batchNorm', ANY_BACKEND, batchNormGeneric);
registerKernel('batchNormGrad', ANY_BACKEND, batchNormGradGeneric);
registerKernel('layerNorm', ANY_BACKEND, layerNormGeneric);
registerKernel('layerNormGrad', ANY_BACKEND, layerNormGradGeneric);
registerKernel('laplace', ANY_BACKEND, laplaceGeneric);
registerKernel('laplaceGrad', ANY_BACKEND, laplaceGradGeneric);
registerKernel('emaKernel', ANY_BACKEND, emaKernelGeneric);
registerKernel('emaKernelGrad', ANY_BACKEND, emaKernelGradGeneric);
registerKernel('softmaxGrad', ANY_BACKEND, softmaxGradGeneric);
registerKernel('gateQK', ANY_BACKEND, gateQKGeneric);
registerKernel('gateQKGrad', ANY_BACKEND, gateQKGradGeneric);
registerKernel('siluGrad', ANY_BACKEND, siluGradGeneric);
registerKernel('siluMul', ANY_BACKEND, siluMulGeneric);
registerKernel('siluMulGrad', ANY_BACKEND, siluMulGradGeneric);
registerKernel('gateOut', ANY_BACKEND, gateOutGeneric);
registerKernel('gateOutGrad', ANY_BACKEND, gateOutGradGeneric);
registerKernel('emaCoeffs', ANY_BACKEND, emaCoeffsGeneric);
registerKernel('emaCoeffsGrad', ANY_BACKEND, emaCoeffsGradGeneric);
registerKernel('toeplitz', ANY_BACKEND, toeplitzGeneric);
registerKernel('toeplitzGrad', ANY_BACKEND, toeplitzGradGeneric);
