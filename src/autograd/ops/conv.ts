/** Differentiable FFT convolution (the EMA's long convolution). */
import * as K from '../../tensor/kernels.js';
import type { Tensor } from '../../tensor/tensor.js';
import * as V from '../../tensor/view.js';
import { record } from '../engine.js';
import { sumTo } from './arith.js';

/**
 * Windowed linear convolution along the last axis:
 * `y[..., t] = Σ_j k[..., j] · x[..., start + t − j]`, t ∈ [0, length); leading axes broadcast.
 * Gradients are correlations computed with the same kernel:
 * dx = conv(g, flip(k)) at window start `Lk − 1 − start`, dk = flip(conv(x, flip(g))) at `start + length − Lk`.
 */
export function fftConv(x: Tensor, k: Tensor, start: number, length: number): Tensor {
  const Lx = x.shape[x.ndim - 1],
    Lk = k.shape[k.ndim - 1];
  const out = K.fftConv(x, k, start, length);
  return record(out, 'fftConv', [x, k], (g) => [
    x.requiresGrad ? sumTo(K.fftConv(g, V.flip(k, -1), Lk - 1 - start, Lx), x.shape) : null,
    // summed over broadcast axes, then flipped: the same sums as flipping first, without a copy of the flipped view
    k.requiresGrad ? V.flip(sumTo(K.fftConv(x, V.flip(g, -1), start + length - Lk, Lk), k.shape), -1) : null,
  ]);
}
