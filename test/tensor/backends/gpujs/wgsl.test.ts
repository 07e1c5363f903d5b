/**
 * The WGSL kernels (matmul with workgroup-shared tiles, softmax with workgroup reductions; beside
 * the gpu.js kernels on the same Dawn device) against the f64 CPU kernels, and the golden suite on
 * the kernels that are not the default (the every-backend golden run uses the default), so both
 * paths pass every golden case.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setBackend } from '../../../../src/tensor/backend.js';
import { matmulCpu } from '../../../../src/tensor/backends/cpu/matmul.js';
import { softmaxCpu } from '../../../../src/tensor/backends/cpu/reduce.js';
import { fallbacks, GpuData, GpuDevice, resetFallbacks, selectBackend, tidy } from '../../../../src/tensor/backends/gpujs/index.js';
import { gpuKernels, setGpuKernels } from '../../../../src/tensor/backends/gpujs/wgsl.js';
import * as K from '../../../../src/tensor/kernels.js';
import { Generator, randNormal } from '../../../../src/tensor/random.js';
import { Tensor } from '../../../../src/tensor/tensor.js';
import { runFile } from '../../../../src/verify/index.js';
import { explain, goldenFiles, goldenPath } from '../../../golden/helpers.js';
import { skipWithout } from '../../../system.js';
import { gpuAvailable } from '../gpu-probe.js';

const skip = skipWithout({ gpu: gpuAvailable() });

function f32(t: Tensor): Tensor {
  return new Tensor(Float32Array.from(t.storage as ArrayLike<number>), t.shape, t.strides, t.offset);
}

describe.skipIf(skip)('gpujs WGSL matmul', () => {
  beforeAll(() => {
    selectBackend('gpujs');
  }, 180_000);
  afterAll(() => {
    setGpuKernels(null);
    setBackend('cpu');
  });

  const gen = new Generator(9);
  const T = (t: Tensor) =>
    new Tensor(
      t.data,
      [...t.shape.slice(0, -2), t.shape[t.ndim - 1], t.shape[t.ndim - 2]],
      [...t.strides.slice(0, -2), t.strides[t.ndim - 1], t.strides[t.ndim - 2]],
      t.offset,
    );
  // [a, b] builders: edges that are not multiples of the 64 × 64 block or the 16-deep K tile,
  // transposed operands, broadcast and strided batch axes
  const cases: [string, () => [Tensor, Tensor]][] = [
    ['70 × 33 · 33 × 129', () => [randNormal([70, 33], 0, 1, 'f64', gen), randNormal([33, 129], 0, 1, 'f64', gen)]],
    ['transposed A and B', () => [T(randNormal([40, 65], 0, 1, 'f64', gen)), T(randNormal([17, 40], 0, 1, 'f64', gen))]],
    ['batch 3, B broadcast', () => [randNormal([3, 20, 50], 0, 1, 'f64', gen), randNormal([50, 7], 0, 1, 'f64', gen)]],
    ['1 × 1 · 1 × 1', () => [randNormal([1, 1], 0, 1, 'f64', gen), randNormal([1, 1], 0, 1, 'f64', gen)]],
  ];
  for (const [name, make] of cases) {
    it(`equals the f64 CPU matmul: ${name}`, () => {
      setGpuKernels('wgsl');
      expect(gpuKernels()).toBe('wgsl');
      const [a, b] = make();
      const ref = matmulCpu(a, b).toTypedArray();
      const d = GpuDevice.get()!;
      resetFallbacks();
      const w0 = d.counters.wgsl;
      const y = K.matmul(f32(a), f32(b));
      expect(y.device).toBeInstanceOf(GpuData);
      expect(d.counters.wgsl - w0).toBe(1);
      expect(fallbacks()).toEqual({});
      const got = y.toTypedArray();
      let err = 0,
        scale = 0;
      for (let i = 0; i < ref.length; i++) {
        err = Math.max(err, Math.abs(got[i] - ref[i]));
        scale = Math.max(scale, Math.abs(ref[i]));
      }
      expect(err).toBeLessThanOrEqual(1e-6 + 2e-4 * scale);
      // a gpu.js kernel consumes the WGSL output directly (same device buffer, no copy)
      expect(K.unary(y, 'neg').toTypedArray()[0]).toBe(-got[0]);
    });
  }

  // softmax rows: shorter and longer than the 256-thread workgroup, a transposed view (strided
  // rows and elements), log-softmax
  const smCases: [string, () => Tensor, boolean][] = [
    ['3 × 5 × 17', () => randNormal([3, 5, 17], 0, 3, 'f64', gen), false],
    ['4 × 700, log', () => randNormal([4, 700], 0, 3, 'f64', gen), true],
    ['transposed 300 × 9', () => T(randNormal([300, 9], 0, 3, 'f64', gen)), false],
  ];
  for (const [name, make, log] of smCases) {
    it(`softmax equals the f64 CPU softmax: ${name}`, () => {
      setGpuKernels('wgsl');
      const x = make();
      const ref = softmaxCpu(x, log).toTypedArray();
      const d = GpuDevice.get()!;
      const w0 = d.counters.wgsl;
      const y = K.softmax(f32(x), log);
      expect(d.counters.wgsl - w0).toBe(1);
      const got = y.toTypedArray();
      let err = 0,
        scale = 0;
      for (let i = 0; i < ref.length; i++) {
        err = Math.max(err, Math.abs(got[i] - ref[i]));
        scale = Math.max(scale, Math.abs(ref[i]));
      }
      expect(err).toBeLessThanOrEqual(1e-6 + 2e-4 * scale);
    });
  }

  it('runs the gpu.js kernel when selected', () => {
    setGpuKernels('gpujs');
    const d = GpuDevice.get()!;
    const w0 = d.counters.wgsl,
      l0 = d.counters.launches;
    K.matmul(f32(randNormal([8, 8], 0, 1, 'f64', gen)), f32(randNormal([8, 8], 0, 1, 'f64', gen)));
    expect(d.counters.wgsl).toBe(w0);
    expect(d.counters.launches).toBe(l0 + 1);
  });

  const other = (): 'wgsl' | 'gpujs' => {
    setGpuKernels(null);
    return gpuKernels() === 'wgsl' ? 'gpujs' : 'wgsl';
  };
  describe('golden cases on the non-default matmul path', () => {
    for (const f of goldenFiles()) {
      it(
        f.replace('.msgpack', ''),
        () => {
          setGpuKernels(other());
          resetFallbacks();
          const r = tidy(() => runFile(goldenPath(f), 'f32'));
          expect(r.pass, explain(r)).toBe(true);
          expect(Object.keys(fallbacks()).filter((k) => !/isfinite/.test(k))).toEqual([]);
        },
        120_000,
      );
    }
  });
});
