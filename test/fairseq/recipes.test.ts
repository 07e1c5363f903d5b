/**
 * Every training command of the release's READMEs (examples/mega/README.{lra,lm,mt,sc}.md, shell
 * variables filled in: test/fairseq/recipes.txt) parses with mega train's option table and resolves
 * to a model configuration: no flag is rejected.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveModelArgs } from '../../src/train/arch.js';
import { parseFlags, resolveTrainArgs, TRAIN_OPTIONS } from '../../src/train/args.js';
import { WORLDS_DIR } from './helpers.js';

/** Splits a shell command line (single and double quotes, no escapes). */
function shellWords(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

const lines = readFileSync(join(WORLDS_DIR, 'recipes.txt'), 'utf8').split('\n');
const blocks = lines.flatMap((l, i) => (/^# README\.\w+\.md$/.test(l) ? [`${l.slice(2)}\n${lines[i + 1]!}`] : []));

describe('the release\'s README training commands parse and resolve', () => {
  expect(blocks.length).toBe(11);
  for (const b of blocks) {
    const [file, cmd] = b.split('\n');
    const argv = shellWords(cmd!);
    const arch = argv[argv.indexOf('-a') + 1]!;
    it(`${file} ${arch}`, () => {
      const { values, positionals, notes } = parseFlags(argv, TRAIN_OPTIONS, 'train');
      expect(positionals).toEqual(['data-bin']);
      expect(values.arch).toBe(arch);
      expect(notes.length).toBeGreaterThan(0);
      const a = resolveTrainArgs({ ...values, data: positionals[0] });
      expect(a.arch).toBe(arch);
      const m = resolveModelArgs(a.arch, a.task, values, ['listops', 'text', 'retrieval', 'image', 'speech'].includes(a.task) ? 10 : undefined);
      expect(Object.keys(m).length).toBeGreaterThan(5);
    });
  }
});
