/**
 * Checkpoints are not trusted blindly (issue 15): tensor data carries checksums that are checked
 * on load (a file from before checksums loads with a one-line note), and an invalid RNG state is
 * refused on resume.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { CheckpointError } from '../../src/io/errors.js';
import { decodeSafetensors, encodeSafetensors } from '../../src/io/safetensors.js';
import { backward, sum } from '../../src/autograd/index.js';
import { Linear } from '../../src/nn/layers.js';
import { manualSeed, randNormal } from '../../src/tensor/random.js';
import { checkpointPaths, loadCheckpoint, loadTrainerState, saveCheckpoint, type ModelSpec } from '../../src/train/checkpoint.js';
import { Adam } from '../../src/train/optim.js';

const root = mkdtempSync(join(tmpdir(), 'mega-ckpt-trust-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const spec: ModelSpec = { task: 'listops', arch: 'toy', modelArgs: { arch: 'toy', d: 3 }, taskInfo: { dictionary_size: 20, pad: 1 } };
const state = (rng: number[]) => ({
  numUpdates: 1,
  data: { epoch: 1, position: 3 },
  rng,
  schedule: { name: 'linear_decay', nextLr: 0.5 },
  best: null,
  wallTime: 1.5,
  userArgs: {},
  lastTrainLoss: 2,
});

function save(name: string, rng = [1, 2, 3, 4]): { dir: string; model: Linear; opt: Adam; weights: string; stateFile: string } {
  manualSeed(5);
  const model = new Linear(3, 2);
  const opt = new Adam(model.parameters(), { lr: 0.01 });
  backward(sum(model.forward(randNormal([4, 3]))));
  opt.step(); // so that the state file holds Adam moments
  const dir = join(root, name);
  const weights = saveCheckpoint(dir, 'checkpoint_last', model, opt, spec, {}, state(rng));
  return { dir, model, opt, weights, stateFile: checkpointPaths(dir, 'checkpoint_last').state };
}

/** Flips one bit of the last byte of the file (the data of its last tensor). */
function corrupt(path: string): void {
  const b = readFileSync(path);
  b[b.length - 1] ^= 0x10;
  writeFileSync(path, b);
}

describe('checkpoint checksums', () => {
  it('a flipped bit in the weights is a CheckpointError naming the file and the tensor', () => {
    const { weights } = save('flip');
    expect(loadCheckpoint(weights).update).toBe(1);
    corrupt(weights);
    expect(() => loadCheckpoint(weights)).toThrow(CheckpointError);
    expect(() => loadCheckpoint(weights)).toThrow(`${weights}: tensor "weight": data checksum mismatch (the file is corrupt)`);
  });

  it('a flipped bit in the trainer state is refused on resume', () => {
    const { weights, stateFile, model } = save('flipstate');
    const ck = loadCheckpoint(weights);
    corrupt(stateFile);
    expect(() => loadTrainerState(stateFile, ck, new Adam(model.parameters(), { lr: 0.01 }))).toThrow(/data checksum mismatch/);
  });

  it('a file written before checksums loads, with one note', () => {
    const { weights } = save('old');
    const { tensors, metadata } = decodeSafetensors(readFileSync(weights), weights);
    const { tensor_sha256: _, ...older } = metadata;
    expect(_).toBeTypeOf('string');
    writeFileSync(weights, encodeSafetensors(tensors, older));
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(loadCheckpoint(weights).update).toBe(1);
      const lines = spy.mock.calls.map((c) => String(c[0])).filter((s) => s.includes(weights));
      expect(lines).toEqual([`note: ${weights}: no tensor checksums (written by an older mega-ts); loaded without verifying the data\n`]);
    } finally {
      spy.mockRestore();
    }
  });
});

describe('RNG state on resume', () => {
  for (const [what, rng] of [
    ['two words', [1, 2]],
    ['the all-zero xoshiro state', [0, 0, 0, 0]],
    ['a word over 32 bits', [1, 2, 3, 2 ** 32]],
    ['a fraction', [1, 2, 3, 0.5]],
  ] as const) {
    it(`refuses ${what}`, () => {
      const { weights, stateFile, model } = save(`rng-${what.replace(/\W/g, '')}`, [...rng]);
      const ck = loadCheckpoint(weights);
      expect(() => loadTrainerState(stateFile, ck, new Adam(model.parameters(), { lr: 0.01 }))).toThrow(CheckpointError);
      expect(() => loadTrainerState(stateFile, ck, new Adam(model.parameters(), { lr: 0.01 }))).toThrow(
        new RegExp(`^${stateFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: RNG state .* \\(expected 4 unsigned 32-bit integers, not all zero\\)$`),
      );
    });
  }
  it('accepts a valid state', () => {
    const { weights, stateFile, model } = save('rng-ok', [0, 0, 0, 7]);
    expect(loadTrainerState(stateFile, loadCheckpoint(weights), new Adam(model.parameters(), { lr: 0.01 })).rng).toEqual([0, 0, 0, 7]);
  });
});
