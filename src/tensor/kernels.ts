/**
 * Typed entry points to the active backend's primitive kernels (see backend.ts). Importing this
 * module also registers the CPU backend.
 */
import { kernel, type AdamHyper, type BinaryOp, type GateActivation, type ReduceOp, type Triangle, type UnaryOp } from './backend.js';
import type { DType } from './dtype.js';
import type { Tensor } from './tensor.js';
import './backends/cpu/register.js';

/** Elementwise unary op. */
export const unary = (x: Tensor, op: UnaryOp): Tensor => kernel('unary')(x, op);
/** Elementwise binary op with broadcasting. */
export const binary = (a: Tensor, b: Tensor, op: BinaryOp): Tensor => kernel('binary')(a, b, op);
/** `cond ? a : b`. */
export const where = (c: Tensor, a: Tensor, b: Tensor): Tensor => kernel('where')(c, a, b);
/** Reduction over sorted axes. */
export const reduce = (x: Tensor, op: ReduceOp, axes: number[], keepdims: boolean): Tensor => kernel('reduce')(x, op, axes, keepdims);
/** Argmax along an axis. */
export const argmax = (x: Tensor, axis: number): Tensor => kernel('argmax')(x, axis);
/** Softmax / log-softmax along the last axis. */
export const softmax = (x: Tensor, log: boolean): Tensor => kernel('softmax')(x, log);
/** Batched matmul. */
export const matmul = (a: Tensor, b: Tensor): Tensor => kernel('matmul')(a, b);
/** Index select along an axis. */
export const indexSelect = (x: Tensor, axis: number, index: Tensor): Tensor => kernel('indexSelect')(x, axis, index);
/** Index add into zeros of a shape. */
export const indexAdd = (shape: readonly number[], axis: number, index: Tensor, src: Tensor): Tensor => kernel('indexAdd')(shape, axis, index, src);
/** torch.gather. */
export const gather = (x: Tensor, axis: number, index: Tensor): Tensor => kernel('gather')(x, axis, index);
/** Scatter-add into zeros of a shape. */
export const scatterAdd = (shape: readonly number[], axis: number, index: Tensor, src: Tensor): Tensor => kernel('scatterAdd')(shape, axis, index, src);
/** Concatenation. */
export const concat = (xs: readonly Tensor[], axis: number): Tensor => kernel('concat')(xs, axis);
/** Constant padding / cropping. */
export const pad = (x: Tensor, pads: readonly (readonly [number, number])[], value = 0): Tensor => kernel('pad')(x, pads, value);
/** Dtype conversion. */
export const cast = (x: Tensor, dtype: DType): Tensor => (x.dtype === dtype ? x : kernel('cast')(x, dtype));
/** Contiguous copy. */
export const copy = (x: Tensor): Tensor => kernel('copy')(x);
/** Windowed linear convolution by FFT. */
export const fftConv = (x: Tensor, k: Tensor, start: number, length: number): Tensor => kernel('fftConv')(x, k, start, length);
/** Fused EMA kernel build: `k[d, l] = Σ_n coef[d, n]·q[d, n]^l` → `[D, length]`. */
export const emaKernel = (coef: Tensor, q: Tensor, length: number): Tensor => kernel('emaKernel')(coef, q, length);
/** VJP of emaKernel: `[2, D, N]` (gradients for coef and q). */
export const emaKernelGrad = (coef: Tensor, q: Tensor, g: Tensor): Tensor => kernel('emaKernelGrad')(coef, q, g);
/** Softmax / log-softmax backward along the last axis from the output `y`. */
export const softmaxGrad = (y: Tensor, g: Tensor, log: boolean): Tensor => kernel('softmaxGrad')(y, g, log);
/** Mega's laplace attention function `0.5·(1 + erf((x − mu)/den))`, elementwise. */
export const laplace = (x: Tensor, mu: number, den: number): Tensor => kernel('laplace')(x, mu, den);
/** VJP of laplace: `g · exp(−z²)/(√π·den)`, `z = (x − mu)/den`. */
export const laplaceGrad = (x: Tensor, g: Tensor, mu: number, den: number): Tensor => kernel('laplaceGrad')(x, g, mu, den);
/** Training-mode batch norm of `[N, D]` rows: `[y, stats]`, stats `[2, D]` = (mean, biased variance). */
export const batchNorm = (x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number): [Tensor, Tensor] => kernel('batchNorm')(x, weight, bias, eps);
/** Layer (or, without `center`, RMS) normalisation of the rows of `[R, D]` (see FusedKernels): `[y, stats]`, stats `[R, 2]` = (mean, rsqrt(var + eps)). */
export const layerNorm = (x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number, center = true): [Tensor, Tensor] =>
  kernel('layerNorm')(x, weight, bias, eps, center);
/** VJP of layerNorm: `[dx, dw, db]` (dw without a weight, db without a bias: null). */
export const layerNormGrad = (
  x: Tensor,
  g: Tensor,
  stats: Tensor,
  weight: Tensor | null,
  bias: boolean,
  center = true,
): [Tensor, Tensor | null, Tensor | null] => kernel('layerNormGrad')(x, g, stats, weight, bias, center);
/** VJP of batchNorm: `[dx, dwb]`, dwb `[2, D]` = (gradient of weight, of bias). */
export const batchNormGrad = (x: Tensor, g: Tensor, stats: Tensor, weight: Tensor | null, eps: number): [Tensor, Tensor] =>
  kernel('batchNormGrad')(x, g, stats, weight, eps);
/** Mega's query/key projection from the pre-activation z: `[..., 2Z]` = [silu(z)·γ0+β0 | silu(z)·γ1+β1]. */
export const gateQK = (z: Tensor, gamma: Tensor, beta: Tensor): Tensor => kernel('gateQK')(z, gamma, beta);
/** VJP of gateQK: `[dz, dgamma, dbeta]`. */
export const gateQKGrad = (z: Tensor, gamma: Tensor, gq: Tensor, gk: Tensor): [Tensor, Tensor, Tensor] => kernel('gateQKGrad')(z, gamma, gq, gk);
/** silu backward: `g ⊙ silu'(x)`. */
export const siluGrad = (x: Tensor, g: Tensor): Tensor => kernel('siluGrad')(x, g);
/** `h ⊙ silu(r)`. */
export const siluMul = (h: Tensor, r: Tensor): Tensor => kernel('siluMul')(h, r);
/** VJP of siluMul: `[dh, dr]`. */
export const siluMulGrad = (h: Tensor, r: Tensor, g: Tensor): [Tensor, Tensor] => kernel('siluMulGrad')(h, r, g);
/** Mega's gated output `x + σ(u) ⊙ (act(hx + y) ⊙ mask − x)`. */
export const gateOut = (x: Tensor, u: Tensor, hx: Tensor, y: Tensor, mask: Tensor | null, act: GateActivation): Tensor =>
  kernel('gateOut')(x, u, hx, y, mask, act);
/** VJP of gateOut: `[dx, du, d(hx + y)]`. */
export const gateOutGrad = (x: Tensor, u: Tensor, hx: Tensor, y: Tensor, mask: Tensor | null, act: GateActivation, g: Tensor): [Tensor, Tensor, Tensor] =>
  kernel('gateOutGrad')(x, u, hx, y, mask, act, g);
/** MultiHeadEMA's `[2, D, N]` = (coef, q) from delta, alpha, beta `[D, N, 1]`, gamma `[D, N]`. */
export const emaCoeffs = (delta: Tensor, alpha: Tensor, beta: Tensor, gamma: Tensor, scale: number): Tensor =>
  kernel('emaCoeffs')(delta, alpha, beta, gamma, scale);
/** VJP of emaCoeffs: `[dδ, dα, dβ, dγ]`. */
export const emaCoeffsGrad = (
  delta: Tensor,
  alpha: Tensor,
  beta: Tensor,
  gamma: Tensor,
  scale: number,
  gcoef: Tensor,
  gq: Tensor,
): [Tensor, Tensor, Tensor, Tensor] => kernel('emaCoeffsGrad')(delta, alpha, beta, gamma, scale, gcoef, gq);
/** Toeplitz matrix `[n, n]`, `out[i, j] = w[M − 1 + j − i]` of `w` `[2M − 1]`. */
export const toeplitz = (w: Tensor, n: number): Tensor => kernel('toeplitz')(w, n);
/** VJP of toeplitz: the diagonal sums of `g` `[n, n]` into `[length]`. */
export const toeplitzGrad = (g: Tensor, length: number): Tensor => kernel('toeplitzGrad')(g, length);
/** matmul with a causal triangle: tril(a·b), or a·b skipping an operand's promised zeros. */
export const triMatmul = (a: Tensor, b: Tensor, tri: Triangle): Tensor => kernel('triMatmul')(a, b, tri);
/** `a·b + bias` (a `[M, K]`, b `[K, N]`, bias `[N]` on every row) in one kernel. */
export const matmulBias = (a: Tensor, b: Tensor, bias: Tensor): Tensor => kernel('matmulBias')(a, b, bias);
/** One Adam update of a device-resident parameter: `[θ', m', v']` (see FusedKernels.adamUpdate). */
export const adamUpdate = (p: Tensor, g: Tensor, m: Tensor, v: Tensor, h: AdamHyper): [Tensor, Tensor, Tensor] => kernel('adamUpdate')(p, g, m, v, h);
