/**
 * The release's numbers from mega-ts's CLI (built `dist/`), run in each copied world folder:
 * `mega eval CKPT DATA --split valid --json` equals expected.json `verify` (fairseq's validation of
 * each stored checkpoint; f32 rule of test/golden/FORMAT.md, accuracy exactly), and the LM world's
 * eval_lm / eval_mega_lm command lines print fairseq's lines and exact numbers.
 */
import { describe, expect, it } from 'vitest';
import { expected, f32Close, lastJson, mega, WORLDS } from './helpers.js';

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
