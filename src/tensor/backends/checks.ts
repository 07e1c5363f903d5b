/**
 * Argument checks and output shapes that the kernels of every backend share (backend.ts states
 * the kernels' contracts), so that a bad input gets the same typed error whichever backend runs it.
 */
import { isFloat } from '../dtype.js';
import { DTypeError, ShapeError, TensorError } from '../errors.js';
import { broadcastShapes, sizeOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import type { Triangle } from '../backend.js';

/** Sizes before, at and after `axis`. */
export function splitAxis(shape: readonly number[], axis: number): [number, number, number] {
  return [sizeOf(shape.slice(0, axis)), shape[axis], sizeOf(shape.slice(axis + 1))];
}

/** `gather` / `scatterAdd`: the index has the shape of x (of the output) except along `axis`. */
export function checkGatherShapes(op: string, xShape: readonly number[], index: Tensor, axis: number): void {
  if (index.ndim !== xShape.length || index.shape.some((d, i) => i !== axis && d !== xShape[i])) {
    throw new ShapeError(`${op}: index shape [${index.shape}] must equal [${xShape}] except on axis ${axis}`);
  }
}

/** `concat`: at least one tensor, one dtype, equal shapes outside `axis`. Returns the output shape. */
export function concatShape(xs: readonly Tensor[], axis: number): number[] {
  if (xs.length === 0) throw new ShapeError('concat: no tensors given');
  const first = xs[0];
  for (const t of xs) {
    if (t.dtype !== first.dtype) throw new DTypeError(`concat: mixed dtypes ${first.dtype} and ${t.dtype}`);
    if (t.ndim !== first.ndim || t.shape.some((d, i) => i !== axis && d !== first.shape[i])) {
      throw new ShapeError(`concat: shapes [${first.shape}] and [${t.shape}] differ outside axis ${axis}`);
    }
  }
  const shape = [...first.shape];
  shape[axis] = xs.reduce((n, t) => n + t.shape[axis], 0);
  return shape;
}

/** `pad`: one `[before, after]` pair per axis, no axis cropped below zero. Returns the output shape. */
export function padShape(x: Tensor, pads: readonly (readonly [number, number])[]): number[] {
  if (pads.length !== x.ndim) throw new ShapeError(`pad: ${pads.length} pad pairs for a tensor of ${x.ndim} dimensions`);
  const shape = x.shape.map((d, i) => d + pads[i][0] + pads[i][1]);
  if (shape.some((d) => d < 0)) throw new ShapeError(`pad: pads [${pads.map((p) => `[${p}]`)}] crop [${x.shape}] below zero`);
  return shape;
}

/**
 * `matmul`: two floating tensors of one dtype, `[..., M, K] · [..., K, N]`. Returns the matrix
 * sizes and the broadcast batch shape.
 */
export function matmulShape(a: Tensor, b: Tensor): { batch: number[]; M: number; K: number; N: number } {
  if (a.dtype !== b.dtype || !isFloat(a.dtype)) throw new DTypeError(`matmul: expected two floating tensors of one dtype, got ${a.dtype} and ${b.dtype}`);
  if (a.ndim < 2 || b.ndim < 2) throw new ShapeError(`matmul: operands need at least 2 dimensions, got [${a.shape}] and [${b.shape}]`);
  const M = a.shape[a.ndim - 2],
    K = a.shape[a.ndim - 1],
    K2 = b.shape[b.ndim - 2],
    N = b.shape[b.ndim - 1];
  if (K !== K2) throw new ShapeError(`matmul: inner dimensions differ: [${a.shape}] · [${b.shape}] (${K} vs ${K2})`);
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'matmul');
  return { batch, M, K, N };
}

const TRIANGLES: readonly Triangle[] = ['lower', 'a-lower', 'a-upper', 'b-lower'];

/** `triMatmul`: the operands of `matmul` and one of its triangles; returns matmul's sizes. */
export function checkTriMatmul(a: Tensor, b: Tensor, tri: Triangle): { batch: number[]; M: number; K: number; N: number } {
  if (!TRIANGLES.includes(tri)) throw new TensorError(`triMatmul: unknown triangle '${tri}' (expected ${TRIANGLES.join(', ')})`);
  return matmulShape(a, b);
}

/** `fftConv`: two floating tensors of one dtype with a last (time) axis, an integer output length ≥ 0. */
export function checkFftConv(x: Tensor, k: Tensor, length: number): void {
  if (x.dtype !== k.dtype || (x.dtype !== 'f32' && x.dtype !== 'f64')) {
    throw new DTypeError(`fftConv: expected two floating tensors of one dtype, got ${x.dtype} and ${k.dtype}`);
  }
  if (x.ndim < 1 || k.ndim < 1) throw new ShapeError('fftConv: inputs need a last (time) axis');
  if (!Number.isInteger(length) || length < 0) throw new ShapeError(`fftConv: invalid output length ${length}`);
}

/** `toeplitz`: `w` a floating `[2M − 1]`, an integer `0 ≤ n ≤ M`; returns M. */
export function checkToeplitz(w: Tensor, n: number): number {
  if (!isFloat(w.dtype)) throw new DTypeError(`toeplitz: expected a floating tensor, got ${w.dtype}`);
  if (w.ndim !== 1 || w.shape[0] % 2 !== 1) throw new ShapeError(`toeplitz: expected w [2M − 1], got [${w.shape}]`);
  const M = (w.shape[0] + 1) / 2;
  if (!Number.isInteger(n) || n < 0 || n > M) throw new ShapeError(`toeplitz: size ${n} is not an integer in [0, ${M}] (w [${w.shape}])`);
  return M;
}

/** `toeplitzGrad`: `g` a floating `[n, n]`, `length` = 2M − 1 with n ≤ M; returns M. */
export function checkToeplitzGrad(g: Tensor, length: number): number {
  if (!isFloat(g.dtype)) throw new DTypeError(`toeplitzGrad: expected a floating tensor, got ${g.dtype}`);
  if (!Number.isInteger(length) || length < 1 || length % 2 !== 1) throw new ShapeError(`toeplitzGrad: length ${length} is not 2M − 1`);
  const M = (length + 1) / 2;
  if (g.ndim !== 2 || g.shape[0] !== g.shape[1] || g.shape[0] > M) throw new ShapeError(`toeplitzGrad: expected g [n, n] with n ≤ ${M}, got [${g.shape}]`);
  return M;
}

/** `emaCoeffs`: delta, alpha, beta floating `[D, N, 1]` and gamma `[D, N]` of one dtype; returns [D, N]. */
export function checkEmaCoeffs(op: string, delta: Tensor, alpha: Tensor, beta: Tensor, gamma: Tensor, grads: readonly Tensor[] = []): [number, number] {
  if (!isFloat(delta.dtype) || [alpha, beta, gamma, ...grads].some((t) => t.dtype !== delta.dtype))
    throw new DTypeError(`${op}: expected floating tensors of one dtype, got ${[delta, alpha, beta, gamma].map((t) => t.dtype).join(', ')}`);
  const [D, N] = gamma.shape;
  const col = (t: Tensor) => t.ndim === 3 && t.shape[0] === D && t.shape[1] === N && t.shape[2] === 1;
  const mat = (t: Tensor) => t.ndim === 2 && t.shape[0] === D && t.shape[1] === N;
  if (gamma.ndim !== 2 || !col(delta) || !col(alpha) || !col(beta) || !grads.every(mat)) {
    const got = [delta, alpha, beta, gamma, ...grads].map((t) => `[${t.shape.join(', ')}]`).join(', ');
    throw new ShapeError(`${op}: expected delta, alpha, beta [D, N, 1], gamma and gradients [D, N], got ${got}`);
  }
  return [D, N];
}

/** `emaKernel` / `emaKernelGrad`: coef and q are floating `[D, N]` of one dtype. */
export function checkCoefQ(coef: Tensor, q: Tensor, op: string): void {
  if (coef.dtype !== q.dtype || !isFloat(coef.dtype))
    throw new DTypeError(`${op}: expected two floating tensors of one dtype, got ${coef.dtype} and ${q.dtype}`);
  if (coef.ndim !== 2 || q.ndim !== 2 || coef.shape[0] !== q.shape[0] || coef.shape[1] !== q.shape[1]) {
    throw new ShapeError(`${op}: coef and q must both be [D, N], got [${coef.shape}] and [${q.shape}]`);
  }
}

/** `emaKernelGrad`: the output gradient is `[D, L]` of coef's dtype. */
export function checkEmaGrad(coef: Tensor, g: Tensor): void {
  if (g.dtype !== coef.dtype || g.ndim !== 2 || g.shape[0] !== coef.shape[0])
    throw new ShapeError(`emaKernelGrad: gradient [${g.shape}] (${g.dtype}) does not match [${coef.shape[0]}, L]`);
}

/** `softmaxGrad`: y and g are floating tensors of one dtype and shape, at least 1-D. */
export function checkSoftmaxGrad(y: Tensor, g: Tensor): void {
  if (y.dtype !== g.dtype || !isFloat(y.dtype)) throw new DTypeError(`softmaxGrad: expected two floating tensors of one dtype, got ${y.dtype} and ${g.dtype}`);
  if (y.ndim === 0 || y.ndim !== g.ndim || y.shape.some((d, i) => d !== g.shape[i]))
    throw new ShapeError(`softmaxGrad: shapes [${y.shape}] and [${g.shape}] differ`);
}

/** `batchNorm`: x floating `[N, D]` with N ≥ 1; weight and bias (when given) `[D]` of x's dtype. */
export function checkBatchNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null): void {
  if (!isFloat(x.dtype)) throw new DTypeError(`batchNorm: expected a floating tensor, got ${x.dtype}`);
  if (x.ndim !== 2 || x.shape[0] < 1) throw new ShapeError(`batchNorm: expected x [N, D] with N ≥ 1, got [${x.shape}]`);
  for (const [name, t] of [
    ['weight', weight],
    ['bias', bias],
  ] as const) {
    if (t && (t.dtype !== x.dtype || t.ndim !== 1 || t.shape[0] !== x.shape[1]))
      throw new ShapeError(`batchNorm: ${name} [${t.shape}] (${t.dtype}) does not match [${x.shape[1]}] (${x.dtype})`);
  }
}

/** `layerNorm`: x floating `[R, D]` with D ≥ 1; weight and bias (when given) `[D]` of x's dtype. */
export function checkLayerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null): void {
  if (!isFloat(x.dtype)) throw new DTypeError(`layerNorm: expected a floating tensor, got ${x.dtype}`);
  if (x.ndim !== 2 || x.shape[1] < 1) throw new ShapeError(`layerNorm: expected x [R, D] with D ≥ 1, got [${x.shape}]`);
  for (const [name, t] of [
    ['weight', weight],
    ['bias', bias],
  ] as const) {
    if (t && (t.dtype !== x.dtype || t.ndim !== 1 || t.shape[0] !== x.shape[1]))
      throw new ShapeError(`layerNorm: ${name} [${t.shape}] (${t.dtype}) does not match [${x.shape[1]}] (${x.dtype})`);
  }
}

/** `layerNormGrad`: g like x, stats `[R, 2]`, weight as for `layerNorm`. */
export function checkLayerNormGrad(x: Tensor, g: Tensor, stats: Tensor, weight: Tensor | null): void {
  checkLayerNorm(x, weight, null);
  if (g.dtype !== x.dtype || g.ndim !== 2 || g.shape[0] !== x.shape[0] || g.shape[1] !== x.shape[1])
    throw new ShapeError(`layerNormGrad: gradient [${g.shape}] (${g.dtype}) does not match x [${x.shape}] (${x.dtype})`);
  if (stats.dtype !== x.dtype || stats.ndim !== 2 || stats.shape[0] !== x.shape[0] || stats.shape[1] !== 2)
    throw new ShapeError(`layerNormGrad: stats [${stats.shape}] (${stats.dtype}) must be [${x.shape[0]}, 2] (${x.dtype})`);
}

/** `batchNormGrad`: g like x, stats `[2, D]`, weight as for `batchNorm`. */
export function checkBatchNormGrad(x: Tensor, g: Tensor, stats: Tensor, weight: Tensor | null): void {
  checkBatchNorm(x, weight, null);
  if (g.dtype !== x.dtype || g.ndim !== 2 || g.shape[0] !== x.shape[0] || g.shape[1] !== x.shape[1])
    throw new ShapeError(`batchNormGrad: gradient [${g.shape}] (${g.dtype}) does not match x [${x.shape}] (${x.dtype})`);
  if (stats.dtype !== x.dtype || stats.ndim !== 2 || stats.shape[0] !== 2 || stats.shape[1] !== x.shape[1])
    throw new ShapeError(`batchNormGrad: stats [${stats.shape}] (${stats.dtype}) must be [2, ${x.shape[1]}] (${x.dtype})`);
}

/** The gate kernels (gateQK, siluMul, gateOut and their VJPs): floating operands of one dtype and one shape. */
export function checkGateOperands(op: string, ts: readonly Tensor[]): void {
  const first = ts[0];
  if (!isFloat(first.dtype)) throw new DTypeError(`${op}: expected floating tensors, got ${first.dtype}`);
  for (const t of ts) {
    if (t.dtype !== first.dtype) throw new DTypeError(`${op}: mixed dtypes ${first.dtype} and ${t.dtype}`);
    if (t.ndim !== first.ndim || t.shape.some((d, i) => d !== first.shape[i])) throw new ShapeError(`${op}: shapes [${first.shape}] and [${t.shape}] differ`);
  }
}

/** gateQK / gateQKGrad: z `[..., Z]` and gamma (and beta) `[2, Z]` of z's dtype. */
export function checkGateQK(op: string, z: Tensor, params: readonly Tensor[]): void {
  const Z = z.shape[z.ndim - 1];
  if (z.ndim === 0) throw new ShapeError(`${op}: z must have at least one dimension`);
  for (const p of params) {
    if (p.dtype !== z.dtype || !isFloat(z.dtype)) throw new DTypeError(`${op}: expected floating tensors of one dtype, got ${z.dtype} and ${p.dtype}`);
    if (p.ndim !== 2 || p.shape[0] !== 2 || p.shape[1] !== Z) throw new ShapeError(`${op}: gamma / beta must be [2, ${Z}], got [${p.shape}]`);
  }
}
