/**
 * The save-folder entry point of training continuation: the phase-1 checkpoint placed at
 * SAVE/checkpoint_last.pt (or given with --restore-file), one metrics record per update in
 * SAVE/metrics.jsonl equal to fairseq's phase-2 losses; fairseq's reset options.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckpointError } from '../../src/io/errors.js';
import { ConfigError } from '../../src/train/errors.js';
import { readMetricsLog } from '../../src/train/metrics-log.js';
import { continueFairseq, runFairseqContinuation } from '../../src/train/fairseq-continue.js';
import { fairseqRestorePath } from '../../src/train/fairseq-resume.js';

const W = join(__dirname, 'lra-retrieval');
const PHASE1 = join(W, 'checkpoints/phase1/checkpoint_last.pt');
const tmp = mkdtempSync(join(tmpdir(), 'fairseq-continue-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const expected = JSON.parse(readFileSync(join(W, 'expected.json'), 'utf8')) as {
  train: { updates: { update: number; phase: number; exact: { loss: number } }[] };
};
const phase2 = expected.train.updates.filter((u) => u.phase === 2);

describe('runFairseqContinuation', () => {
  it('resumes SAVE/checkpoint_last.pt and writes one train record per update to SAVE/metrics.jsonl', () => {
    const save = join(tmp, 'save');
    mkdirSync(save);
    copyFileSync(PHASE1, join(save, 'checkpoint_last.pt'));
    const run = runFairseqContinuation({ data: join(W, 'data-bin'), save_dir: save, max_epoch: 2 });
    expect(run.checkpoint).toBe(join(save, 'checkpoint_last.pt'));
    const all = readMetricsLog(join(save, 'metrics.jsonl'));
    // one train record per update, and fairseq's validation at the end of epoch 2
    expect(all.map((r) => r.type)).toEqual([...phase2.map(() => 'train'), 'valid']);
    const recs = all.filter((r) => r.type === 'train');
    expect(recs.map((r) => r.update)).toEqual(phase2.map((u) => u.update));
    recs.forEach((r, i) => expect(Math.abs((r.loss as number) - phase2[i].exact.loss)).toBeLessThanOrEqual(1e-6 + 2e-4 * 1.22));
  }, 60_000);

  it('honours --restore-file, and a missing checkpoint is a CheckpointError naming it', () => {
    const save = join(tmp, 'empty');
    expect(fairseqRestorePath({ save_dir: save })).toBeNull();
    expect(fairseqRestorePath({ save_dir: save, restore_file: PHASE1 })).toBe(PHASE1);
    const run = runFairseqContinuation({ data: join(W, 'data-bin'), save_dir: save, restore_file: PHASE1, max_epoch: 2, max_update: 5 });
    expect(run.records.map((r) => r.update)).toEqual([5]);
    expect(Math.abs(run.records[0].loss - phase2[0].exact.loss)).toBeLessThanOrEqual(1e-6 + 2e-4 * 1.22);
    // stopped mid-epoch: the iterator stands after the 2 batches of that update
    expect(run.iterator).toEqual({ epoch: 2, iterationsInEpoch: 2 });
    expect(() => runFairseqContinuation({ data: join(W, 'data-bin'), save_dir: join(tmp, 'none') })).toThrow(CheckpointError);
    expect(() => runFairseqContinuation({ data: join(W, 'data-bin'), save_dir: join(tmp, 'none') })).toThrow(/none\/checkpoint_last\.pt does not exist/);
    // bad data: one DataError naming the file, nothing written (no folder, no metrics)
    const fresh = join(tmp, 'fresh');
    expect(() => runFairseqContinuation({ data: join(tmp, 'no-data'), save_dir: fresh, restore_file: PHASE1, max_epoch: 2 }))
      .toThrow(/no-data\/src-bin\/dict\.txt: no such file/);
    expect(existsSync(fresh)).toBe(false);
  }, 60_000);

  it('an unsupported criterion is a ConfigError naming it', () => {
    const bad = () => continueFairseq({ data: join(W, 'data-bin'), checkpoint: PHASE1, args: { criterion: 'adaptive_loss' }, limit: 1 });
    expect(bad).toThrow(ConfigError);
    expect(bad).toThrow(/--criterion adaptive_loss/);
  });

  it('--reset-optimizer restarts the update count and schedule; --reset-dataloader restarts at epoch 1', () => {
    const r = continueFairseq({ data: join(W, 'data-bin'), checkpoint: PHASE1, args: { reset_optimizer: true, reset_dataloader: true }, limit: 1 });
    expect(r.records[0].update).toBe(1);
    expect(r.records[0].epoch).toBe(1);
    expect(r.records[0].lr).toBe(1e-7); // --warmup-init-lr
    // epoch 1's first update uses fairseq's first batches of epoch 1
    expect(r.records[0].batches).toEqual([[22, 5, 3, 8], [14, 31, 17, 19]]);
  }, 60_000);
});
