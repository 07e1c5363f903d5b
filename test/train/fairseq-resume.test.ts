/**
 * Reading a fairseq training checkpoint for continuation: facts checked against the fixture
 * worlds' expected.json (`checkpoints[...]`: num_updates, train_iterator, best, optimizer state).
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckpointError } from '../../src/io/errors.js';
import { readFairseqResume, resumeAdam } from '../../src/train/fairseq-resume.js';

const W = join(__dirname, '..', 'fairseq');
const tmp = mkdtempSync(join(tmpdir(), 'fairseq-resume-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('readFairseqResume', () => {
  it('lra-listops phase 1: 4 updates, next epoch 2 from its start, best accuracy 15, Adam state of 48 tensors', () => {
    const r = readFairseqResume(join(W, 'lra-listops/checkpoints/phase1/checkpoint_last.pt'));
    expect(r.numUpdates).toBe(4);
    expect(r.iterator).toEqual({ epoch: 2, iterationsInEpoch: 0, shuffle: true });
    expect(r.best).toBe(15);
    expect(r.params.length).toBe(48);
    expect(r.paramNames[0]).toBe('encoder.encoder.embed_tokens.embed.weight');
    expect(r.params.reduce((n, p) => n + p.size, 0)).toBe(12734);
    expect(Object.values(r.optimizerState.state).every((s) => s.step === 4)).toBe(true);
    expect(r.schedulerLr).toBeCloseTo(0.0009729729729729729, 15);
    const opt = resumeAdam(r, r.args);
    expect(opt.betas).toEqual([0.9, 0.98]);
    expect(opt.weightDecay).toBe(0.01);
    expect(opt.getState(r.params[0])!.step).toBe(4);
  });

  it('lm phase 1: mid-epoch (epoch 1, 3 batches done)', () => {
    const r = readFairseqResume(join(W, 'lm/checkpoints/phase1/checkpoint_last.pt'));
    expect(r.numUpdates).toBe(3);
    expect(r.iterator).toEqual({ epoch: 1, iterationsInEpoch: 3, shuffle: true });
    expect(r.params.reduce((n, p) => n + p.size, 0)).toBe(8144);
  });

  it('translation phase 1: shared embeddings counted once in the optimizer order', () => {
    const r = readFairseqResume(join(W, 'translation/checkpoints/phase1/checkpoint_last.pt'));
    expect(r.numUpdates).toBe(16);
    expect(r.iterator.epoch).toBe(3);
    expect(new Set(r.params).size).toBe(r.params.length);
    expect(r.params.reduce((n, p) => n + p.size, 0)).toBe(19898);
  });

  it('a file that is not a checkpoint is a CheckpointError naming it', () => {
    const p = join(tmp, 'bad.pt');
    writeFileSync(p, 'not a zip');
    expect(() => readFairseqResume(p)).toThrow(CheckpointError);
    expect(() => readFairseqResume(join(tmp, 'missing.pt'))).toThrow(/missing\.pt/);
    copyFileSync(join(W, 'lm/data-bin/dict.txt'), join(tmp, 'dict.pt'));
    expect(() => readFairseqResume(join(tmp, 'dict.pt'))).toThrow(/dict\.pt/);
  });
});
