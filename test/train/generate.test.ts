import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { noGrad } from '../../src/autograd/engine.js';
import { generateCommand } from '../../src/cli/generate.js';
import { main } from '../../src/cli/main.js';
import { writeFileAtomic } from '../../src/io/atomic.js';
import type { TaskInfo } from '../../src/mega/models/common.js';
import { MegaLanguageModel } from '../../src/mega/models/lm.js';
import { MegaModel, type EncoderOut } from '../../src/mega/models/nmt.js';
import { archArgs, buildModel } from '../../src/mega/models/presets.js';
import type { Module } from '../../src/nn/module.js';
import { Generator } from '../../src/tensor/random.js';
import { fromStorage, type Tensor } from '../../src/tensor/tensor.js';
import { encodeWeights } from '../../src/train/checkpoint.js';
import { loadModelFile } from '../../src/train/fairseq-import.js';
import { beamSearch, chooseToken, logSoftmaxRow, promptCalls, sampleLm, topCandidates, type Seq2SeqDecoder } from '../../src/train/generate.js';
import { expectClose, maxAbs } from '../../src/verify/compare.js';

const CK = fileURLToPath(new URL('../golden/checkpoints/', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'mega-generate-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const EOS = 2,
  PAD = 1;
const TASK: TaskInfo = { dictionary_size: 14, pad: 1, bos: 0, eos: 2, unk: 3 };

/** Adds N(0, std²) to every parameter (the fixtures' "perturbed initialisation"), so logits are far from uniform. */
function perturb(m: Module, seed: number, std = 0.3): void {
  const g = new Generator(seed);
  for (const p of m.parameters()) for (let i = 0; i < p.size; i++) p.storage[p.offset + i] += std * g.normal();
}

function lmArgs(chunk: number, rel: 'simple' | 'rotary'): Record<string, unknown> {
  return archArgs('mega_lm', {
    decoder_layers: 2,
    decoder_embed_dim: 16,
    decoder_hidden_dim: 24,
    decoder_ffn_embed_dim: 24,
    decoder_z_dim: 8,
    decoder_n_dim: 4,
    decoder_chunk_size: chunk,
    rel_pos_bias: rel,
    truncation_length: null,
    max_target_positions: 64,
    activation_dropout: 0,
    dropout: 0,
    normalize_before: true,
    no_affine_final_norm: true,
    share_decoder_input_output_embed: true,
  });
}

function tinyLm(chunk: number, rel: 'simple' | 'rotary', seed: number): MegaLanguageModel {
  const m = buildModel('mega_lm', lmArgs(chunk, rel), TASK, { dtype: 'f64', gen: new Generator(seed) }) as MegaLanguageModel;
  perturb(m, seed + 100);
  return m.eval();
}

function nmtArgs(): Record<string, unknown> {
  return archArgs('mega', {
    encoder_layers: 2,
    decoder_layers: 2,
    encoder_embed_dim: 16,
    encoder_hidden_dim: 24,
    encoder_ffn_embed_dim: 24,
    encoder_z_dim: 8,
    encoder_n_dim: 4,
    dropout: 0,
    attention_dropout: 0,
    hidden_dropout: 0,
    activation_dropout: 0,
    share_all_embeddings: true,
    truncation_length: null,
    max_source_positions: 64,
    max_target_positions: 64,
  });
}

function tinyMt(seed: number): MegaModel {
  const m = buildModel('mega', nmtArgs(), TASK, { dtype: 'f64', gen: new Generator(seed) }) as MegaModel;
  perturb(m, seed + 100);
  return m.eval();
}

function ids(a: number[]): Tensor {
  return fromStorage(Int32Array.from(a), [1, a.length]);
}

/** Row `t` of a `[1, T, V]` logits tensor. */
function row(logits: Tensor, t: number): Float64Array {
  const V = logits.shape[2];
  return Float64Array.from(logits.toTypedArray().subarray(t * V, (t + 1) * V));
}

function argmaxNoPad(r: Float64Array): number {
  let best = -1;
  for (let v = 0; v < r.length; v++) if (v !== PAD && (best < 0 || r[v] > r[best])) best = v;
  return best;
}

describe('LM decoding through incremental state', () => {
  const prompt = [EOS, 5, 9, 4, 11, 7];
  for (const [chunk, rel] of [
    [4, 'rotary'],
    [-1, 'simple'],
  ] as const) {
    it(`greedy: per-step incremental logits equal the full forward (f64; C=${chunk}, ${rel} bias)`, () => {
      const lm = tinyLm(chunk, rel, 3);
      const r = sampleLm((t, s) => lm.forward(t, s), prompt, { maxNewTokens: 9, greedy: true, eos: null, chunkSize: chunk, keepLogits: true });
      expect(r.calls).toEqual(chunk > 0 ? [4, 1, 1, ...new Array(8).fill(1)] : [6, ...new Array(8).fill(1)]);
      const gen = r.tokens[0];
      expect(gen).toHaveLength(9);
      const fed = [...prompt, ...gen.slice(0, -1)];
      const full = noGrad(() => lm.forward(ids(fed)));
      const scale = maxAbs(full.toTypedArray());
      expect(scale).toBeGreaterThan(0.1);
      expectClose(r.logits!, full, { atol: 1e-10 * Math.max(1, scale), what: 'incremental logits' });
      // greedy = argmax of the full forward at every generated position; log-probs agree too
      gen.forEach((tok, i) => {
        const rr = row(full, prompt.length - 1 + i);
        expect(tok).toBe(argmaxNoPad(rr));
        expect(r.positionalLogProbs[0][i]).toBeCloseTo(logSoftmaxRow(rr)[tok], 10);
      });
    });
  }

  it('prompt call pattern: chunk-aligned prefix at once, the rest one by one', () => {
    expect(promptCalls(6, 4)).toEqual([4, 1, 1]);
    expect(promptCalls(8, 4)).toEqual([8]);
    expect(promptCalls(3, 4)).toEqual([1, 1, 1]);
    expect(promptCalls(5, -1)).toEqual([5]);
  });

  it('stops a row at </s> and keeps the others going', () => {
    const lm = tinyLm(-1, 'simple', 5);
    const r = sampleLm((t, s) => lm.forward(t, s), prompt, { maxNewTokens: 40, temperature: 2, numSamples: 4, seed: 11 });
    for (const toks of r.tokens) {
      const k = toks.indexOf(EOS);
      if (k >= 0) expect(k).toBe(toks.length - 1);
      else expect(toks).toHaveLength(40);
      expect(toks).not.toContain(PAD);
    }
  });

  it('temperature / top-k sampling is seeded and reproducible, and respects top-k', () => {
    const lm = tinyLm(4, 'rotary', 7);
    const step = (t: Tensor, s: Parameters<typeof lm.forward>[1]) => lm.forward(t, s);
    const opts = { maxNewTokens: 8, temperature: 0.8, topK: 3, numSamples: 3, seed: 42, eos: null, chunkSize: 4 };
    const a = sampleLm(step, prompt, opts);
    const b = sampleLm(step, prompt, opts);
    expect(b.tokens).toEqual(a.tokens);
    expect(b.logProb).toEqual(a.logProb);
    const c = sampleLm(step, prompt, { ...opts, seed: 43 });
    expect(c.tokens).not.toEqual(a.tokens);
    expect(new Set(a.tokens.map((t) => t.join(','))).size).toBeGreaterThan(1); // rows sample independently
    for (const toks of a.tokens) {
      const full = noGrad(() => lm.forward(ids([...prompt, ...toks.slice(0, -1)])));
      toks.forEach((tok, i) => {
        const rr = row(full, prompt.length - 1 + i);
        const top3 = [...rr.keys()]
          .filter((v) => v !== PAD)
          .sort((x, y) => rr[y] - rr[x])
          .slice(0, 3);
        expect(top3).toContain(tok);
      });
    }
    // top-k 1 is greedy
    const g = sampleLm(step, prompt, { ...opts, topK: 1, numSamples: 1 });
    const gr = sampleLm(step, prompt, { ...opts, greedy: true, numSamples: 1 });
    expect(g.tokens).toEqual(gr.tokens);
  });

  it('chooseToken samples softmax(logits / T)', () => {
    const logits = Float64Array.from([0.5, 3, 1, -1, 2]);
    const gen = new Generator(9);
    const n = 6000;
    const counts = new Array(5).fill(0);
    for (let i = 0; i < n; i++) counts[chooseToken(logits, { greedy: false, temperature: 2, topK: 0, banned: [PAD] }, gen)]++;
    expect(counts[PAD]).toBe(0);
    const w = [0.5, -Infinity, 1, -1, 2].map((x) => Math.exp(x / 2));
    const z = w.reduce((s, x) => s + x, 0);
    counts.forEach((c, v) => expect(Math.abs(c / n - w[v] / z)).toBeLessThan(0.025));
    expect(chooseToken(logits, { greedy: true, temperature: 1, topK: 0, banned: [PAD] }, gen)).toBe(4);
  });

  it('rejects bad options', () => {
    const lm = tinyLm(-1, 'simple', 3);
    const step = (t: Tensor, s: Parameters<typeof lm.forward>[1]) => lm.forward(t, s);
    expect(() => sampleLm(step, [], { maxNewTokens: 2 })).toThrow(/prompt is empty/);
    expect(() => sampleLm(step, prompt, { maxNewTokens: 2, temperature: -1 })).toThrow(/temperature/);
    expect(() => sampleLm(step, prompt, { maxNewTokens: 1.5 })).toThrow(/maxNewTokens/);
  });
});

describe('NMT beam search through incremental state', () => {
  const mt = tinyMt(21);
  /** The model's decoder, with `eosBias` added to the </s> logit (makes hypotheses end at various lengths). */
  function decoder(eosBias: number): Seq2SeqDecoder<EncoderOut> {
    return {
      encode: (src) => mt.encoder.forward(src),
      reorderEncoderOut: (e, o) => mt.reorderEncoderOut(e, o),
      step: (prefix, e, state) => addEosBias(mt.decoder.forward(prefix, e, { state, needAttn: false }).logits, eosBias),
      reorderState: (state, o) => mt.reorderIncrementalState(state, o),
    };
  }
  const srcA = [5, 8, 6, 12, 9, EOS];
  const srcB = [7, 4, 13, EOS];

  function addEosBias(logits: Tensor, b: number): Tensor {
    if (b === 0) return logits;
    const a = logits.toTypedArray().slice();
    const V = logits.shape[logits.ndim - 1];
    for (let i = EOS; i < a.length; i += V) a[i] += b;
    return fromStorage(a, logits.shape);
  }

  /** log-softmax of the hypothesis' tokens under a teacher-forced full forward, per position. */
  function rescore(src: number[], toks: number[], eosBias: number): number[] {
    const prev = [EOS, ...toks.slice(0, -1)];
    const logits = addEosBias(
      noGrad(() => mt.forward(ids(src), ids(prev)).logits),
      eosBias,
    );
    return toks.map((tok, t) => logSoftmaxRow(row(logits, t))[tok]);
  }

  for (const eosBias of [0, 2]) {
    it(`beam scores equal re-scoring the beams with a full forward (f64, </s> bias ${eosBias})`, () => {
      const lenPenalty = 0.5,
        maxLenB = 7;
      const all = beamSearch(decoder(eosBias), [srcA, srcB], { beam: 4, maxLenB, lenPenalty });
      const lengths = new Set<number>();
      all.forEach((hyps, s) => {
        expect(hyps).toHaveLength(4);
        for (let i = 1; i < hyps.length; i++) expect(hyps[i - 1].score).toBeGreaterThanOrEqual(hyps[i].score);
        const seen = new Set<string>();
        for (const h of hyps) {
          expect(h.tokens[h.tokens.length - 1]).toBe(EOS);
          expect(h.tokens.slice(0, -1)).not.toContain(EOS);
          expect(h.tokens).not.toContain(PAD);
          expect(h.tokens.length).toBeLessThanOrEqual(maxLenB + 1);
          lengths.add(h.tokens.length);
          seen.add(h.tokens.join(','));
          const ps = rescore([srcA, srcB][s], h.tokens, eosBias);
          ps.forEach((p, t) => expect(Math.abs(p - h.positionalScores[t])).toBeLessThan(1e-9));
          const raw = ps.reduce((a, b) => a + b, 0);
          expect(Math.abs(raw - h.rawScore)).toBeLessThan(1e-9);
          expect(h.score).toBeCloseTo(h.rawScore / h.tokens.length ** lenPenalty, 12);
        }
        expect(seen.size).toBe(hyps.length);
      });
      // without the bias every beam runs to the length limit; with it they end at several lengths
      if (eosBias === 0) expect([...lengths]).toEqual([maxLenB + 1]);
      else expect(lengths.size).toBeGreaterThan(2);
    });
  }

  it('beam 1 is greedy decoding by full forwards', () => {
    const [[h]] = beamSearch(decoder(0), [srcB], { beam: 1, maxLenB: 6 });
    const toks: number[] = [];
    for (let t = 0; t <= 6; t++) {
      const logits = noGrad(() => mt.forward(ids(srcB), ids([EOS, ...toks])).logits);
      const r = row(logits, t);
      if (t === 0) r[EOS] = -Infinity; // min length 1
      const tok = t === 6 ? EOS : argmaxNoPad(r);
      toks.push(tok);
      if (tok === EOS) break;
    }
    expect(h.tokens).toEqual(toks);
  });

  it('sentences of a padded batch decode as they do alone (one finishing early)', () => {
    const dec = decoder(2);
    const opts = { beam: 3, maxLenB: 6 };
    const both = beamSearch(dec, [srcA, srcB], opts);
    const alone = [beamSearch(dec, [srcA], opts)[0], beamSearch(dec, [srcB], opts)[0]];
    both.forEach((hs, i) => {
      expect(hs.map((h) => h.tokens)).toEqual(alone[i].map((h) => h.tokens));
      hs.forEach((h, j) => expect(Math.abs(h.score - alone[i][j].score)).toBeLessThan(1e-10));
    });
  });

  it('topCandidates: best first, ties in flat order, -inf last', () => {
    const sc = [
      [1, 3, -Infinity],
      [3, 2, NaN],
    ];
    expect(topCandidates(2, 3, 4, (j, v) => sc[j][v])).toEqual([
      { j: 0, v: 1, score: 3 },
      { j: 1, v: 0, score: 3 },
      { j: 1, v: 1, score: 2 },
      { j: 0, v: 0, score: 1 },
    ]);
    expect(topCandidates(1, 3, 3, (_j, v) => [0, -Infinity, -Infinity][v]).map((c) => c.v)).toEqual([0, 1, 2]);
  });

  it('rejects bad options', () => {
    expect(() => beamSearch(decoder(0), [], {})).toThrow(/no source/);
    expect(() => beamSearch(decoder(0), [[]], {})).toThrow(/empty/);
    expect(() => beamSearch(decoder(0), [srcA], { beam: 0 })).toThrow(/beam/);
  });
});

describe('mega generate (CLI)', () => {
  function saveTiny(model: Module, name: string, arch: string, task: string, args: Record<string, unknown>): string {
    const p = join(tmp, `${name}.safetensors`);
    writeFileAtomic(p, encodeWeights(model, { task, arch, modelArgs: args, taskInfo: { ...TASK } }, {}, 0, 'test'));
    return p;
  }

  function run(argv: string[]): { rc: number; lines: string[] } {
    const lines: string[] = [];
    const rc = generateCommand(argv, (s) => lines.push(s)) as number;
    return { rc, lines };
  }

  it('--help', () => {
    const { rc, lines } = run(['--help']);
    expect(rc).toBe(0);
    expect(lines.join('\n')).toMatch(/Usage: mega generate/);
  });

  it('LM: greedy and seeded sampling from a checkpoint, --json', () => {
    const lm = tinyLm(4, 'rotary', 3);
    const ckpt = saveTiny(lm, 'lm', 'mega_lm', 'lm', lmArgs(4, 'rotary'));
    const a = run([ckpt, '--prompt-ids', '5 9 4 11 7', '--greedy', '--max-new-tokens', '6', '--no-stop-at-eos', '--dtype', 'f64', '--json']);
    expect(a.rc).toBe(0);
    expect(a.lines).toHaveLength(1);
    const ja = JSON.parse(a.lines[0]);
    expect(ja.mode).toBe('lm');
    const ref = sampleLm((t, s) => lm.forward(t, s), [EOS, 5, 9, 4, 11, 7], { maxNewTokens: 6, greedy: true, eos: null, chunkSize: 4 });
    expect(ja.samples[0].tokens).toEqual(ref.tokens[0]);
    const argv = [ckpt, '--prompt-ids', '5,9,4', '--temperature', '0.9', '--top-k', '4', '--seed', '5', '--num-samples', '2', '--max-new-tokens', '5'];
    const s1 = run(argv),
      s2 = run(argv);
    expect(s1.rc).toBe(0);
    expect(s1.lines).toHaveLength(2);
    expect(s1.lines[0]).toMatch(/^H-0\t-?\d+\.\d{4}\t/);
    expect(s2.lines).toEqual(s1.lines);
  });

  it('LM: greedy decoding of the released fixture (.pt loaded directly) follows the full forward', () => {
    const pt = join(CK, 'mega_lm_tiny.pt');
    const r = run([pt, '--prompt-ids', '4 5 6 7 8 9', '--greedy', '--max-new-tokens', '7', '--no-stop-at-eos', '--dtype', 'f64', '--json']);
    expect(r.rc).toBe(0);
    const gen: number[] = JSON.parse(r.lines[0]).samples[0].tokens;
    expect(gen).toHaveLength(7);
    const lm = loadModelFile(pt, { dtype: 'f64' }).model as MegaLanguageModel;
    const prompt = [EOS, 4, 5, 6, 7, 8, 9];
    const full = noGrad(() => lm.forward(ids([...prompt, ...gen.slice(0, -1)])));
    gen.forEach((tok, i) => expect(tok).toBe(argmaxNoPad(row(full, prompt.length - 1 + i))));
  });

  it('NMT: beam search from a checkpoint, --json', () => {
    const ckpt = saveTiny(mt(), 'mt', 'mega', 'translation', nmtArgs());
    const r = run([ckpt, '--src-ids', '5 8 6 12 9', '--src-ids', '7 4 13 2', '--beam', '3', '--nbest', '2', '--max-len-b', '6', '--json']);
    expect(r.rc).toBe(0);
    const j = JSON.parse(r.lines[0]);
    expect(j.mode).toBe('translation');
    expect(j.results).toHaveLength(2);
    expect(j.results[0].source).toEqual([5, 8, 6, 12, 9, EOS]);
    expect(j.results[1].source).toEqual([7, 4, 13, EOS]);
    expect(j.results[0].hypotheses).toHaveLength(2);
    const text = run([ckpt, '--src-ids', '5 8 6 12 9', '--beam', '3', '--max-len-b', '6']);
    expect(text.lines[0]).toBe('S-0\t5 8 6 12 9 2');
    expect(text.lines[1]).toMatch(/^H-0\t-?\d+\.\d{4}\t[\d ]+$/);
    expect(text.lines[2]).toMatch(/^P-0\t/);
    function mt(): MegaModel {
      return tinyMt(21);
    }
  });

  it('bad input: one-line error, exit 2', async () => {
    const lmCkpt = saveTiny(tinyLm(-1, 'simple', 3), 'lm2', 'mega_lm', 'lm', lmArgs(-1, 'simple'));
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const outSpy = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      const cases: [string[], RegExp][] = [
        [[join(tmp, 'missing.safetensors'), '--prompt-ids', '4'], /no such file/],
        [[lmCkpt, '--prompt', 'hello'], /not byte-level/],
        [[lmCkpt, '--prompt-ids', '4 99'], /token id "99"/],
        [[lmCkpt, '--src-ids', '4'], /translation models/],
        [[lmCkpt, '--temperature', 'hot'], /--temperature must be a number/],
        [[lmCkpt, '--bogus'], /bogus/],
        [[join(CK, 'mega_lra_listops_tiny.pt'), '--prompt-ids', '4'], /holds a LRAModel, which does not generate text/],
      ];
      for (const [argv, re] of cases) {
        err.mockClear();
        expect(await main(['generate', ...argv]), argv.join(' ')).toBe(2);
        const msg = err.mock.calls.map((c) => String(c[0])).join('');
        expect(msg).toMatch(re);
        expect(msg.trim().split('\n')).toHaveLength(1);
      }
    } finally {
      err.mockRestore();
      outSpy.mockRestore();
    }
  });
});
