/**
 * The gpujs device itself (the op tests and the golden suite on every backend are in
 * every-backend.test.ts). The gpujs backend must really run on a GPU mode: the tests check the
 * gpu.js kernel class (`kernel.kernel.constructor.name`: WebGPUKernel or HeadlessGLKernel;
 * MEGA_EXPECT_GPU_MODE=webgpu pins it), that results stay on the device, and that no CPU fallback
 * was taken where none is expected. Without a GPU mode they are skipped unless `CI` is set
 * (test/system.ts); CI runs them through Dawn on Mesa's lavapipe (.ci/run).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as F from '../../../src/autograd/index.js';
import { Linear } from '../../../src/nn/layers.js';
import { getBackend, setBackend } from '../../../src/tensor/backend.js';
import { backendInfo, fallbacks, GpuData, GpuDevice, resetFallbacks, selectBackend, tidy } from '../../../src/tensor/backends/gpujs/index.js';
import { tensor } from '../../../src/tensor/create.js';
import * as K from '../../../src/tensor/kernels.js';
import { Generator, randNormal } from '../../../src/tensor/random.js';
import { Adam } from '../../../src/train/optim.js';
import { skipWithout } from '../../system.js';
import { gpuAvailable } from './gpu-probe.js';

// ---- the mode that ran ------------------------------------------------------------------------

describe.skipIf(skipWithout({ gpu: gpuAvailable() }))('gpujs device', () => {
  beforeAll(() => {
    selectBackend('gpujs');
  }, 180_000);
  afterAll(() => setBackend('cpu'));

  it('runs gpu.js on a GPU mode, not a CPU one', () => {
    const info = GpuDevice.get()!.info;
    const expected = process.env.MEGA_EXPECT_GPU_MODE;
    console.log(`gpujs: mode ${info.mode}, ${info.kernelClass}, adapter ${info.adapter.description ?? info.adapter.device}`);
    expect(['WebGPUKernel', 'HeadlessGLKernel']).toContain(info.kernelClass);
    if (expected === 'webgpu') expect(info.kernelClass).toBe('WebGPUKernel');
    if (expected === 'headlessgl') expect(info.kernelClass).toBe('HeadlessGLKernel');
    expect(getBackend()).toBe('gpujs');
    expect((backendInfo().gpujs as { kernelClass: string }).kernelClass).toBe(info.kernelClass);
    expect(GpuDevice.get()!.stats().kernelClass).toBe(info.kernelClass);
  });

  it('keeps results on the device between kernels and reads back only on request', () => {
    const d = GpuDevice.get()!;
    const a = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const reads = d.counters.readbacks,
      launches = d.counters.launches;
    const y = K.softmax(K.matmul(K.binary(a, tensor([1, 1, 1]), 'mul'), F.transpose(a, 0, 1)), false);
    const z = K.reduce(F.transpose(y, 0, 1), 'sum', [0], false);
    expect(y.device).toBeInstanceOf(GpuData);
    expect(z.device).toBeInstanceOf(GpuData);
    expect(d.counters.readbacks).toBe(reads);
    expect(d.counters.launches - launches).toBeGreaterThanOrEqual(4); // mul, matmul, softmax (1 WGSL or 2 gpu.js kernels), reduce
    const v = z.toArray();
    expect(d.counters.readbacks).toBe(reads + 1);
    expect(v[0] + v[1]).toBeCloseTo(2, 5);
    z.toArray(); // cached: no second read-back
    expect(d.counters.readbacks).toBe(reads + 1);
  });

  it('counts and names the CPU fallbacks', () => {
    resetFallbacks();
    const x = tensor([1, 0, -1]);
    const r = K.unary(K.binary(x, tensor([0, 0, 0]), 'div'), 'isfinite');
    expect(r.toArray()).toEqual([0, 0, 0]);
    expect(Object.keys(fallbacks()).some((k) => k.startsWith('unary: isfinite'))).toBe(true);
    const f64 = K.unary(tensor([1, 2], 'f64'), 'exp');
    expect(f64.device).toBeNull();
    expect(fallbacks()['unary: f64']).toBe(1);
    resetFallbacks();
  });

  it('raises index errors like the CPU backend', () => {
    expect(() => K.indexSelect(tensor([1, 2, 3]), 0, tensor([3], 'i32'))).toThrow(/out of range/);
  });

  it('tidy releases device memory; a training step does not grow it', () => {
    const d = GpuDevice.get()!;
    const gen = new Generator(7);
    const l1 = new Linear(16, 32, { gen }),
      l2 = new Linear(32, 5, { gen });
    const params = [...l1.parameters(), ...l2.parameters()];
    const opt = new Adam(params, { lr: 1e-2 });
    const x = randNormal([12, 16], 0, 1, 'f32', gen);
    const t = tensor([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1], 'i32');
    const live: number[] = [],
      bufs: number[] = [],
      losses: number[] = [];
    for (let step = 0; step < 6; step++) {
      losses.push(
        tidy(() => {
          const { loss } = F.crossEntropy(l2.forward(F.gelu(l1.forward(x))), t);
          F.backward(loss);
          opt.step();
          opt.zeroGrad();
          return loss.item();
        }),
      );
      const s = d.stats();
      live.push(s.liveBytes);
      bufs.push(s.buffers);
      expect(s.buffers).toBe(d.liveBuffers);
    }
    expect(new Set(live.slice(1)).size).toBe(1);
    expect(new Set(bufs.slice(1)).size).toBe(1);
    expect(bufs[5]).toBe(bufs[0]);
    expect(losses[5]).toBeLessThan(losses[0]);
  });
});

describe('backend selection', () => {
  it('rejects unknown names and bad adapter indices', () => {
    expect(() => selectBackend('tpu')).toThrow(/unknown backend/);
    expect(() => selectBackend('gpujs', { gpu: 'x' })).toThrow(/adapter index/);
    setBackend('cpu');
  });
});
