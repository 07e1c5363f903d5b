/**
 * The op tests and the golden suite on every registered backend, from one file (TF.js's
 * `describeWithFlags` habit): `cpu` runs the golden cases in f64 and f32, `gpujs` in f32 (f64
 * stays a CPU feature) with FORMAT.md's f32 tolerances.
 *
 * The gpujs backend must really run on a GPU mode: the tests check the gpu.js kernel class
 * (`kernel.kernel.constructor.name`: WebGPUKernel or HeadlessGLKernel; MEGA_EXPECT_GPU_MODE=webgpu
 * pins it), that results stay on the device, and that no CPU fallback was taken where none is
 * expected. Without a GPU mode the gpujs tests fail.
 * CI runs them through Dawn on Mesa's lavapipe (.ci/run).
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as F from '../../../src/autograd/index.js';
import { Linear } from '../../../src/nn/layers.js';
import { getBackend, setBackend } from '../../../src/tensor/backend.js';
import { backendInfo, fallbacks, GpuData, GpuDevice, GpuError, resetFallbacks, selectBackend, tidy } from '../../../src/tensor/backends/gpujs/index.js';
import { tensor } from '../../../src/tensor/create.js';
import type { FloatDType } from '../../../src/tensor/dtype.js';
import * as K from '../../../src/tensor/kernels.js';
import { Generator, randNormal } from '../../../src/tensor/random.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { Adam } from '../../../src/train/optim.js';
import { runFile, type CaseReport } from '../../../src/verify/index.js';

const goldenDir = join(dirname(fileURLToPath(import.meta.url)), '../../golden');
const goldenFilter = process.env.MEGA_GOLDEN_FILTER ?? '';
const goldenFiles = readdirSync(goldenDir).filter((f) => f.endsWith('.msgpack') && f.includes(goldenFilter)).sort();

interface BackendFlags { name: 'cpu' | 'gpujs'; precisions: FloatDType[] }
const BACKENDS: BackendFlags[] = [
  { name: 'cpu', precisions: ['f64', 'f32'] },
  { name: 'gpujs', precisions: ['f32'] },
];

/** Runs `fn` in a describe block per backend, with that backend active (describeWithFlags). */
function describeEachBackend(title: string, fn: (b: BackendFlags) => void): void {
  for (const b of BACKENDS) {
    describe(`${title} [${b.name}]`, () => {
      let before = 'cpu';
      beforeAll(() => {
        before = getBackend();
        if (b.name === 'gpujs') selectBackend('gpujs');
        else setBackend(b.name);
      }, 180_000);
      afterAll(() => setBackend(before));
      fn(b);
    });
  }
}

// ---- the mode that ran ------------------------------------------------------------------------

describe('gpujs device', () => {
  beforeAll(() => { selectBackend('gpujs'); }, 180_000);
  afterAll(() => setBackend('cpu'));

  it('runs gpu.js on a GPU mode, not a CPU one', () => {
    const info = GpuDevice.get()!.info;
    const expected = process.env.MEGA_EXPECT_GPU_MODE;
    // eslint-disable-next-line no-console
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
    const a = tensor([[1, 2, 3], [4, 5, 6]]);
    const reads = d.counters.readbacks, launches = d.counters.launches;
    const y = K.softmaxLast(K.matmul(K.binary(a, tensor([1, 1, 1]), 'mul'), F.transpose(a, 0, 1)), false);
    const z = K.reduce(F.transpose(y, 0, 1), 'sum', [0], false);
    expect(y.device).toBeInstanceOf(GpuData);
    expect(z.device).toBeInstanceOf(GpuData);
    expect(d.counters.readbacks).toBe(reads);
    expect(d.counters.launches - launches).toBeGreaterThanOrEqual(5);
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
    const l1 = new Linear(16, 32, { gen }), l2 = new Linear(32, 5, { gen });
    const params = [...l1.parameters(), ...l2.parameters()];
    const opt = new Adam(params, { lr: 1e-2 });
    const x = randNormal([12, 16], 0, 1, 'f32', gen);
    const t = tensor([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1], 'i32');
    const live: number[] = [], bufs: number[] = [], losses: number[] = [];
    for (let step = 0; step < 6; step++) {
      losses.push(tidy(() => {
        const { loss } = F.crossEntropy(l2.forward(F.gelu(l1.forward(x))), t);
        F.backward(loss);
        opt.step();
        opt.zeroGrad();
        return loss.item();
      }));
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

// ---- op tests: forward values and gradients against an f64 CPU reference ----------------------

const T = (x: Tensor) => F.transpose(x, 0, 1);
const S = (x: Tensor) => F.narrow(x, -1, 1, x.shape[x.ndim - 1] - 1);
const pos = (x: Tensor) => F.add(F.square(x), 1);

type Case = [name: string, fn: (...xs: Tensor[]) => Tensor, shapes: number[][], shift?: number];
const CASES: Case[] = [
  ['add broadcast', (a, b) => F.add(a, b), [[2, 3, 4], [3, 1]]],
  ['sub transposed', (a, b) => F.sub(T(a), b), [[4, 3], [4]]],
  ['mul sliced', (a, b) => F.mul(S(a), S(b)), [[2, 5], [1, 5]]],
  ['div', (a, b) => F.div(a, pos(b)), [[3, 4], [3, 4]]],
  ['pow scalar / tensor', (a, e) => F.add(F.pow(pos(a), 1.7), F.pow(pos(a), e)), [[3, 2], [2]]],
  ['maximum, where, maskedFill', (a, b) => {
    const mask = tensor([1, 0, 1, 0], [4], 'bool');
    return F.add(F.where(F.reshape(mask, [4, 1]), F.maximum(a, T(b)), T(b)), F.maskedFill(a, F.reshape(mask, [4, 1]), -3));
  }, [[4, 3], [3, 4]]],
  ...(['neg', 'square', 'exp', 'abs', 'sigmoid', 'tanh', 'silu', 'relu', 'relu2', 'gelu', 'geluTanh', 'erf'] as const).map((n): Case =>
    [n, (a) => (F as unknown as Record<string, (x: Tensor) => Tensor>)[n](S(T(a))), [[5, 4, 3]]]),
  ['sqrt rsqrt log', (a) => F.add(F.add(F.sqrt(S(a)), F.rsqrt(S(a))), F.sum(F.log(T(a)))), [[3, 4]], 3],
  ['laplace', (a) => F.laplace(T(a)), [[3, 4]], 0.7],
  ['sum / mean over axes', (a) => F.add(F.sum(T(a), 1, true), F.reshape(F.mean(a, [0, 2]), [2, 1, 1])), [[4, 2, 4]]],
  ['max, variance', (a) => F.mul(F.max(T(a), -1, true), F.variance(S(a), [0, 1], false, true)), [[4, 3]]],
  ['softmax / logSoftmax any axis', (a) => F.add(F.softmax(T(a), 0), F.logSoftmax(F.mul(a, 3), 1)), [[4, 4]]],
  ['movement: reshape permute expand flip', (a) => F.mul(F.reshape(F.permute(a, [2, 0, 1]), [4, 6]), F.flip(F.reshape(F.expand(F.narrow(a, 1, 0, 1), [2, 3, 4]), [4, 6]), [0])), [[2, 3, 4]]],
  ['concat, split, stack, pad', (a, b) => {
    const [x, y] = F.split(a, [1, 3], 1);
    return F.add(F.concat([F.mul(F.sum(x), y), T(b)], 1), F.pad(F.stack([a, a], 0), [[-1, 0], [0, 0], [-1, 1]], 0.5));
  }, [[2, 4], [1, 2]]],
  ['many-way concat', (a) => F.concat(Array.from({ length: 9 }, (_, i) => F.mul(a, i + 1)), 0), [[2, 3]]],
  ['rank-5 broadcast (folded grid)', (a, b) => F.mul(a, b), [[2, 3, 2, 3, 4], [3, 1, 1, 4]]],
  ['matmul batch broadcast, transposed', (a, b) => F.matmul(F.transpose(a, -1, -2), b), [[2, 1, 4, 3], [3, 4, 2]]],
  ['matmul 2-d and 4-d batch', (a, b, c) => F.add(F.sum(F.matmul(a, b)), F.sum(F.matmul(c, F.transpose(c, -1, -2)))), [[3, 4], [4, 2], [2, 3, 2, 5]]],
  ['linear', (x, w, b) => F.linear(T(x), w, b), [[3, 2, 4], [5, 4], [5]]],
  ['embedding with repeats', (w) => F.embedding(w, tensor([[0, 2, 2], [1, 0, 3]], 'i32')), [[4, 3]]],
  ['gather, cross-entropy', (a) => F.add(F.sum(F.gather(a, 1, tensor([[1], [0], [2], [3]], 'i32'))),
    F.crossEntropy(a, tensor([1, 3, 0, 2], [4], 'i32'), { ignoreIndex: 0, labelSmoothing: 0.1 }).loss), [[4, 5]]],
  ['fftConv causal, window, broadcast', (x, k, y) => F.add(F.sum(F.fftConv(x, k, 0, 6)), F.sum(F.fftConv(T(y), F.narrow(k, 0, 0, 1), 1, 4))), [[2, 3, 6], [3, 6], [6, 3]]],
  ['fftConv long', (x, k) => F.fftConv(x, k, 3, 40), [[2, 50], [2, 50]]],
];

function run(fn: Case[1], inputs: Tensor[], w: Tensor): { out: number[]; grads: number[][] } {
  const out = fn(...inputs);
  F.backward(F.sum(F.mul(out, F.cast(w, out.dtype as FloatDType))));
  return { out: out.toArray(), grads: inputs.map((x) => (x.grad ? x.grad.toArray() : [])) };
}

function close(got: number[], ref: number[], what: string): void {
  expect(got.length, what).toBe(ref.length);
  const scale = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const tol = 2e-4 * scale + 1e-5;
  let worst = 0, at = -1;
  got.forEach((v, i) => {
    const e = Math.abs(v - ref[i]);
    if (!(e <= worst)) { worst = e; at = i; }
  });
  expect(worst <= tol, `${what}: error ${worst} at ${at} (got ${got[at]}, want ${ref[at]}) > tol ${tol}`).toBe(true);
}

describeEachBackend('ops (f32 against an f64 reference)', (b) => {
  for (const [name, fn, shapes, shift = 0] of CASES) {
    it(name, () => {
      const gen = new Generator(99);
      const base = shapes.map((s) => randNormal(s, shift, 1, 'f32', gen));
      const outShape = (() => { const prev = getBackend(); setBackend('cpu'); try { return F.noGrad(() => fn(...base.map((t) => F.cast(t, 'f64')))).shape; } finally { setBackend(prev); } })();
      const w = randNormal(outShape, 0, 1, 'f32', new Generator(5));
      const prev = getBackend();
      setBackend('cpu');
      const ref = run(fn, base.map((t) => F.requiresGrad(F.cast(t, 'f64'))), w);
      setBackend(prev);
      resetFallbacks();
      const inputs = base.map((t) => F.requiresGrad(new Tensor(t.storage.slice(), t.shape, t.strides, 0)));
      const got = tidy(() => run(fn, inputs, w));
      close(got.out, ref.out, `${name} [${b.name}] output`);
      got.grads.forEach((g, i) => close(g, ref.grads[i], `${name} [${b.name}] grad ${i}`));
      if (b.name === 'gpujs') expect(fallbacks(), `${name}: CPU fallbacks on gpujs`).toEqual({});
    });
  }
});

// ---- the golden suite -------------------------------------------------------------------------

function explain(r: CaseReport): string {
  if (r.error) return `${r.name} [${r.precision}]: ${r.error}`;
  const bad = r.tensors.filter((t) => !t.pass);
  return `${r.name} [${r.precision}] failing tensors:\n` + bad.map((t) => `  ${t.name}: err ${t.maxErr.toExponential(3)} > tol ${t.tol.toExponential(3)} (scale ${t.scale.toExponential(3)})${t.note ? ' ' + t.note : ''}`).join('\n');
}

describeEachBackend('golden cases (PyTorch release)', (b) => {
  it('has all 49 public cases', () => {
    if (!goldenFilter) expect(goldenFiles.length).toBe(49);
  });
  for (const f of goldenFiles) {
    for (const prec of b.precisions) {
      it(`${f.replace('.msgpack', '')} ${prec}`, () => {
        resetFallbacks();
        const launches = GpuDevice.get()?.counters.launches ?? 0;
        const r = tidy(() => runFile(join(goldenDir, f), prec));
        expect(r.pass, explain(r)).toBe(true);
        expect(r.tensors.length).toBeGreaterThan(0);
        if (b.name === 'gpujs') {
          // everything ran on the GPU: no f64 work, no unexpected fallbacks
          const fb = Object.keys(fallbacks()).filter((k) => !/isfinite/.test(k));
          expect(fb, `CPU fallbacks in ${f}`).toEqual([]);
          expect(GpuDevice.get()!.counters.launches - launches, 'gpu.js kernel launches').toBeGreaterThan(0);
        }
      }, 120_000);
    }
  }
});

describe('backend selection', () => {
  it('rejects unknown names and bad adapter indices', () => {
    expect(() => selectBackend('tpu')).toThrow(/unknown backend/);
    expect(() => selectBackend('gpujs', { gpu: 'x' })).toThrow(/adapter index/);
    expect(GpuError).toBeDefined();
    setBackend('cpu');
  });
});
