/**
 * The release's training command lines, pasted with `fairseq-train` replaced by `mega train`: every
 * flag is accepted (infrastructure flags print one note line each), the model built has fairseq's
 * parameter count, the run completes; unknown options of every subcommand are one mega-style line
 * and exit 2.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FAIRSEQ_TRAIN_OPTIONS } from '../../src/train/fairseq-options.js';
import { expected, lastJson, mega, WORLDS } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'mega-fairseq-train-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function withSaveDir(argv: string[], dir: string): string[] {
  const i = argv.indexOf('--save-dir');
  return [...argv.slice(0, i + 1), dir, ...argv.slice(i + 2)];
}

describe('mega train DATA with the release\'s recipe flags', () => {
  for (const w of WORLDS) {
    it(w, () => {
      const e = expected(w);
      const argv = e.train.argv as string[];
      const save = join(tmp, w);
      const r = mega(w, ['train', ...withSaveDir(argv, save), '--max-update', '1', '--json']);
      expect(r.rc, r.stderr).toBe(0);
      const infra = argv.filter((a) => a.startsWith('--') && FAIRSEQ_TRAIN_OPTIONS[a.slice(2).replace(/-/g, '_')]?.infra !== undefined);
      expect(infra.length).toBeGreaterThan(0);
      const notes = r.stderr.split('\n').filter((l) => /^mega train: --/.test(l));
      expect(notes.map((l) => /^mega train: (--[a-z0-9-]+)/.exec(l)![1])).toEqual(infra);
      const j = lastJson(r.stdout);
      expect(j.status).toBe('completed');
      expect(j.parameters).toBe(e.checkpoints['checkpoints/checkpoint_last.pt'].num_params);
      expect(existsSync(join(save, 'checkpoint_last.safetensors'))).toBe(true);
    });
  }

  it('a criterion that is not the task\'s loss is an error naming both', () => {
    const argv = (expected('lra-listops').train.argv as string[]).map((a) => (a === 'lra_cross_entropy' ? 'cross_entropy' : a));
    const save = join(tmp, 'bad-criterion');
    const r = mega('lra-listops', ['train', ...withSaveDir(argv, save)]);
    expect(r.rc).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines[lines.length - 1]).toBe('mega train: --criterion cross_entropy is not the loss of --task listops (expected lra_cross_entropy)');
    expect(lines.length).toBe(1 + argv.filter((a) => a.startsWith('--') && FAIRSEQ_TRAIN_OPTIONS[a.slice(2).replace(/-/g, '_')]?.infra !== undefined).length);
    expect(existsSync(save)).toBe(false);
  });
});

describe('unknown options: one mega-style line naming it, exit 2, for every subcommand', () => {
  const cases: [string, string[]][] = [
    ['train', ['data-bin', '--no-such-flag', '3']],
    ['eval', ['checkpoints/checkpoint_last.pt', 'data-bin', '--no-such-flag']],
    ['generate', ['--no-such-flag']],
    ['verify', ['--no-such-flag']],
    ['info', ['--no-such-flag']],
    ['import-fairseq', ['--no-such-flag']],
    ['export', ['--no-such-flag']],
  ];
  for (const [cmd, argv] of cases) {
    it(cmd, () => {
      const r = mega('lra-listops', [cmd, ...argv]);
      expect(r.rc).toBe(2);
      expect(r.stdout).toEqual([]);
      expect(r.stderr).toBe(`mega ${cmd}: unknown option --no-such-flag (see mega ${cmd} --help)\n`);
    });
  }
  it('a short option that does not exist', () => {
    const r = mega('lra-listops', ['train', 'data-bin', '-q', 'x']);
    expect(r.rc).toBe(2);
    expect(r.stderr).toBe('mega train: unknown option -q (see mega train --help)\n');
  });
});
