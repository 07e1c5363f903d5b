/**
 * gpu.js implementations of the primitive kernels (see backend.ts for their semantics).
 *
 * Every kernel is a gpu.js kernel function (JavaScript, translated by gpu.js to WGSL or GLSL),
 * generated here as source text per operation and rank, so one compiled kernel serves every
 * shape of that rank: shapes, strides and offsets are integer arguments, outputs are resized
 * with `setOutput` (dynamicOutput). Inputs are read through their strides and offsets, so views
 * (transposed, sliced, broadcast, flipped) need no copy.
 *
 * Index arithmetic stays in 32-bit integers: gpu.js keeps `this.thread.*`, integer arguments and
 * products of them as i32, but turns `/`, `%` and every declared variable into f32. So indices
 * are written inline (never stored in a variable), outputs use gpu.js's 1-, 2- or 3-D thread
 * grid for up to three coalesced axes, and further leading axes are folded into `z` and split
 * again with exact small float divisions (z < 65536).
 *
 * Values are f32 on the device (i32 and bool are stored as exact f32 integers below 2^24). What
 * gpu.js cannot express runs the CPU kernel instead, explicitly, and is counted ({@link fallbacks}):
 * f64 tensors (f64 stays a CPU feature), `isfinite` (NaN tests are folded away by the shader
 * compilers), integer `div`/`pow`, and shapes beyond the dispatch limits.
 *
 * The kernels live by family: launch.ts (operands, grid, source helpers, fallbacks),
 * elementwise.ts, reduce.ts, matmul.ts, indexing.ts (index, gather, concat, pad), fftconv.ts,
 * fused.ts (the fused kernels: EMA kernel build and its VJP, softmax backward, Adam update).
 */
import type { FusedKernels, Kernels } from '../../backend.js';
import { castGpu, copyGpu, unaryGpu, binaryGpu, whereGpu } from './elementwise.js';
import { fftConvGpu } from './fftconv.js';
import {
  batchNormGeneric,
  batchNormGradGeneric,
  emaCoeffsGeneric,
  emaCoeffsGradGeneric,
  layerNormGeneric,
  layerNormGradGeneric,
  gateOutGeneric,
  gateOutGradGeneric,
  gateQKGeneric,
  gateQKGradGeneric,
  laplaceGeneric,
  laplaceGradGeneric,
  siluGradGeneric,
  siluMulGeneric,
  siluMulGradGeneric,
  toeplitzGeneric,
  toeplitzGradGeneric,
  triMatmulGeneric,
  matmulBiasGeneric,
} from '../generic-fused.js';
import { adamUpdateGpu, emaKernelGpu, emaKernelGradGpu, softmaxGradGpu } from './fused.js';
import { concatGpu, gatherGpu, indexAddGpu, indexSelectGpu, padGpu, scatterAddGpu } from './indexing.js';
import { matmulGpu } from './matmul.js';
import { argmaxGpu, reduceGpu, softmaxGpu } from './reduce.js';

export { fallbacks, resetFallbacks } from './launch.js';
export { castGpu, copyGpu, unaryGpu, binaryGpu, whereGpu, fftConvGpu, matmulGpu, argmaxGpu, reduceGpu, softmaxGpu };
export { adamUpdateGpu, emaKernelGpu, emaKernelGradGpu, softmaxGradGpu };
export { concatGpu, gatherGpu, indexAddGpu, indexSelectGpu, padGpu, scatterAddGpu };

/** Every primitive kernel of the gpujs backend. */
export const gpujsKernels: Kernels = {
  unary: unaryGpu,
  binary: binaryGpu,
  where: whereGpu,
  reduce: reduceGpu,
  argmax: argmaxGpu,
  softmax: softmaxGpu,
  matmul: matmulGpu,
  indexSelect: indexSelectGpu,
  indexAdd: indexAddGpu,
  gather: gatherGpu,
  scatterAdd: scatterAddGpu,
  concat: concatGpu,
  pad: padGpu,
  cast: castGpu,
  copy: copyGpu,
  fftConv: fftConvGpu,
};

/**
 * Every fused kernel of the gpujs backend (so none runs host code); laplace, batch norm, the Mega
 * gates and their gradients are the generic compositions, which run the device's primitives.
 */
export const gpujsFusedKernels: FusedKernels = {
  emaKernel: emaKernelGpu,
  emaKernelGrad: emaKernelGradGpu,
  softmaxGrad: softmaxGradGpu,
  adamUpdate: adamUpdateGpu,
  laplace: laplaceGeneric,
  laplaceGrad: laplaceGradGeneric,
  batchNorm: batchNormGeneric,
  batchNormGrad: batchNormGradGeneric,
  layerNorm: layerNormGeneric,
  layerNormGrad: layerNormGradGeneric,
  gateQK: gateQKGeneric,
  gateQKGrad: gateQKGradGeneric,
  siluGrad: siluGradGeneric,
  siluMul: siluMulGeneric,
  siluMulGrad: siluMulGradGeneric,
  gateOut: gateOutGeneric,
  gateOutGrad: gateOutGradGeneric,
  emaCoeffs: emaCoeffsGeneric,
  emaCoeffsGrad: emaCoeffsGradGeneric,
  toeplitz: toeplitzGeneric,
  toeplitzGrad: toeplitzGradGeneric,
  triMatmul: triMatmulGeneric,
  matmulBias: matmulBiasGeneric,
};
