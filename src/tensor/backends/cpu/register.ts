/**
 * Registers the CPU implementations of every primitive kernel under backend name `cpu`.
 * Where a WebAssembly SIMD path exists (simd.ts, gemm.ts) it is tried first; it declines
 * (returns null) for layouts, ops or sizes it does not handle, and the plain-TypeScript kernel —
 * the reference implementation — runs instead.
 */
import { registerKernel, type AllKernels, type AnyKernelName } from '../../backend.js';
import { closeCall, openCall, queuedJobs, stampOutputs } from './wasm/runtime.js';
import { laplaceGradGeneric, layerNormGeneric, layerNormGradGeneric } from '../generic-fused.js';
import { layerNormGradSimd, layerNormSimd } from './layernorm-simd.js';
import { matmulBiasCpu, matmulCpu, triMatmulCpu } from './matmul.js';
import { binaryCpu, castCpu, copyCpu, unaryCpu, whereCpu } from './elementwise.js';
import { fftConvCpu } from './fftconv.js';
import { concatSimd, padSimd } from './copy-simd.js';
import { concatCpu, gatherCpu, indexAddCpu, indexSelectCpu, padCpu, scatterAddCpu } from './indexing.js';
import { argmaxCpu, reduceCpu, softmaxCpu } from './reduce.js';
import { indexAddFast, indexSelectFast, padFast } from './indexing-fast.js';
import { indexAddRows, indexSelectRows } from './rows-simd.js';
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

/**
 * Registers a CPU kernel whose jobs wait only for the jobs that write what it reads
 * (wasm/runtime.ts "Job order": the call is opened and closed around it), and whose outputs are
 * stamped with the jobs queued by its end (`stampOutputs`): reading them later waits for those
 * jobs only, not for later ones — and for none when the kernel queued no job (it wrote them
 * itself).
 */
function reg<K extends AnyKernelName>(name: K, impl: AllKernels[K]): void {
  const fn = impl as (...args: unknown[]) => unknown;
  registerKernel(name, 'cpu', ((...args: unknown[]) => {
    const before = queuedJobs();
    let out: unknown;
    openCall();
    try {
      out = fn(...args);
    } finally {
      closeCall();
    }
    return stampOutputs(out, before);
  }) as AllKernels[K]);
}

reg('unary', (x, op) => unarySimd(x, op) ?? unaryCpu(x, op));
reg('binary', (a, b, op) => binarySimd(a, b, op) ?? binaryCpu(a, b, op));
reg('where', (cond, a, b) => whereSimd(cond, a, b) ?? whereCpu(cond, a, b));
reg('reduce', (x, op, axes, keepdims) => reduceSimd(x, op, axes, keepdims) ?? reduceCpu(x, op, axes, keepdims));
reg('argmax', argmaxCpu);
reg('softmax', (x, log) => (log ? logSoftmaxSimd(x) : softmaxSimd(x, log)) ?? softmaxCpu(x, log));
reg('matmul', matmulCpu);
reg('triMatmul', triMatmulCpu);
reg('matmulBias', matmulBiasCpu);
reg('indexSelect', (x, axis, index) => indexSelectRows(x, axis, index) ?? indexSelectFast(x, axis, index) ?? indexSelectCpu(x, axis, index));
reg(
  'indexAdd',
  (shape, axis, index, src) => indexAddRows(shape, axis, index, src) ?? indexAddFast(shape, axis, index, src) ?? indexAddCpu(shape, axis, index, src),
);
reg('gather', gatherCpu);
reg('scatterAdd', scatterAddCpu);
reg('concat', (xs, axis) => concatSimd(xs, axis) ?? concatCpu(xs, axis));
reg('pad', (x, pads, value) => padSimd(x, pads, value) ?? padFast(x, pads, value) ?? padCpu(x, pads, value));
reg('cast', castCpu);
reg('copy', copyCpu);
reg('fftConv', (x, k, start, length) => fftConvSimd(x, k, start, length) ?? fftConvCpu(x, k, start, length));

// fused kernels (backends without their own get the compositions of generic-fused.ts)
reg('emaKernel', (coef, q, length) => emaKernelSimd(coef, q, length) ?? emaKernelCpu(coef, q, length));
reg('emaKernelGrad', (coef, q, g) => emaKernelGradSimd(coef, q, g) ?? emaKernelGradCpu(coef, q, g));
reg('softmaxGrad', (y, g, log) => (log ? logSoftmaxGradSimd(y, g) : softmaxGradSimd(y, g, log)) ?? softmaxGradCpu(y, g, log));
reg('batchNorm', (x, w, b, eps) => batchNormSimd(x, w, b, eps) ?? batchNormCpu(x, w, b, eps));
reg('layerNorm', (x, w, b, eps, c) => layerNormSimd(x, w, b, eps, c) ?? layerNormGeneric(x, w, b, eps, c));
reg('layerNormGrad', (x, g, st, w, b, c) => layerNormGradSimd(x, g, st, w, b, c) ?? layerNormGradGeneric(x, g, st, w, b, c));
reg('batchNormGrad', (x, g, st, w, eps) => batchNormGradSimd(x, g, st, w, eps) ?? batchNormGradCpu(x, g, st, w, eps));
reg('laplace', (x, mu, den) => laplaceSimd(x, mu, den) ?? laplaceCpu(x, mu, den));
reg('laplaceGrad', (x, g, mu, den) => laplaceGradSimd(x, g, mu, den) ?? laplaceGradGeneric(x, g, mu, den));
reg('gateQK', (z, gamma, beta) => gateQKSimd(z, gamma, beta) ?? gateQKCpu(z, gamma, beta));
reg('gateQKGrad', (z, gamma, gq, gk) => gateQKGradSimd(z, gamma, gq, gk) ?? gateQKGradCpu(z, gamma, gq, gk));
reg('siluGrad', (x, g) => siluGradSimd(x, g) ?? siluGradCpu(x, g));
reg('siluMul', (h, r) => siluMulSimd(h, r) ?? siluMulCpu(h, r));
reg('siluMulGrad', (h, r, g) => siluMulGradSimd(h, r, g) ?? siluMulGradCpu(h, r, g));
reg('gateOut', (x, u, hx, y, mask, act) => gateOutSimd(x, u, hx, y, mask, act) ?? gateOutCpu(x, u, hx, y, mask, act));
reg('gateOutGrad', (x, u, hx, y, mask, act, g) => gateOutGradSimd(x, u, hx, y, mask, act, g) ?? gateOutGradCpu(x, u, hx, y, mask, act, g));
reg('toeplitz', (w, n) => toeplitzSimd(w, n) ?? toeplitzCpu(w, n));
reg('toeplitzGrad', (g, length) => toeplitzGradSimd(g, length) ?? toeplitzGradCpu(g, length));
reg('emaCoeffs', emaCoeffsCpu);
reg('emaCoeffsGrad', emaCoeffsGradCpu);
