/**
 * `mega train` with the release's phase-2 command line (fairseq-train replaced by mega train) and
 * the phase-1 checkpoint at SAVE/checkpoint_last.pt: the run continues as fairseq's did, one
 * metrics record per update equal to fairseq's phase-2 losses (f32 rule).
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { expected, f32Close, lastJson, mega, worldPath, type World } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'mega-fairseq-resume-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('mega train DATA (phase-2 command) resumes SAVE/checkpoint_last.pt', () => {
  for (const w of ['lra-listops', 'lm'] as World[]) {
    it(w, () => {
      const e = expected(w);
      const phase2 = e.train.phases.find((p: { phase: number }) => p.phase === 2);
      const argv = phase2.argv as string[];
      const save = join(tmp, w);
      mkdirSync(save);
      copyFileSync(worldPath(w, 'checkpoints', 'phase1', 'checkpoint_last.pt'), join(save, 'checkpoint_last.pt'));
      const i = argv.indexOf('--save-dir');
      const r = mega(w, ['train', ...argv.slice(0, i + 1), save, ...argv.slice(i + 2), '--json']);
      expect(r.rc, r.stderr).toBe(0);
      const want = (e.train.updates as { phase: number; update: number; exact: { loss: number } }[]).filter((u) => u.phase === 2);
      const recs = readFileSync(join(save, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((x) => x.type === 'train');
      expect(recs.map((x) => x.update)).toEqual(want.map((u) => u.update));
      recs.forEach((x, k) => expect(f32Close(x.loss, want[k]!.exact.loss), `update ${x.update}: ${x.loss} vs ${want[k]!.exact.loss}`).toBe(true));
      expect(lastJson(r.stdout).updates).toBe(want[want.length - 1]!.update);
    });
  }
});
