/**
 * `mega train` with each world's phase-2 command line (`fairseq-train` replaced by `mega train`)
 * on a save folder holding the phase-1 `checkpoint_last.pt`: the run continues where fairseq
 * stopped and SAVE/metrics.jsonl holds one `{"type":"train","update","loss",...}` record per update,
 * equal to fairseq's phase-2 losses (f32 rule of test/golden/FORMAT.md). Also `--restore-file`, and
 * a missing restore file as one line with exit 2.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readMetricsLog } from '../../src/train/metrics-log.js';
import { expected, f32Close, lastJson, mega, worldPath, WORLDS, type World } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'mega-fairseq-continue-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Phase {
  phase: number;
  argv: string[];
}
interface Update {
  update: number;
  phase: number;
  exact: { loss: number };
}

function phase2(w: World): { argv: string[]; updates: Update[] } {
  const e = expected(w);
  const argv = (e.train.phases as Phase[]).find((p) => p.phase === 2)!.argv;
  return { argv, updates: (e.train.updates as Update[]).filter((u) => u.phase === 2) };
}

function validUpdates(w: World): number[] {
  return (expected(w).train.valid as { phase: number; num_updates: number }[]).filter((v) => v.phase === 2).map((v) => v.num_updates);
}

function withSaveDir(argv: readonly string[], dir: string): string[] {
  const i = argv.indexOf('--save-dir');
  return [...argv.slice(0, i + 1), dir, ...argv.slice(i + 2)];
}

describe('mega train continues a fairseq run from SAVE/checkpoint_last.pt', () => {
  for (const w of WORLDS) {
    it(w, () => {
      const { argv, updates } = phase2(w);
      const save = join(tmp, w);
      mkdirSync(save);
      copyFileSync(worldPath(w, 'checkpoints/phase1/checkpoint_last.pt'), join(save, 'checkpoint_last.pt'));
      const r = mega(w, ['train', ...withSaveDir(argv, save), '--json']);
      expect(r.rc, r.stderr).toBe(0);
      const j = lastJson(r.stdout);
      expect(j.status).toBe('done');
      expect(j.updates).toBe(updates[updates.length - 1].update);
      const all = readMetricsLog(join(save, 'metrics.jsonl'));
      const recs = all.filter((x) => x.type === 'train');
      expect(recs.map((x) => x.update)).toEqual(updates.map((u) => u.update));
      // fairseq's validations of phase 2 (after the updates it logged them)
      expect(all.filter((x) => x.type === 'valid').map((x) => x.update)).toEqual(validUpdates(w));
      recs.forEach((x, i) => expect(f32Close(x.loss as number, updates[i].exact.loss), `update ${updates[i].update}: ` +
        `${String(x.loss)} vs ${updates[i].exact.loss}`).toBe(true));
    }, 120_000);
  }

  it('--restore-file names the checkpoint; a missing one is one line, exit 2, nothing written', () => {
    const { argv, updates } = phase2('lra-listops');
    const save = join(tmp, 'restore');
    const r = mega('lra-listops', ['train', ...withSaveDir(argv, save), '--restore-file', 'checkpoints/phase1/checkpoint_last.pt', '--json']);
    expect(r.rc, r.stderr).toBe(0);
    const recs = readMetricsLog(join(save, 'metrics.jsonl')).filter((x) => x.type === 'train');
    expect(recs.map((x) => x.update)).toEqual(updates.map((u) => u.update));
    const save2 = join(tmp, 'restore-missing');
    const bad = mega('lra-listops', ['train', ...withSaveDir(argv, save2), '--restore-file', 'checkpoints/nope.pt']);
    expect(bad.rc).toBe(2);
    const lines = bad.stderr.trim().split('\n');
    expect(lines[lines.length - 1]).toMatch(/^mega train: --restore-file checkpoints\/nope\.pt: no such fairseq checkpoint/);
    expect(existsSync(save2)).toBe(false);
  }, 120_000);
});
