/**
 * Training continuation of every fixture world: the phase-1 `checkpoint_last.pt` resumed with the
 * phase-2 command's stopping options, run with fairseq's batches, criterion, clipping, Adam and LR
 * schedule; every phase-2 update's loss is compared with the loss fairseq logged (exact values in
 * expected.json, base 2) under the f32 rule of test/golden/FORMAT.md
 * (max|ours − fairseq| <= 1e-6 + 2e-4 · max|fairseq|), its batches with fairseq's recorded ids, its
 * learning rate with `lr_used`, and its gradient norm with the same f32 rule.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { continueFairseq } from '../../src/train/fairseq-continue.js';
import { readFairseqResume } from '../../src/train/fairseq-resume.js';

const ROOT = __dirname;

interface Update {
  update: number;
  phase: number;
  epoch: number;
  lr_used: number;
  exact: { loss: number; gnorm: number };
  batches: { id: number[] }[];
}
interface Expected {
  train: { phases: { phase: number; argv: string[] }[]; updates: Update[] };
}

/** The phase-2 command's stopping options (the only args that differ from the stored ones). */
function phase2Overrides(argv: readonly string[]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [flag, key] of [['--max-epoch', 'max_epoch'], ['--max-update', 'max_update']] as const) {
    const i = argv.indexOf(flag);
    if (i >= 0) o[key] = Number(argv[i + 1]);
  }
  return o;
}

const F32 = { rtol: 2e-4, atol: 1e-6 };
function maxErr(ours: number[], ref: number[]): { err: number; bound: number } {
  const err = Math.max(...ours.map((v, i) => Math.abs(v - ref[i])));
  return { err, bound: F32.atol + F32.rtol * Math.max(...ref.map(Math.abs)) };
}

function runWorld(world: string): void {
  const exp = JSON.parse(readFileSync(join(ROOT, world, 'expected.json'), 'utf8')) as Expected;
  const phase2 = exp.train.phases.find((p) => p.phase === 2)!;
  const want = exp.train.updates.filter((u) => u.phase === 2);
  const resume = readFairseqResume(join(ROOT, world, 'checkpoints/phase1/checkpoint_last.pt'));
  expect(resume.numUpdates).toBe(want[0].update - 1);
  const res = continueFairseq({ data: join(ROOT, world, 'data-bin'), checkpoint: resume, args: phase2Overrides(phase2.argv) });
  expect(res.records.map((r) => r.update)).toEqual(want.map((u) => u.update));
  res.records.forEach((r, i) => {
    const u = want[i];
    expect(r.epoch, `update ${u.update}`).toBe(u.epoch);
    const sorted = (xs: number[][]) => xs.map((b) => [...b].sort((p, q) => p - q));
    expect(sorted(r.batches), `update ${u.update} batches`).toEqual(sorted(u.batches.map((b) => b.id)));
    expect(r.lr, `update ${u.update} lr`).toBeCloseTo(u.lr_used, 12);
  });
  const loss = maxErr(res.records.map((r) => r.loss), want.map((u) => u.exact.loss));
  const gnorm = maxErr(res.records.map((r) => r.gnorm), want.map((u) => u.exact.gnorm));
  console.log(`${world}: ${want.length} phase-2 updates, max |loss - fairseq| = ${loss.err.toExponential(3)} (bound ${loss.bound.toExponential(2)}), max |gnorm - fairseq| = ${gnorm.err.toExponential(3)}`);
  expect(loss.err).toBeLessThanOrEqual(loss.bound);
  expect(gnorm.err).toBeLessThanOrEqual(gnorm.bound);
}

describe('fairseq training continuation (phase 2 of each fixture world)', () => {
  it('lra-listops', () => runWorld('lra-listops'), 120_000);
  it('lra-retrieval', () => runWorld('lra-retrieval'), 120_000);
  it('lra-image', () => runWorld('lra-image'), 120_000);
  it('lm', () => runWorld('lm'), 120_000);
  it('translation', () => runWorld('translation'), 120_000);
});
