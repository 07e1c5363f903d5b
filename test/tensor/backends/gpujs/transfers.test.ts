/**
 * Training steps of a small Mega LM and a small LRA model on gpujs (the golden cases' models and
 * parameters): the parameters live on the device, Adam and gradient clipping run there, so a step
 * moves exactly the batch in and the loss scalar out. Losses and parameters equal the CPU
 * backend's (f32) to FORMAT.md's f32 rule for optimizer steps.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipWithout } from '../../../system.js';
import { gpuAvailable } from '../gpu-probe.js';
import { backward } from '../../../../src/autograd/index.js';
import type { GoldenCase } from '../../../../src/io/golden.js';
import { readGoldenFile } from '../../../../src/io/golden.js';
import type { Module } from '../../../../src/nn/module.js';
import { setBackend } from '../../../../src/tensor/backend.js';
import { fallbacks, GpuDevice, moveToDevice, resetFallbacks, selectBackend, tidy } from '../../../../src/tensor/backends/gpujs/index.js';
import { fromStorage, type Tensor } from '../../../../src/tensor/tensor.js';
import { Adam, clipGradNorm, clipGradNormDevice } from '../../../../src/train/optim.js';
import { buildCase, getAdapter, toInputs } from '../../../../src/verify/index.js';
import { skipWithout } from '../../../system.js';
import { gpuAvailable } from '../gpu-probe.js';

// without a GPU mode (and without CI) skipped, named in the run's summary line (test/system.ts)
const skip = skipWithout({ gpu: gpuAvailable() });
const goldenDir = join(dirname(fileURLToPath(import.meta.url)), '../../../golden');
const STEPS = 4,
  LR = 1e-3,
  CLIP = 0.5;

/** The batch of step s: the case's batch with every regular token / class shifted by s (pads kept). */
function batchOf(c: GoldenCase, s: number, classes: number): Record<string, Tensor> {
  const raw = toInputs(c.inputs, 'f32');
  const task = c.task!;
  const first = 4,
    V = task.dictionary_size;
  const shift = (t: Tensor, isTarget: boolean) => {
    const v = Int32Array.from(t.toTypedArray() as ArrayLike<number>, (x) =>
      isTarget && classes ? (x + s) % classes : x < first ? x : first + ((x - first + s) % (V - first)),
    );
    return fromStorage(v, [...t.shape]);
  };
  return { src_tokens: shift(raw.src_tokens, false), src_lengths: raw.src_lengths, target: shift(raw.target, true) };
}

interface Transfers {
  uploads: number;
  uploadBytes: number;
  readbacks: number;
  readbackBytes: number;
}
interface Run {
  losses: number[];
  params: Map<string, Float32Array>;
  transfers: Transfers[];
}

function train(c: GoldenCase, backend: 'cpu' | 'gpujs', classes: number): Run {
  if (backend === 'gpujs') selectBackend('gpujs');
  else setBackend('cpu');
  const adapter = getAdapter(c.module)!;
  const m: Module = buildCase(c, 'f32');
  const params = [...new Set(m.parameters())];
  if (backend === 'gpujs') moveToDevice(params);
  const opt = new Adam(params, { lr: LR, betas: [0.9, 0.98], eps: 1e-8, weightDecay: 0.01 });
  const d = GpuDevice.get();
  const losses: number[] = [],
    transfers: Run['transfers'] = [];
  for (let s = 0; s < STEPS; s++) {
    const batch = batchOf(c, s, classes);
    const before = d ? { ...d.counters } : null;
    losses.push(
      tidy(() => {
        const loss = adapter.forward(m, batch, c).loss!;
        backward(loss);
        if (backend === 'gpujs') clipGradNormDevice(params, CLIP);
        else clipGradNorm(params, CLIP);
        opt.step();
        opt.zeroGrad();
        return loss.item();
      }),
    );
    if (d && before) {
      transfers.push({
        uploads: d.counters.uploads - before.uploads,
        uploadBytes: d.counters.uploadBytes - before.uploadBytes,
        readbacks: d.counters.readbacks - before.readbacks,
        readbackBytes: d.counters.readbackBytes - before.readbackBytes,
      });
    }
  }
  const out = new Map(m.namedParameters().map(([k, p]) => [k, Float32Array.from(p.toTypedArray() as ArrayLike<number>)]));
  setBackend('cpu');
  return { losses, params: out, transfers };
}

describe.skipIf(skip)('gpujs training steps: transfers and equality with the CPU backend', () => {
  beforeAll(() => {
    selectBackend('gpujs');
  }, 180_000);
  afterAll(() => setBackend('cpu'));

  // chunk: the models pad the tokens to a multiple of their chunk size
  for (const [file, classes, chunk] of [
    ['lm_train', 0, 'decoder_chunk_size'],
    ['lra_listops', 10, 'chunk_size'],
  ] as const) {
    it(`${file}: the batch in, the loss out, nothing else; equal to the CPU backend`, () => {
      const c = readGoldenFile(join(goldenDir, `${file}.msgpack`));
      resetFallbacks();
      const gpu = train(c, 'gpujs', classes);
      expect(fallbacks()).toEqual({});
      const cpu = train(c, 'cpu', classes);
      expect(cpu.losses).not.toEqual(cpu.losses.map(() => cpu.losses[0])); // the steps change something

      // Per step: in, the token ids (chunk-padded), the targets and the embedding gradient's
      // index lists (row pointers V+1 and positions, built on the host from the token ids);
      // out, the loss. The first step also uploads the constants (masks, scalars, position
      // lists: cached by content afterwards) and Adam's zero moments.
      const [B, L] = c.inputs.src_tokens.shape;
      const C = Number(c.config[chunk]);
      const padded = B * Math.ceil(L / C) * C;
      const batchValues = padded + c.inputs.target.shape.reduce((a, b) => a * b, 1) + (c.task!.dictionary_size + 1 + padded);
      expect(gpu.transfers[0].readbacks).toBe(1);
      for (const t of gpu.transfers.slice(1)) expect(t).toEqual({ uploads: 3, uploadBytes: 4 * batchValues, readbacks: 1, readbackBytes: 4 });

      // losses and parameters after the Adam steps to the plain f32 rule (FORMAT.md also allows
      // + 2·Σ lr for optimizer steps, for sign flips of near-zero gradients; not needed here, and
      // leaving it out keeps the check sensitive: each step moves weights by up to lr = 1e-3)
      gpu.losses.forEach((l, i) => expect(Math.abs(l - cpu.losses[i])).toBeLessThanOrEqual(1e-6 + 2e-4 * Math.abs(cpu.losses[i])));
      expect(gpu.losses.every(Number.isFinite)).toBe(true);
      for (const [k, r] of cpu.params) {
        const g = gpu.params.get(k)!;
        let err = 0,
          scale = 0;
        for (let i = 0; i < r.length; i++) {
          err = Math.max(err, Math.abs(g[i] - r[i]));
          scale = Math.max(scale, Math.abs(r[i]));
        }
        expect(err, k).toBeLessThanOrEqual(1e-6 + 2e-4 * scale);
      }
    }, 300_000);
  }
});
