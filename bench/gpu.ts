/**
 * The gpujs backend beside the CPU backend, in the same run: f32 matmul (GFLOP/s; the gpu.js
 * kernel against the CPU, the WGSL shader against the gpu.js kernel), one Mega layer
 * (MovingAverageGatedAttention) forward + backward (ms per step), and the gpujs fftConv's direct
 * sum against its FFT path (ms). Rows of the gpujs backend
 * are named after the gpu.js mode really used (`gpujs-webgpu`, `gpujs-headlessgl`); a note gives
 * the kernel class and the adapter. Without a GPU the gpujs rows are left out, with a note.
 *
 * GPU timings include waiting for the device (a `stats()` round trip after the timed work), and
 * keep the operands on the device; CPU timings use the CPU backend's kernels.
 */
import * as F from '../src/autograd/index.js';
import { MovingAverageGatedAttention } from '../src/mega/attention.js';
import { getBackend, setBackend } from '../src/tensor/backend.js';
import { dispose, GpuDevice, selectBackend, tidy } from '../src/tensor/backends/gpujs/index.js';
import { fftConvGpuBy } from '../src/tensor/backends/gpujs/fftconv.js';
import { setGpuKernels, type GpuKernels } from '../src/tensor/backends/gpujs/wgsl.js';
import * as K from '../src/tensor/kernels.js';
import { Generator, randNormal } from '../src/tensor/random.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { caseId, note, report, selected, type BenchOptions, type BenchResult } from './report.js';
import { timeMedian } from './timing.js';

const MATMUL_SIZES = (process.env.MEGA_BENCH_MATMUL_SIZES ?? '256,512,1024')
  .split(',')
  .map(Number)
  .filter((n) => n > 0);
const CPU = 'mega-ts-cpu';

/** Starts the gpujs backend; returns its row name, or null (with a note) when there is no GPU. */
export function startGpu(): string | null {
  const prev = getBackend();
  try {
    const s = selectBackend('gpujs');
    const info = s.gpu!;
    note(`gpujs: mode ${info.mode}, gpu.js class ${info.kernelClass}, adapter ${info.adapter.description ?? info.adapter.device}`);
    return `gpujs-${info.mode}`;
  } catch (e) {
    note(`gpujs backend unavailable, its rows are left out: ${(e as Error).message}`);
    return null;
  } finally {
    setBackend(prev);
  }
}

/** Waits until the device has finished everything queued. */
function sync(): void {
  GpuDevice.get()?.stats();
}

function onBackend<T>(name: string, fn: () => T): T {
  const prev = getBackend();
  setBackend(name);
  try {
    return fn();
  } finally {
    setBackend(prev);
  }
}

/** GFLOP/s of an n³ f32 matmul on `backend` (gpujs: operands on the device; `kernel`: the gpujs matmul kernel). */
export function matmulGflops(backend: string, n: number, kernel: GpuKernels | null = null): number {
  return onBackend(backend, () => {
    if (backend === 'gpujs') setGpuKernels(kernel);
    const gen = new Generator(1);
    let a = randNormal([n, n], 0, 1, 'f32', gen),
      b = randNormal([n, n], 0, 1, 'f32', gen);
    if (backend === 'gpujs') [a, b] = [K.copy(a), K.copy(b)]; // resident on the device
    const reps = backend === 'gpujs' && n <= 256 ? 4 : 1;
    const ms =
      timeMedian(
        () => {
          const outs: Tensor[] = [];
          for (let i = 0; i < reps; i++) outs.push(K.matmul(a, b));
          if (backend === 'gpujs') sync();
          dispose(outs);
        },
        { maxMs: 4000, warmup: 1, warmupMs: 0 },
      ) / reps;
    dispose([a, b]);
    setGpuKernels(null);
    return (2 * n ** 3) / (ms * 1e6);
  });
}

/** One Mega layer config of the bench: L × B × D input. */
export const LAYER = { L: 128, B: 4, D: 128, Z: 64, H: 256, N: 16 };

/** ms of one Mega layer forward + backward on `backend`. */
export function layerMs(backend: string, kernels: GpuKernels | null = null): number {
  let ms = 0;
  onBackend(backend, () => {
    if (backend === 'gpujs') setGpuKernels(kernels);
    const gen = new Generator(3);
    const layer = new MovingAverageGatedAttention({ embedDim: LAYER.D, zdim: LAYER.Z, hdim: LAYER.H, ndim: LAYER.N, gen, maxPositions: LAYER.L });
    const x = F.requiresGrad(randNormal([LAYER.L, LAYER.B, LAYER.D], 0, 1, 'f32', gen));
    const w = randNormal([LAYER.L, LAYER.B, LAYER.D], 0, 1, 'f32', gen);
    ms = timeMedian(
      () => {
        tidy(() => {
          const out = layer.forward(x).out;
          F.backward(F.sum(F.mul(out, w)));
          void x.grad?.storage; // the step ends when the input gradient is on the host
          for (const p of layer.parameters()) p.grad = null;
          x.grad = null;
        });
      },
      { maxMs: 6000, warmup: 1, warmupMs: 0, minReps: 3 },
    );
  });
  setGpuKernels(null);
  return ms;
}

const FFT_LENGTHS = (process.env.MEGA_BENCH_FFT_LENGTHS ?? '64,128,256,512,1024,2048')
  .split(',')
  .map(Number)
  .filter((n) => n > 0);
/** Rows (B·D) of the convolution bench. */
const FFT_ROWS = 32;

/** ms of one gpujs `fftConv` of `FFT_ROWS` rows with L = Lk = n (causal window), by method. */
function fftConvMs(n: number, method: 'direct' | 'fft'): number {
  return onBackend('gpujs', () => {
    const gen = new Generator(5);
    const x = K.copy(randNormal([FFT_ROWS, n], 0, 1, 'f32', gen)),
      k = K.copy(randNormal([FFT_ROWS, n], 0, 1, 'f32', gen));
    const ms = timeMedian(
      () => {
        const y = fftConvGpuBy(x, k, 0, n, method);
        sync();
        dispose(y);
      },
      { maxMs: 3000, warmup: 1, warmupMs: 0, minReps: 3 },
    );
    dispose([x, k]);
    return ms;
  });
}

/** Runs the gpu bench rows. */
export async function runGpuBench(options: BenchOptions): Promise<void> {
  // `--filter gpu` selects this whole bench (its rows compare backends)
  const opts = options.filter === 'gpu' ? { ...options, filter: undefined } : options;
  const gpu = startGpu();
  const impls = [CPU, ...(gpu ? [gpu] : [])];
  // matmul: the CPU backend, the gpu.js kernel (ratio vs CPU), the WGSL shader (ratio vs gpu.js)
  const wgsl: string | null = gpu && GpuDevice.get()?.info.mode === 'webgpu' ? `${gpu}-wgsl` : null;
  for (const n of MATMUL_SIZES) {
    const shape = [n, n, n];
    let cpu: BenchResult | undefined, gpujs: BenchResult | undefined;
    for (const impl of [...impls, ...(wgsl ? [wgsl] : [])]) {
      if (!selected(opts, caseId('matmul', impl, 'f32', shape))) continue;
      const value = impl === CPU ? matmulGflops('cpu', n) : matmulGflops('gpujs', n, impl === wgsl ? 'wgsl' : 'gpujs');
      const r: BenchResult = { bench: 'matmul', impl, dtype: 'f32', shape, value, unit: 'GFLOP/s' };
      if (impl === CPU) cpu = r;
      else if (impl === gpu) gpujs = r;
      const base = impl === wgsl ? gpujs : impl === CPU ? undefined : cpu;
      report(base ? { ...r, ratio: r.value / base.value, baseline: base.impl } : r);
    }
  }
  // the Mega layer: CPU, gpu.js kernels only (ratio vs CPU), WGSL matmul + softmax (ratio vs gpu.js)
  const shape = [LAYER.L, LAYER.B, LAYER.D];
  let cpu: BenchResult | undefined, gpujs: BenchResult | undefined;
  for (const impl of [...impls, ...(wgsl ? [wgsl] : [])]) {
    if (!selected(opts, caseId('mega-layer', impl, 'f32', shape))) continue;
    const value = impl === CPU ? layerMs('cpu') : layerMs('gpujs', impl === wgsl ? 'wgsl' : 'gpujs');
    const r: BenchResult = { bench: 'mega-layer', impl, dtype: 'f32', shape, value, unit: 'ms fwd+bwd' };
    if (impl === CPU) cpu = r;
    else if (impl === gpu) gpujs = r;
    const base = impl === wgsl ? gpujs : impl === CPU ? undefined : cpu;
    report(base ? { ...r, ratio: r.value / base.value, baseline: base.impl } : r);
  }
  // the direct sum against the FFT path of the gpujs fftConv (the crossover sets FFT_CONV_MIN_KERNEL)
  for (const n of gpu ? FFT_LENGTHS : []) {
    const shape = [FFT_ROWS, n];
    let direct: BenchResult | undefined;
    for (const method of ['direct', 'fft'] as const) {
      const impl = `${gpu}-${method}`;
      if (!selected(opts, caseId('gpu-fftconv', impl, 'f32', shape))) continue;
      const r: BenchResult = { bench: 'gpu-fftconv', impl, dtype: 'f32', shape, value: fftConvMs(n, method), unit: 'ms' };
      if (method === 'direct') direct = r;
      report(direct && method === 'fft' ? { ...r, ratio: r.value / direct.value, baseline: direct.impl } : r);
    }
  }
  if (gpu) note(`gpujs layer: Z=${LAYER.Z} H=${LAYER.H} N=${LAYER.N}; ratio < 1 means the GPU step is faster for mega-layer (ms), slower for matmul (GFLOP/s)`);
}
