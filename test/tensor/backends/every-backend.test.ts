/**
 * The op tests and the golden suite on every registered backend, from one file (TF.js's
 * `describeWithFlags` habit): each op's forward values and gradients in f32 against an f64 CPU
 * reference, on every backend; the golden cases (FORMAT.md's tolerances) on every backend but the
 * CPU one, whose golden run is test/golden/golden.test.ts (plus forced SIMD in
 * cpu/golden-simd.test.ts). Backends other than `cpu` run in f32 only (f64 stays a CPU feature)
 * and must take no CPU fallback. Without `CI`, a backend whose device cannot start (gpujs without
 * a GPU mode) is skipped with the run's summary line (test/system.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as F from '../../../src/autograd/index.js';
import { gateOut, gateQK, siluMul } from '../../../src/autograd/ops/fused.js';
import { getBackend, registeredBackends, setBackend } from '../../../src/tensor/backend.js';
import { fallbacks, GpuDevice, resetFallbacks, selectBackend, tidy } from '../../../src/tensor/backends/gpujs/index.js';
import { tensor } from '../../../src/tensor/create.js';
import type { FloatDType } from '../../../src/tensor/dtype.js';
import { Generator, randNormal } from '../../../src/tensor/random.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { expectClose } from '../../../src/verify/compare.js';
import { runFile } from '../../../src/verify/index.js';
import { explain, GOLDEN_FILTER, goldenFiles, goldenPath } from '../../golden/helpers.js';
import { skipWithout } from '../../system.js';
import { gpuAvailable } from './gpu-probe.js';

/** Float dtypes a backend computes itself (others fall back to the CPU). */
const PRECISIONS: Readonly<Record<string, FloatDType[]>> = { cpu: ['f64', 'f32'] };

interface BackendFlags {
  name: string;
  precisions: FloatDType[];
  skip: boolean;
}
const BACKENDS: BackendFlags[] = registeredBackends().map((name) => ({
  name,
  precisions: PRECISIONS[name] ?? ['f32'],
  skip: name === 'gpujs' && skipWithout({ gpu: gpuAvailable() }),
}));

/** Runs `fn` in a describe block per registered backend, with that backend active (describeWithFlags). */
function describeEachBackend(title: string, fn: (b: BackendFlags) => void, which: (b: BackendFlags) => boolean = () => true): void {
  for (const b of BACKENDS.filter(which)) {
    describe.skipIf(b.skip)(`${title} [${b.name}]`, () => {
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

it('every backend is exercised: cpu and gpujs are registered', () => {
  expect(registeredBackends()).toEqual(expect.arrayContaining(['cpu', 'gpujs']));
});

// ---- op tests: forward values and gradients against an f64 CPU reference ----------------------

const T = (x: Tensor) => F.transpose(x, 0, 1);
const S = (x: Tensor) => F.narrow(x, -1, 1, x.shape[x.ndim - 1] - 1);
const pos = (x: Tensor) => F.add(F.square(x), 1);

type Case = [name: string, fn: (...xs: Tensor[]) => Tensor, shapes: number[][], shift?: number];
const CASES: Case[] = [
  [
    'add broadcast',
    (a, b) => F.add(a, b),
    [
      [2, 3, 4],
      [3, 1],
    ],
  ],
  ['sub transposed', (a, b) => F.sub(T(a), b), [[4, 3], [4]]],
  [
    'mul sliced',
    (a, b) => F.mul(S(a), S(b)),
    [
      [2, 5],
      [1, 5],
    ],
  ],
  [
    'div',
    (a, b) => F.div(a, pos(b)),
    [
      [3, 4],
      [3, 4],
    ],
  ],
  ['pow scalar / tensor', (a, e) => F.add(F.pow(pos(a), 1.7), F.pow(pos(a), e)), [[3, 2], [2]]],
  [
    'maximum, where, maskedFill',
    (a, b) => {
      const mask = tensor([1, 0, 1, 0], [4], 'bool');
      return F.add(F.where(F.reshape(mask, [4, 1]), F.maximum(a, T(b)), T(b)), F.maskedFill(a, F.reshape(mask, [4, 1]), -3));
    },
    [
      [4, 3],
      [3, 4],
    ],
  ],
  ...(['neg', 'square', 'exp', 'abs', 'sigmoid', 'tanh', 'silu', 'relu', 'relu2', 'gelu', 'geluTanh', 'erf'] as const).map((n): Case => [
    n,
    (a) => (F as unknown as Record<string, (x: Tensor) => Tensor>)[n](S(T(a))),
    [[5, 4, 3]],
  ]),
  ['sqrt rsqrt log', (a) => F.add(F.add(F.sqrt(S(a)), F.rsqrt(S(a))), F.sum(F.log(T(a)))), [[3, 4]], 3],
  ['laplace', (a) => F.laplace(T(a)), [[3, 4]], 0.7],
  [
    'Mega gates: gateQK, siluMul, gateOut',
    (base, gamma, beta, x) => {
      const [u, z, r, hx] = F.split(base, [3, 2, 4, 3], -1);
      const [q, k] = gateQK(z, gamma, beta);
      const y = F.expand(F.sum(F.mul(siluMul(F.expand(F.sum(F.mul(q, k), -1, true), [4, 2, 4]), r), r), -1, true), [4, 2, 3]);
      return gateOut(T(x), u, hx, y, null, 'silu');
    },
    [
      [4, 2, 12],
      [2, 2],
      [2, 2],
      [2, 4, 3],
    ],
  ],
  ['sum / mean over axes', (a) => F.add(F.sum(T(a), 1, true), F.reshape(F.mean(a, [0, 2]), [2, 1, 1])), [[4, 2, 4]]],
  ['max, variance', (a) => F.mul(F.max(T(a), -1, true), F.variance(S(a), [0, 1], false, true)), [[4, 3]]],
  ['softmax / logSoftmax any axis', (a) => F.add(F.softmax(T(a), 0), F.logSoftmax(F.mul(a, 3), 1)), [[4, 4]]],
  [
    'movement: reshape permute expand flip',
    (a) => F.mul(F.reshape(F.permute(a, [2, 0, 1]), [4, 6]), F.flip(F.reshape(F.expand(F.narrow(a, 1, 0, 1), [2, 3, 4]), [4, 6]), [0])),
    [[2, 3, 4]],
  ],
  [
    'concat, split, stack, pad',
    (a, b) => {
      const [x, y] = F.split(a, [1, 3], 1);
      return F.add(
        F.concat([F.mul(F.sum(x), y), T(b)], 1),
        F.pad(
          F.stack([a, a], 0),
          [
            [-1, 0],
            [0, 0],
            [-1, 1],
          ],
          0.5,
        ),
      );
    },
    [
      [2, 4],
      [1, 2],
    ],
  ],
  [
    'many-way concat',
    (a) =>
      F.concat(
        Array.from({ length: 9 }, (_, i) => F.mul(a, i + 1)),
        0,
      ),
    [[2, 3]],
  ],
  [
    'rank-5 broadcast (folded grid)',
    (a, b) => F.mul(a, b),
    [
      [2, 3, 2, 3, 4],
      [3, 1, 1, 4],
    ],
  ],
  [
    'matmul batch broadcast, transposed',
    (a, b) => F.matmul(F.transpose(a, -1, -2), b),
    [
      [2, 1, 4, 3],
      [3, 4, 2],
    ],
  ],
  [
    'matmul 2-d and 4-d batch',
    (a, b, c) => F.add(F.sum(F.matmul(a, b)), F.sum(F.matmul(c, F.transpose(c, -1, -2)))),
    [
      [3, 4],
      [4, 2],
      [2, 3, 2, 5],
    ],
  ],
  ['linear', (x, w, b) => F.linear(T(x), w, b), [[3, 2, 4], [5, 4], [5]]],
  [
    'embedding with repeats',
    (w) =>
      F.embedding(
        w,
        tensor(
          [
            [0, 2, 2],
            [1, 0, 3],
          ],
          'i32',
        ),
      ),
    [[4, 3]],
  ],
  [
    'gather, cross-entropy',
    (a) =>
      F.add(
        F.sum(F.gather(a, 1, tensor([[1], [0], [2], [3]], 'i32'))),
        F.crossEntropy(a, tensor([1, 3, 0, 2], [4], 'i32'), { ignoreIndex: 0, labelSmoothing: 0.1 }).loss,
      ),
    [[4, 5]],
  ],
  [
    'fftConv causal, window, broadcast',
    (x, k, y) => F.add(F.sum(F.fftConv(x, k, 0, 6)), F.sum(F.fftConv(T(y), F.narrow(k, 0, 0, 1), 1, 4))),
    [
      [2, 3, 6],
      [3, 6],
      [6, 3],
    ],
  ],
  [
    'fftConv long',
    (x, k) => F.fftConv(x, k, 3, 40),
    [
      [2, 50],
      [2, 50],
    ],
  ],
];

function run(fn: Case[1], inputs: Tensor[], w: Tensor): { out: number[]; grads: number[][] } {
  const out = fn(...inputs);
  F.backward(F.sum(F.mul(out, F.cast(w, out.dtype as FloatDType))));
  return { out: out.toArray(), grads: inputs.map((x) => (x.grad ? x.grad.toArray() : [])) };
}

describeEachBackend('ops (f32 against an f64 reference)', (b) => {
  for (const [name, fn, shapes, shift = 0] of CASES) {
    it(name, () => {
      const gen = new Generator(99);
      const base = shapes.map((s) => randNormal(s, shift, 1, 'f32', gen));
      const outShape = (() => {
        const prev = getBackend();
        setBackend('cpu');
        try {
          return F.noGrad(() => fn(...base.map((t) => F.cast(t, 'f64')))).shape;
        } finally {
          setBackend(prev);
        }
      })();
      const w = randNormal(outShape, 0, 1, 'f32', new Generator(5));
      const prev = getBackend();
      setBackend('cpu');
      const ref = run(
        fn,
        base.map((t) => F.requiresGrad(F.cast(t, 'f64'))),
        w,
      );
      setBackend(prev);
      resetFallbacks();
      const inputs = base.map((t) => F.requiresGrad(new Tensor(t.storage.slice(), t.shape, t.strides, 0)));
      const got = tidy(() => run(fn, inputs, w));
      // f32 against the f64 reference: |got − want| ≤ 1e-5 + 2e-4 · max|want|
      expectClose(got.out, ref.out, { rtol: 2e-4, atol: 1e-5, what: `${name} [${b.name}] output` });
      got.grads.forEach((g, i) => expectClose(g, ref.grads[i], { rtol: 2e-4, atol: 1e-5, what: `${name} [${b.name}] grad ${i}` }));
      if (b.name !== 'cpu') expect(fallbacks(), `${name}: CPU fallbacks on ${b.name}`).toEqual({});
    });
  }
});

describeEachBackend(
  'golden cases (PyTorch release)',
  (b) => {
    const files = goldenFiles();
    it('has all 49 public cases', () => {
      if (!GOLDEN_FILTER) expect(files.length).toBe(49);
    });
    for (const f of files) {
      for (const prec of b.precisions) {
        it(`${f.replace('.msgpack', '')} ${prec}`, () => {
          resetFallbacks();
          const launches = GpuDevice.get()?.counters.launches ?? 0;
          const r = tidy(() => runFile(goldenPath(f), prec));
          expect(r.pass, explain(r)).toBe(true);
          expect(r.tensors.length).toBeGreaterThan(0);
          // everything ran on the backend: no f64 work, no unexpected fallbacks
          const fb = Object.keys(fallbacks()).filter((k) => !/isfinite/.test(k));
          expect(fb, `CPU fallbacks in ${f}`).toEqual([]);
          if (b.name === 'gpujs') expect(GpuDevice.get()!.counters.launches - launches, 'gpu.js kernel launches').toBeGreaterThan(0);
        }, 120_000);
      }
    }
  },
  (b) => b.name !== 'cpu',
);
