/**
 * gpujs `fftConv`: a direct windowed sum for short kernels, FFTs on the device (fft.ts) above
 * the measured crossover.
 */
import { broadcastShapes, sizeOf } from '../../shape.js';
import type { Tensor } from '../../tensor.js';
import { checkFftConv } from '../checks.js';
import { fftConvCpu } from '../cpu/fftconv.js';
import type { GpuData } from './device.js';
import { fftConvSpectral } from './fft.js';
import { bstrides, coalesce, dev, done, emptyHost, fallback, fn, grid, operandOf, types, wrap } from './launch.js';

/**
 * Kernel length from which the FFT path is used: below it the direct sum (one launch, O(L·Lk)
 * per row) is faster than the 3·log2 N + 4 launches of the FFT path. Measured on lavapipe with
 * `npm run bench -- --filter gpu-fftconv` (bench/gpu.ts: direct faster up to 320, FFT from 384 on,
 * 0.2× the direct time at 2048); see docs/GPU.md.
 */
export const FFT_CONV_MIN_KERNEL = 384;

/** gpujs `fftConv`: the direct sum below {@link FFT_CONV_MIN_KERNEL}, FFTs from there on. */
export function fftConvGpu(x: Tensor, k: Tensor, start: number, length: number): Tensor {
  return fftConvGpuBy(x, k, start, length, k.shape[k.ndim - 1] >= FFT_CONV_MIN_KERNEL ? 'fft' : 'direct');
}

/**
 * gpujs `fftConv` by a chosen method: `direct`, the windowed linear convolution evaluated
 * directly, one thread per output element summing over the overlap
 * `j ∈ [max(0, m−Lx+1), min(Lk−1, m)]` (f32 accumulation); or `fft` (fft.ts).
 */
export function fftConvGpuBy(x: Tensor, k: Tensor, start: number, length: number, method: 'direct' | 'fft'): Tensor {
  checkFftConv(x, k, length);
  const cpu = () => fftConvCpu(x, k, start, length);
  if (x.dtype === 'f64') return fallback('fftConv', 'f64', cpu);
  const Lx = x.shape[x.ndim - 1],
    Lk = k.shape[k.ndim - 1];
  const xLead = x.shape.slice(0, -1),
    kLead = k.shape.slice(0, -1);
  const outLead = broadcastShapes(xLead, kLead, 'fftConv');
  const shape = [...outLead, length];
  if (sizeOf(shape) === 0) return emptyHost(shape, x.dtype);
  if (Lx === 0 || Lk === 0) return fallback('fftConv', 'empty input', cpu);
  if (method === 'fft') {
    const y = fftConvSpectral(x, k, start, length, outLead);
    if (y) return y;
  }
  const temps: GpuData[] = [];
  try {
    const X = operandOf(x, temps),
      K = operandOf(k, temps);
    const c = coalesce(outLead, [bstrides({ shape: xLead }, X.strides.slice(0, -1), outLead), bstrides({ shape: kLead }, K.strides.slice(0, -1), outLead)]);
    const g = grid([...c.shape, length]);
    if (!g) return fallback('fftConv', 'grid limits', cpu);
    const lead = g.coords.slice(0, -1);
    const xi = ['o0', ...lead.map((cc, i) => `${cc} * s0_${i}`)].join(' + ');
    const ki = ['o1', ...lead.map((cc, i) => `${cc} * s1_${i}`)].join(' + ');
    const sn = lead.flatMap((_, i) => [`s0_${i}`, `s1_${i}`]);
    const body = [
      g.pre,
      'const mm = start + this.thread.x;',
      'const jlo = Math.max(0, mm - Lx + 1);',
      'const jhi = Math.min(Lk - 1, mm);',
      'let acc = 0;',
      'for (let q = 0; q < (jhi - jlo + 1 | 0); q++) {',
      `acc += t1[${ki} + ((jlo | 0) + q) * ks] * t0[${xi} + (start + this.thread.x - (jlo | 0) - q) * xs];`,
      '}',
      'return acc;',
    ].join('\n');
    const ints = ['o0', 'o1', ...sn, 'xs', 'ks', 'start', 'Lx', 'Lk', ...g.foldArgs];
    const out = dev().run(
      `conv:${g.coords.length}`,
      () => fn(['t0', 't1', ...ints], body),
      types(['t0', 't1'], ints),
      g.output,
      [
        X.data,
        K.data,
        X.offset,
        K.offset,
        ...lead.flatMap((_, i) => [c.strides[0][i], c.strides[1][i]]),
        X.strides[x.ndim - 1],
        K.strides[k.ndim - 1],
        start,
        Lx,
        Lk,
        ...g.foldVals,
      ],
      x.dtype,
    );
    return wrap(out, shape);
  } finally {
    done(temps);
  }
}
