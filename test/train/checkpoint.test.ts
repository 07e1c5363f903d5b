import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backward, sum, mul } from '../../src/autograd/index.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { Linear } from '../../src/nn/layers.js';
import { manualSeed, randNormal } from '../../src/tensor/random.js';
import { checkpointPaths, loadCheckpoint, loadTrainerState, saveCheckpoint, type ModelSpec } from '../../src/train/checkpoint.js';
import { Adam } from '../../src/train/optim.js';

const root = mkdtempSync(join(tmpdir(), 'mega-ckpt-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const spec: ModelSpec = { task: 'listops', arch: 'toy', modelArgs: { arch: 'toy', d: 3 }, taskInfo: { dictionary_size: 20, pad: 1 } };

function stepped(seed: number): { model: Linear; opt: Adam } {
  manualSeed(seed);
  const model = new Linear(3, 2);
  const opt = new Adam(model.parameters(), { lr: 0.01, betas: [0.9, 0.98], weightDecay: 0.1 });
  for (let i = 0; i < 2; i++) {
    opt.zeroGrad();
    backward(sum(mul(model.forward(randNormal([4, 3])), model.forward(randNormal([4, 3])))));
    opt.step();
  }
  return { model, opt };
}

const state = (n: number) => ({
  numUpdates: n,
  data: { epoch: 1, position: 3 },
  rng: [1, 2, 3, 4],
  schedule: { name: 'linear_decay', nextLr: 0.5 },
  best: { metric: 'accuracy', value: 0.5, update: n },
  wallTime: 1.5,
  userArgs: { lr: 0.01 },
  lastTrainLoss: 2,
});

describe('checkpoints', () => {
  it('round-trips weights (readable safetensors) and the trainer state, with no temp files left', () => {
    const dir = join(root, 'a');
    const { model, opt } = stepped(3);
    const path = saveCheckpoint(dir, 'checkpoint_last', model, opt, spec, { task: 'listops', lr: 0.01 }, state(2));
    expect(readdirSync(dir).sort()).toEqual(['checkpoint_last.safetensors', 'checkpoint_last.state.safetensors']);
    // a plain safetensors reader sees the PyTorch names and the metadata
    const raw = readSafetensors(path);
    expect(Object.keys(raw.tensors).sort()).toEqual(['bias', 'weight']);
    expect(raw.metadata.format).toBe('mega-ts/1');
    expect(JSON.parse(raw.metadata.model_args!)).toEqual(spec.modelArgs);

    const ck = loadCheckpoint(path);
    expect(ck.update).toBe(2);
    expect(ck.spec).toEqual(spec);
    expect(Array.from(ck.tensors.weight!.toTypedArray())).toEqual(Array.from(model.weight.toTypedArray()));

    const fresh = new Linear(3, 2);
    const opt2 = new Adam(fresh.parameters(), { lr: 0.01, betas: [0.9, 0.98], weightDecay: 0.1 });
    const st = loadTrainerState(checkpointPaths(dir, 'checkpoint_last').state, ck, opt2);
    expect(st.data).toEqual({ epoch: 1, position: 3 });
    expect(st.rng).toEqual([1, 2, 3, 4]);
    expect(st.adamSteps).toEqual({ 0: 2, 1: 2 });
    const a = opt.stateDict().state[0]!,
      b = opt2.stateDict().state[0]!;
    expect(b.step).toBe(2);
    expect(Array.from(b.exp_avg_sq.toTypedArray())).toEqual(Array.from(a.exp_avg_sq.toTypedArray()));
  });

  it('rejects a corrupt weights file, a foreign safetensors file and a state of another save', () => {
    const dir = join(root, 'b');
    const { model, opt } = stepped(4);
    const p = saveCheckpoint(dir, 'checkpoint_last', model, opt, spec, {}, state(1));
    const bytes = readFileSync(p);
    writeFileSync(join(dir, 'trunc.safetensors'), bytes.subarray(0, bytes.length - 7));
    expect(() => loadCheckpoint(join(dir, 'trunc.safetensors'))).toThrow(/truncated|cover/);
    writeFileSync(join(dir, 'garbage.safetensors'), 'not a checkpoint at all');
    expect(() => loadCheckpoint(join(dir, 'garbage.safetensors'))).toThrowError(expect.objectContaining({ name: 'CheckpointError' }));
    expect(() => loadCheckpoint(join(dir, 'missing.safetensors'))).toThrow(/no such checkpoint/);
    // an older state file next to newer weights: ids differ
    const oldState = readFileSync(checkpointPaths(dir, 'checkpoint_last').state);
    saveCheckpoint(dir, 'checkpoint_last', model, opt, spec, {}, state(1));
    writeFileSync(checkpointPaths(dir, 'checkpoint_last').state, oldState);
    const ck = loadCheckpoint(p);
    expect(() => loadTrainerState(checkpointPaths(dir, 'checkpoint_last').state, ck, new Adam(model.parameters(), { lr: 1 }))).toThrow(/different save/);
    expect(existsSync(join(dir, 'checkpoint_last.safetensors'))).toBe(true);
  });
});
