/**
 * The translation world's fairseq-generate command line through `mega generate`: the same
 * hypotheses in the same order, scores equal to fairseq's to f32 tolerance, the same BLEU line.
 */
import { describe, expect, it } from 'vitest';
import { bleuAdd, bleuString, type BleuStats } from '../../src/train/fairseq-generate.js';
import { expected, f32Close, lastJson, mega } from './helpers.js';

describe('mega generate with fairseq-generate\'s flags (translation world, beam 2)', () => {
  const e = expected('translation').generate;
  const argv = e.argv as string[];

  it('prints fairseq\'s S/T/H/D/P lines and BLEU line', () => {
    const r = mega('translation', ['generate', ...argv]);
    expect(r.rc).toBe(0);
    expect(r.stderr.trim().split('\n')).toEqual(['mega generate: --cpu: mega-ts computes on the CPU unless --backend gpujs is given']);
    const want = [...(e.lines as string[]), e.bleu_line as string];
    expect(r.stdout.length).toBe(want.length);
    want.forEach((w, i) => {
      const g = r.stdout[i]!;
      const [wt, ...wr] = w.split('\t');
      const [gt, ...gr] = g.split('\t');
      expect(gt).toBe(wt);
      if (wt!.startsWith('H-') || wt!.startsWith('D-')) {
        expect(gr[1]).toBe(wr[1]);
        expect(f32Close(Number(gr[0]), Number(wr[0])), `${g} vs ${w}`).toBe(true);
      } else if (wt!.startsWith('P-')) {
        const a = gr[0]!.split(' ').map(Number), b = wr[0]!.split(' ').map(Number);
        expect(a.length).toBe(b.length);
        // printed with 4 decimals: half a unit of the last digit on top of the f32 rule
        a.forEach((x, k) => expect(Math.abs(x - b[k]!)).toBeLessThanOrEqual(2e-4 * Math.abs(b[k]!) + 1e-6 + 5e-5));
      } else {
        expect(g).toBe(w);
      }
    });
  });

  it('--json: every beam hypothesis (tokens, natural-log scores) equals fairseq\'s', () => {
    const j = lastJson(mega('translation', ['generate', ...argv, '--nbest', '2', '--json']).stdout);
    const want = e.hypotheses as Record<string, { tokens: number[]; score: number; positional_scores: number[] }[]>;
    expect(Object.keys(j.hypotheses).sort()).toEqual(Object.keys(want).sort());
    for (const [id, hs] of Object.entries(want)) {
      const got = j.hypotheses[id] as { tokens: number[]; score: number; positionalScores: number[] }[];
      expect(got.length).toBe(hs.length);
      hs.forEach((h, k) => {
        expect(got[k]!.tokens).toEqual(h.tokens);
        expect(f32Close(got[k]!.score, h.score)).toBe(true);
        h.positional_scores.forEach((p, t) => expect(f32Close(got[k]!.positionalScores[t]!, p), `${id}/${k}/${t}`).toBe(true));
      });
    }
  });
});

describe('fairseq\'s corpus BLEU on token ids (libbleu rules)', () => {
  const fresh = (): BleuStats => ({ reflen: 0, predlen: 0, match: [0, 0, 0, 0], count: [0, 0, 0, 0] });
  it('clipped n-gram precisions, brevity penalty, no smoothing', () => {
    const s = fresh();
    bleuAdd(s, [4, 5, 6, 7, 2], [4, 5, 6, 8, 2]);
    expect(bleuString(s)).toBe('BLEU4 = 0.00, 75.0/66.7/50.0/0.0 (BP=1.000, ratio=1.000, syslen=4, reflen=4)');
    const t = fresh();
    bleuAdd(t, [1, 1, 4, 5, 6, 7, 9, 2], [4, 5, 6, 7, 2, 1]); // leading pads of the reference, trailing </s>/pad of the hypothesis trimmed
    expect(bleuString(t)).toBe(
      `BLEU4 = ${(100 * Math.exp(1 - 5 / 4)).toFixed(2)}, 100.0/100.0/100.0/100.0 (BP=${Math.exp(1 - 5 / 4).toFixed(3)}, ratio=0.800, syslen=4, reflen=5)`);
  });
  it('a reference <unk> never matches; repeated n-grams are clipped', () => {
    const s = fresh();
    bleuAdd(s, [3, 5, 2], [3, 5, 2]);
    bleuAdd(s, [8, 9, 2], [8, 8, 8, 2]);
    expect(s.match).toEqual([2, 0, 0, 0]);
    expect(s.count).toEqual([5, 3, 1, 0]);
  });
  it('--remove-bpe with data that has no BPE symbols gives the same lines and BLEU', () => {
    const e = expected('translation').generate;
    const r = mega('translation', ['generate', ...(e.argv as string[]), '--remove-bpe', '@@ ']);
    expect(r.rc).toBe(0);
    expect(r.stdout[r.stdout.length - 1]).toBe(e.bleu_line);
    expect(r.stdout.filter((l) => /^[ST]-/.test(l))).toEqual((e.lines as string[]).filter((l) => /^[ST]-/.test(l)));
  });
});
