/**
 * The release's numbers from mega-ts's CLI (built `dist/`), run in each copied world folder:
 * `mega eval CKPT DATA --split valid --json` equals expected.json `verify` (fairseq's validation of
 * each stored checkpoint; f32 rule of test/golden/FORMAT.md, accuracy exactly), and the LM world's
 * eval_lm / eval_mega_lm command lines print fairseq's lines and exact numbers.
 */
import { describe, expect, it } from 'vitest';
import { readLraText, readTranslation } from '../../src/data/fairseq/index.js';
import { loadFairseqModel, validBatches } from '../../src/train/fairseq-eval.js';
import { expected, f32Close, lastJson, mega, worldPath, WORLDS } from './helpers.js';

const CKPTS = ['checkpoints/checkpoint_last.pt', 'checkpoints/phase1/checkpoint_last.pt'];

describe('mega eval CKPT data-bin --split valid --json equals fairseq validate (expected.json verify)', () => {
  for (const w of WORLDS) {
    for (const c of CKPTS) {
      it(`${w} ${c}`, () => {
        const ref = expected(w).verify[c].stored_args.exact as Record<string, number>;
        const r = mega(w, ['eval', c, 'data-bin', '--split', 'valid', '--json']);
        expect(r.stderr).toBe('');
        expect(r.rc).toBe(0);
        const got = lastJson(r.stdout);
        expect(Object.keys(ref).length).toBeGreaterThan(0);
        for (const [k, v] of Object.entries(ref)) {
          expect(typeof got[k], k).toBe('number');
          if (k === 'accuracy') expect(got[k]).toBe(v);
          else expect(f32Close(got[k], v), `${k}: ${got[k]} vs ${v}`).toBe(true);
        }
      });
    }
  }
});

describe('LM world: fairseq-eval-lm and eval_mega_lm.py command lines through mega eval', () => {
  for (const key of ['eval_lm', 'eval_mega_lm'] as const) {
    it(key, () => {
      const e = expected('lm')[key];
      const argv = e.argv as string[];
      const text = mega('lm', ['eval', ...argv]);
      expect(text.rc).toBe(0);
      // the infra flags (--cpu, --softmax-batch) each print one note line
      const notes = text.stderr.split('\n').filter((l: string) => l !== '');
      expect(notes.length).toBe(argv.filter((a) => a === '--cpu' || a === '--softmax-batch').length);
      expect(text.stdout).toContain(`Loss (base 2): ${e.printed.loss_base2.toFixed(4)}, Perplexity: ${e.printed.perplexity.toFixed(2)}`);
      const j = lastJson(mega('lm', ['eval', ...argv, '--json']).stdout);
      expect(j.ntokens).toBe(e.exact.tokens);
      expect(f32Close(j.loss, e.exact.loss_base2), `${j.loss} vs ${e.exact.loss_base2}`).toBe(true);
      expect(f32Close(j.ppl, e.exact.perplexity)).toBe(true);
    });
  }
});

describe('mega eval takes fairseq\'s validation batches (example ids as expected.json records them)', () => {
  for (const w of ['lra-listops', 'lra-retrieval', 'lra-image', 'translation'] as const) {
    it(w, () => {
      const e = expected(w);
      const fm = loadFairseqModel(worldPath(w, 'checkpoints', 'checkpoint_last.pt'));
      const data = worldPath(w, 'data-bin');
      let sizes: number[], tgt: number[] | undefined;
      if (w === 'translation') {
        const r = readTranslation(data, 'valid', 'en', 'de');
        sizes = r.examples.map((x) => x.tokens.length);
        tgt = r.examples.map((x) => x.target!.length);
      } else if (w === 'lra-image') {
        sizes = new Array<number>(16).fill(64);
      } else {
        sizes = readLraText(data, 'valid', { maxPositions: fm.args.max_positions as number }).examples.map((x) => x.tokens.length);
      }
      const task = w === 'translation' ? 'translation' : w === 'lra-image' ? 'lra-image' : 'lra-text';
      const got = validBatches(fm.args, task, sizes, tgt);
      const want = (e.train.valid.at(-1).batches as { sample: { id: number[] } }[]).map((b) => b.sample.id);
      // fairseq re-sorts translation rows by source length inside a batch: compare as sets
      expect(got.map((b) => [...b].sort((x, y) => x - y))).toEqual(want.map((b) => [...b].sort((x, y) => x - y)));
    });
  }
});
