/**
 * Registers the CPU implementations of every primitive kernel under backend name `cpu`.
 * Where a WebAssembly SIMD path exists (simd.ts, gemm.ts) it is tried first; it declines
 * (returns null) for layouts, ops or sizes it does not handle, and the plain-TypeScript kernel —
 * the reference implementation — runs instead.
 */
import { registerKernel } from '../../backend.js';
import { laplaceGradGeneric, layerNormGeneric, layerNormGradGeneric } from '../generic-fused.js';
import { layerNormGradSimd, layerNormSimd } from './layernorm-simd.js';
import { matmulBiasCpu, matmulCpu, triMatmulCpu } from './matmul.js';
import { binaryCpu, castCpu, copyCpu, unaryCpu, whereCpu } from './elementwise.js';
import { fftConvCpu } from './fftconv.js';
import { concatSimd, padSimd } from './copy-simd.js';
import { concatCpu, gatherCpu, indexAddCpu, indexSelectCpu, padCpu, scatterAddCpu } from './indexing.js';
import { argmaxCpu, reduceCpu, softmaxCpu } from './reduce.js';
import { indexAddFast, indexSelectFast, padFast } from './indexing-fast.js';
import { toeplitzCpu, toeplitzGradCpu } from './toeplitz.js';
import { toeplitzGradSimd, toeplitzSimd } from './toeplitz-simd.js';
import { whereSimd } from './where-simd.js';
import { fftConvSimd } from './fftconv-simd.js';
import { batchNormCpu, batchNormGradCpu } from './batchnorm.js';
import { emaCoeffsCpu, emaCoeffsGradCpu } from './ema-coeffs.js';
import { emaKernelGradSimd, emaKernelSimd } from './ema-simd.js';
import { emaKernelCpu, emaKernelGradCpu, laplaceCpu, softmaxGradCpu } from './fused.js';
import { gateOutCpu, gateOutGradCpu, gateQKCpu, gateQKGradCpu, siluGradCpu, siluMulCpu, siluMulGradCpu } from './fused-gates.js';
import { gateOutGradSimd, gateOutSimd, gateQKGradSimd, gateQKSimd, siluGradSimd, siluMulGradSimd, siluMulSimd } from './gates-simd.js';
import { binarySimd, reduceSimd, softmaxGradSimd, softmaxSimd, unarySimd } from './simd.js';
import { batchNormGradSimd, batchNormSimd, laplaceGradSimd, laplaceSimd, logSoftmaxGradSimd, logSoftmaxSimd } from './simd-fused.js';

registerKernel('unary', 'cpu', (x, op) => unarySimd(x, op) ?? unaryCpu(x, op));
registerKernel('binary', 'cpu', (a, b, op) => binarySimd(a, b, op) ?? binaryCpu(a, b, op));
registerKernel('where', 'cpu', (cond, a, b) => whereSimd(cond, a, b) ?? whereCpu(cond, a, b));
registerKernel('reduce', 'cpu', (x, op, axes, keepdims) => reduceSimd(x, op, axes, keepdims) ?? reduceCpu(x, op, axes, keepdims));
registerKernel('argmax', 'cpu', argmaxCpu);
registerKernel('softmax', 'cpu', (x, log) => (log ? logSoftmaxSimd(x) : softmaxSimd(x, log)) ?? softmaxCpu(x, log));
registerKernel('matmul', 'cpu', matmulCpu);
registerKernel('triMatmul', 'cpu', triMatmulCpu);
registerKernel('matmulBias', 'cpu', matmulBiasCpu);
registerKernel('indexSelect', 'cpu', (x, axis, index) => indexSelectFast(x, axis, index) ?? indexSelectCpu(x, axis, index));
registerKernel('indexAdd', 'cpu', (shape, axis, index, src) => indexAddFast(shape, axis, index, src) ?? indexAddCpu(shape, axis, index, src));
registerKernel('gather', 'cpu', gatherCpu);
registerKernel('scatterAdd', 'cpu', scatterAddCpu);
registerKernel('concat', 'cpu', (xs, axis) => concatSimd(xs, axis) ?? concatCpu(xs, axis));
registerKernel('pad', 'cpu', (x, pads, value) => padSimd(x, pads, value) ?? padFast(x, pads, value) ?? padCpu(x, pads, value));
registerKernel('cast', 'cpu', castCpu);
registerKernel('copy', 'cpu', copyCpu);
registerKernel('fftConv', 'cpu', (x, k, start, length) => fftConvSimd(x, k, start, length) ?? fftConvCpu(x, k, start, length));

// fused kernels (backends without their own get the compositions of generic-fused.ts)
registerKernel('emaKernel', 'cpu', (coef, q, length) => emaKernelSimd(coef, q, length) ?? emaKernelCpu(coef, q, length));
registerKernel('emaKernelGrad', 'cpu', (coef, q, g) => emaKernelGradSimd(coef, q, g) ?? emaKernelGradCpu(coef, q, g));
registerKernel('softmaxGrad', 'cpu', (y, g, log) => (log ? logSoftmaxGradSimd(y, g) : softmaxGradSimd(y, g, log)) ?? softmaxGradCpu(y, g, log));
registerKernel('batchNorm', 'cpu', (x, w, b, eps) => batchNormSimd(x, w, b, eps) ?? batchNormCpu(x, w, b, eps));
registerKernel('layerNorm', 'cpu', (x, w, b, eps, c) => layerNormSimd(x, w, b, eps, c) ?? layerNormGeneric(x, w, b, eps, c));
registerKernel('layerNormGrad', 'cpu', (x, g, st, w, b, c) => layerNormGradSimd(x, g, st, w, b, c) ?? layerNormGradGeneric(x, g, st, w, b, c));
registerKernel('batchNormGrad', 'cpu', (x, g, st, w, eps) => batchNormGradSimd(x, g, st, w, eps) ?? batchNormGradCpu(x, g, st, w, eps));
registerKernel('laplace', 'cpu', (x, mu, den) => laplaceSimd(x, mu, den) ?? laplaceCpu(x, mu, den));
registerKernel('laplaceGrad', 'cpu', (x, g, mu, den) => laplaceGradSimd(x, g, mu, den) ?? laplaceGradGeneric(x, g, mu, den));
registerKernel('gateQK', 'cpu', (z, gamma, beta) => gateQKSimd(z, gamma, beta) ?? gateQKCpu(z, gamma, beta));
registerKernel('gateQKGrad', 'cpu', (z, gamma, gq, gk) => gateQKGradSimd(z, gamma, gq, gk) ?? gateQKGradCpu(z, gamma, gq, gk));
registerKernel('siluGrad', 'cpu', (x, g) => siluGradSimd(x, g) ?? siluGradCpu(x, g));
registerKernel('siluMul', 'cpu', (h, r) => siluMulSimd(h, r) ?? siluMulCpu(h, r));
registerKernel('siluMulGrad', 'cpu', (h, r, g) => siluMulGradSimd(h, r, g) ?? siluMulGradCpu(h, r, g));
registerKernel('gateOut', 'cpu', (x, u, hx, y, mask, act) => gateOutSimd(x, u, hx, y, mask, act) ?? gateOutCpu(x, u, hx, y, mask, act));
registerKernel('gateOutGrad', 'cpu', (x, u, hx, y, mask, act, g) => gateOutGradSimd(x, u, hx, y, mask, act, g) ?? gateOutGradCpu(x, u, hx, y, mask, act, g));
registerKernel('toeplitz', 'cpu', (w, n) => toeplitzSimd(w, n) ?? toeplitzCpu(w, n));
registerKernel('toeplitzGrad', 'cpu', (g, length) => toeplitzGradSimd(g, length) ?? toeplitzGradCpu(g, length));
registerKernel('emaCoeffs', 'cpu', emaCoeffsCpu);
registerKernel('emaCoeffsGrad', 'cpu', emaCoeffsGradCpu);
