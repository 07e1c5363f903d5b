/**
 * The language model with adaptive input + adaptive softmax: incremental decoding and generation
 * through the adaptive softmax's full log-probabilities, the reference-size preset, criteria, and
 * import of a fairseq checkpoint holding adaptive weights (written by the test's torch-zip writer
 * with fairseq's names, tied tensors sharing one storage, and fairseq's bookkeeping buffers).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { noGrad } from '../../src/autograd/index.js';
import { generateCommand } from '../../src/cli/generate.js';
import { CheckpointError } from '../../src/io/errors.js';
import { IncrementalState } from '../../src/mega/incremental.js';
import { MegaLanguageModel } from '../../src/mega/models/lm.js';
import { archArgs, buildModel } from '../../src/mega/models/presets.js';
import type { Module } from '../../src/nn/module.js';
import { ConfigError } from '../../src/nn/errors.js';
import { tensor } from '../../src/tensor/create.js';
import * as K from '../../src/tensor/kernels.js';
import { Generator } from '../../src/tensor/random.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { importFairseqFile, loadModelFile } from '../../src/train/fairseq-import.js';
import { evaluateFairseq, loadFairseqModel } from '../../src/train/fairseq-eval.js';
import { readLm, tokenBlocks, validBlockSize } from '../../src/data/fairseq/index.js';
import { expectClose } from '../../src/verify/compare.js';
import { logSoftmaxRow, sampleLm } from '../../src/train/generate.js';
import { leBytes, torchPickle, torchZip, type TensorSpec } from '../io/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'mega-adaptive-lm-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const TASK = { dictionary_size: 24, pad: 1, bos: 0, eos: 2, unk: 3 };

/** Small adaptive overrides of mega_lm_adaptive_big (bands [0,8) [8,16) [16,24), factor 2). */
const SMALL = {
  decoder_layers: 2,
  decoder_embed_dim: 16,
  decoder_hidden_dim: 24,
  decoder_ffn_embed_dim: 24,
  decoder_z_dim: 8,
  decoder_n_dim: 4,
  decoder_input_dim: 16,
  adaptive_input_cutoff: '8,16',
  adaptive_softmax_cutoff: '8,16',
  adaptive_input_factor: 2,
  adaptive_softmax_factor: 2,
  dropout: 0,
  attention_dropout: 0,
  hidden_dropout: 0,
  activation_dropout: 0,
  adaptive_softmax_dropout: 0,
  normalize_before: true,
  truncation_length: 64,
  max_target_positions: 64,
};

function perturb(m: Module, seed: number, std = 0.3): void {
  const g = new Generator(seed);
  for (const p of m.parameters()) for (let i = 0; i < p.size; i++) p.storage[p.offset + i] += std * g.normal();
}

function adaptiveLm(over: Record<string, unknown>, seed: number, dtype: 'f32' | 'f64' = 'f64'): MegaLanguageModel {
  const m = buildModel('mega_lm_adaptive_big', { ...SMALL, ...over }, TASK, { dtype, gen: new Generator(seed) }) as MegaLanguageModel;
  perturb(m, seed + 100);
  return m.eval();
}

describe('MegaLanguageModel with adaptive input and softmax', () => {
  it('forward gives full log-probabilities (each row a distribution over V)', () => {
    const m = adaptiveLm({}, 1);
    const lp = noGrad(() => m.forward(tensor([[2, 9, 17, 5, 23, 12]], 'i32')));
    expect(lp.shape).toEqual([1, 6, 24]);
    const a = lp.toTypedArray();
    for (let t = 0; t < 6; t++) {
      let s = 0;
      for (let v = 0; v < 24; v++) s += Math.exp(a[t * 24 + v]);
      expect(s).toBeCloseTo(1, 12);
    }
  });

  for (const chunk of [-1, 4]) {
    it(`incremental decoding (blocks, then one token per call) = one full pass, chunk ${chunk}`, () => {
      const m = adaptiveLm({ decoder_chunk_size: chunk, rel_pos_bias: chunk > 0 ? 'rotary' : 'simple' }, 2);
      const toks = [
        [2, 9, 17, 5, 23, 12, 8, 16, 3, 21],
        [2, 4, 15, 22, 6, 10, 19, 7, 11, 20],
      ];
      noGrad(() => {
        const full = m.forward(tensor(toks, 'i32'));
        const state = new IncrementalState();
        const blocks = chunk > 0 ? [4, 4, 1, 1] : [3, 1, 1, 1, 1, 1, 1, 1];
        const outs: Tensor[] = [];
        let at = 0;
        for (const n of blocks) {
          outs.push(
            m.forward(
              tensor(
                toks.map((r) => r.slice(at, at + n)),
                'i32',
              ),
              state,
            ),
          );
          at += n;
        }
        const inc = K.concat(outs, 1);
        expectClose(inc, full, { atol: 1e-11, rtol: 0, what: 'incremental log-probs' });
      });
    });
  }

  it('greedy generation through the adaptive softmax = argmax of the full pass; log-probs agree', () => {
    const m = adaptiveLm({}, 3);
    const prompt = [2, 9, 17, 5];
    const r = sampleLm((t, s) => m.forward(t, s), prompt, { maxNewTokens: 8, greedy: true, eos: null, chunkSize: -1, keepLogits: true });
    const gen = r.tokens[0];
    expect(gen).toHaveLength(8);
    const fed = [...prompt, ...gen.slice(0, -1)];
    const full = noGrad(() => m.forward(tensor([fed], 'i32')));
    expectClose(r.logits!, full, { atol: 1e-11, rtol: 0, what: 'generation log-probs' });
    const a = full.toTypedArray();
    gen.forEach((tok, i) => {
      const row = Float64Array.from(a.subarray((prompt.length - 1 + i) * 24, (prompt.length + i) * 24));
      let best = 0;
      for (let v = 0; v < 24; v++) if (v !== 1 && row[v] > row[best]) best = v;
      expect(tok).toBe(best);
      expect(r.positionalLogProbs[0][i]).toBeCloseTo(row[tok], 10); // already log-probs
      expect(logSoftmaxRow(row)[tok]).toBeCloseTo(row[tok], 12);
    });
  });

  it('criteria: adaptive_loss by default, cross_entropy on the full log-probs on request, adaptive_loss needs an adaptive softmax', () => {
    const m = adaptiveLm({}, 4);
    const src = tensor([[2, 10, 18, 5, 23, 12]], 'i32'),
      tgt = tensor([[10, 18, 5, 23, 12, 2]], 'i32'); // not 9 or 17 (= c_i + pad)
    const a = noGrad(() => m.criterionLoss(src, tgt)).item();
    const ce = noGrad(() => m.criterionLoss(src, tgt, 'cross_entropy')).item();
    const lp = noGrad(() => m.forward(src)).toTypedArray();
    const nll = -[10, 18, 5, 23, 12, 2].reduce((s, t, i) => s + lp[i * 24 + t], 0);
    expect(ce).toBeCloseTo(nll, 11);
    expect(a).toBeCloseTo(nll, 11); // equal when no target hits the tail pad quirk
    // target 17 = 16 + pad: adaptive_loss drops its tail term, cross_entropy keeps it
    const q = tensor([[17]], 'i32'),
      s1 = tensor([[2]], 'i32');
    const aq = noGrad(() => m.criterionLoss(s1, q)).item(),
      cq = noGrad(() => m.criterionLoss(s1, q, 'cross_entropy')).item();
    expect(cq).toBeGreaterThan(aq);
    const plain = buildModel('mega_lm', { ...SMALL, adaptive_input: false, adaptive_softmax_cutoff: null }, TASK, { dtype: 'f64' }) as MegaLanguageModel;
    expect(() => plain.criterionLoss(src, tgt, 'adaptive_loss')).toThrow(ConfigError);
  });

  it('block-wise evaluation (adaptive_loss through the incremental state) sums to the full-pass loss', () => {
    const m = adaptiveLm({ decoder_chunk_size: 4, rel_pos_bias: 'rotary' }, 8);
    const src = [
      [2, 10, 18, 5, 23, 12, 8, 16],
      [2, 4, 15, 22, 6, 10, 19, 7],
    ];
    const tgt = [
      [10, 18, 5, 23, 12, 8, 16, 9],
      [4, 15, 22, 6, 10, 19, 7, 17],
    ]; // 9 and 17: the tail pad quirk included
    noGrad(() => {
      const full = m.criterionLoss(tensor(src, 'i32'), tensor(tgt, 'i32')).item();
      const state = new IncrementalState();
      let blocks = 0;
      for (const at of [0, 4]) {
        const piece = (x: number[][]) =>
          tensor(
            x.map((r) => r.slice(at, at + 4)),
            'i32',
          );
        blocks += m.criterionLoss(piece(src), piece(tgt), 'adaptive_loss', state).item();
      }
      expect(blocks).toBeCloseTo(full, 10);
    });
  });

  it('targetLogProbs = the full log-probs at the targets (adaptive and plain models, whole pass and blocks)', () => {
    const plain = buildModel('mega_lm', { ...SMALL, adaptive_input: false, adaptive_softmax_cutoff: null }, TASK, {
      dtype: 'f64',
      gen: new Generator(9),
    }) as MegaLanguageModel;
    for (const m of [adaptiveLm({ decoder_chunk_size: 4, rel_pos_bias: 'rotary' }, 9), plain.eval()]) {
      const src = [
        [2, 10, 18, 5, 23, 12, 8, 16],
        [2, 4, 15, 22, 6, 10, 19, 7],
      ];
      const tgt = [
        [10, 18, 5, 23, 12, 8, 16, 9],
        [4, 15, 22, 6, 10, 19, 7, 17],
      ];
      noGrad(() => {
        const full = K.softmax(m.forward(tensor(src, 'i32')), true).toTypedArray(); // log-softmax: identity on log-probs
        const want = tgt.flatMap((r, b) => r.map((t, i) => full[(b * 8 + i) * 24 + t]));
        expectClose(m.targetLogProbs(tensor(src, 'i32'), tensor(tgt, 'i32')), want, { atol: 1e-11, rtol: 0, what: 'target log-probs' });
        const state = m.adaptive ? new IncrementalState() : null;
        if (!state) return;
        const blocks = [0, 4].map((at) =>
          m.targetLogProbs(
            tensor(
              src.map((r) => r.slice(at, at + 4)),
              'i32',
            ),
            tensor(
              tgt.map((r) => r.slice(at, at + 4)),
              'i32',
            ),
            state,
          ),
        );
        expectClose(K.concat(blocks, 1), m.targetLogProbs(tensor(src, 'i32'), tensor(tgt, 'i32')), {
          atol: 1e-11,
          rtol: 0,
          what: 'block-wise target log-probs',
        });
      });
    }
  });

  it('mega_lm_adaptive_big at reference sizes: WikiText-103 bands 20000/60000, factor 4, widths 1024/256/64, tied', () => {
    const V = 267744;
    // no layers: only the embedding and output matter here
    const m = buildModel('mega_lm_adaptive_big', { decoder_layers: 0 }, { dictionary_size: V, pad: 1 }) as MegaLanguageModel;
    const args = archArgs('mega_lm_adaptive_big');
    expect(args).toMatchObject({
      decoder_embed_dim: 1024,
      decoder_hidden_dim: 2048,
      decoder_z_dim: 256,
      dropout: 0.3,
      adaptive_softmax_dropout: 0.2,
      tie_adaptive_weights: true,
      tie_adaptive_proj: true,
    });
    const sd = m.stateDict();
    const shapes = (prefix: string) =>
      Object.fromEntries(
        Object.entries(sd)
          .filter(([k]) => k.startsWith(prefix))
          .map(([k, t]) => [k.slice(prefix.length), t.shape]),
      );
    expect(shapes('decoder.embed_tokens.')).toEqual({
      'embeddings.0.0.weight': [20000, 1024],
      'embeddings.0.1.weight': [1024, 1024],
      'embeddings.1.0.weight': [40000, 256],
      'embeddings.1.1.weight': [1024, 256],
      'embeddings.2.0.weight': [V - 60000, 64],
      'embeddings.2.1.weight': [1024, 64],
    });
    expect(shapes('decoder.adaptive_softmax.')).toEqual({
      'head.word_proj.weight': [20000, 1024],
      'head.class_proj.weight': [2, 1024],
      'tail.0.0.weight': [1024, 256],
      'tail.0.2.weight': [40000, 256],
      'tail.1.0.weight': [1024, 64],
      'tail.1.2.weight': [V - 60000, 64],
    });
    expect(sd['decoder.adaptive_softmax.tail.1.2.weight']).toBe(sd['decoder.embed_tokens.embeddings.2.0.weight']);
    expect(sd['decoder.output_projection.weight']).toBeUndefined();
    // distinct parameters: the bands (embedding + projection) and the 2 × 1024 cluster matrix; the softmax owns nothing else
    expect(m.numParameters()).toBe(20000 * 1024 + 1024 * 1024 + 40000 * 256 + 1024 * 256 + (V - 60000) * 64 + 1024 * 64 + 2 * 1024);
  });
});

describe('import of a fairseq checkpoint with adaptive weights', () => {
  /** Writes `m`'s state dict as a fairseq .pt: one storage per distinct tensor (tied names share it), plus fairseq's buffers. */
  function writePt(path: string, m: MegaLanguageModel, args: Record<string, number | string>, tamper?: (name: string, data: Float32Array) => void): void {
    const specs: TensorSpec[] = [];
    const storages: Record<string, Uint8Array> = {};
    const keyOf = new Map<Tensor, string>();
    for (const [name, t] of Object.entries(m.stateDict())) {
      let key = keyOf.get(t);
      if (key === undefined || tamper) {
        key = String(Object.keys(storages).length);
        keyOf.set(t, key);
        const data = Float32Array.from(t.toTypedArray());
        tamper?.(name, data);
        storages[key] = leBytes(data);
      }
      const stride = t.shape.map((_, i) => t.shape.slice(i + 1).reduce((a, b) => a * b, 1));
      specs.push({ name, storageType: 'FloatStorage', key, numel: t.size, offset: 0, size: t.shape, stride, parameter: true });
    }
    // fairseq's bookkeeping entries: dtype markers and version counters (not model state)
    const extra: [string, string, Uint8Array][] = [
      ['decoder.embed_tokens._float_tensor', 'FloatStorage', leBytes(new Float32Array([0]))],
      ['decoder.adaptive_softmax.head._float_tensor', 'FloatStorage', leBytes(new Float32Array([0]))],
      ['decoder.adaptive_softmax.version', 'LongStorage', leBytes(new BigInt64Array([1n]))],
      ['decoder.version', 'FloatStorage', leBytes(new Float32Array([3]))],
    ];
    for (const [name, type, bytes] of extra) {
      const key = String(Object.keys(storages).length);
      storages[key] = bytes;
      specs.push({ name, storageType: type, key, numel: 1, offset: 0, size: [1], stride: [1] });
    }
    writeFileSync(path, torchZip(torchPickle(specs, args), storages));
  }

  // the model of SMALL as fairseq stores it (post-norm: the .pt writer stores no booleans)
  const { normalize_before: _preNorm, ...smallArgs } = SMALL;
  const ARGS = { arch: 'mega_lm_adaptive_big', ...smallArgs, decoder_chunk_size: 4, rel_pos_bias: 'rotary', criterion: 'adaptive_loss' };

  it('imports (vocabulary from the bands, tied tensors shared, buffers ignored) and gives the same log-probs and loss', () => {
    // ARGS: post-norm (the writer stores no booleans)
    const src = adaptiveLm({ decoder_chunk_size: 4, rel_pos_bias: 'rotary', normalize_before: false }, 5, 'f32');
    const pt = join(tmp, 'adaptive.pt');
    writePt(pt, src, ARGS);
    const imp = importFairseqFile(pt);
    expect(imp.className).toBe('MegaLanguageModel');
    expect(imp.spec.taskInfo).toMatchObject({ dictionary_size: 24, pad: 1 });
    expect(imp.ignored.sort()).toEqual([
      'decoder.adaptive_softmax.head._float_tensor',
      'decoder.adaptive_softmax.version',
      'decoder.embed_tokens._float_tensor',
      'decoder.version',
    ]);
    const m = imp.model as MegaLanguageModel;
    expect(m.adaptive).toBe(true);
    const sd = m.stateDict();
    expect(sd['decoder.adaptive_softmax.head.word_proj.weight']).toBe(sd['decoder.embed_tokens.embeddings.0.0.weight']);
    expect(sd['decoder.adaptive_softmax.tail.0.0.weight']).toBe(sd['decoder.embed_tokens.embeddings.1.1.weight']);
    const toks = tensor(
      [
        [2, 9, 17, 5, 23, 12, 8, 16, 3],
        [2, 4, 15, 22, 6, 10, 19, 1, 1],
      ],
      'i32',
    );
    const tgt = tensor(
      [
        [9, 17, 5, 23, 12, 8, 16, 3, 2],
        [4, 15, 22, 6, 10, 19, 2, 1, 1],
      ],
      'i32',
    );
    noGrad(() => {
      expect(Array.from(m.forward(toks).toTypedArray())).toEqual(Array.from(src.forward(toks).toTypedArray()));
      expect(m.criterionLoss(toks, tgt).item()).toBe(src.criterionLoss(toks, tgt).item());
    });
    // mega generate on the .pt: greedy continuation = the source model's greedy continuation
    const lines: string[] = [];
    expect(generateCommand([pt, '--prompt-ids', '9 17 5', '--greedy', '--max-new-tokens', '6', '--no-stop-at-eos', '--json'], (l) => lines.push(l))).toBe(0);
    const want = sampleLm((t, s) => src.forward(t, s), [2, 9, 17, 5], { maxNewTokens: 6, greedy: true, eos: null, chunkSize: 4 });
    expect(JSON.parse(lines.at(-1)!).samples[0].tokens).toEqual(want.tokens[0]);
    // and through loadModelFile (what mega eval / mega generate use), in f64
    const f64 = loadModelFile(pt, { dtype: 'f64' }).model as MegaLanguageModel;
    noGrad(() => expectClose(f64.forward(toks), src.forward(toks), { atol: 1e-4, rtol: 0, what: 'f64 import vs f32 source' }));
  });

  it('evaluation on a fairseq data-bin: validate through adaptive_loss with the incremental state, eval_lm through the target log-probs', () => {
    const data = fileURLToPath(new URL('../fairseq/lm/data-bin', import.meta.url)); // dict.txt: 40 symbols
    const V = 40,
      task = { dictionary_size: V, pad: 1, bos: 0, eos: 2, unk: 3 };
    const over = { decoder_chunk_size: 16, rel_pos_bias: 'rotary', normalize_before: false };
    const src = buildModel('mega_lm_adaptive_big', { ...SMALL, ...over }, task, { dtype: 'f32', gen: new Generator(7) }) as MegaLanguageModel;
    perturb(src, 107);
    const pt = join(tmp, 'adaptive-lm-world.pt');
    writePt(pt, src, {
      ...ARGS,
      decoder_chunk_size: 16,
      rel_pos_bias: 'rotary',
      task: 'language_modeling',
      criterion: 'adaptive_loss',
      sample_break_mode: 'complete',
      valid_block: 'splits:10',
      tokens_per_sample: 512,
    });
    const fm = loadFairseqModel(pt);
    const m = fm.imp.model as MegaLanguageModel;
    const ds = readLm(data, 'valid').data;
    const ids = (a: Int32Array) => tensor([Array.from(a)], 'i32');
    noGrad(() => {
      // validate_mega_lm: splits:10 blocks of whole sentences, fed 16 columns at a time, criterion adaptive_loss
      let vsum = 0,
        vtok = 0;
      for (const b of tokenBlocks(ds, validBlockSize('splits:10', ds), 'complete')) {
        const state = new IncrementalState();
        for (let i = 0; i < b.target.length; i += 16) {
          const f = m.decoder.features(ids(b.source.slice(i, i + 16)), state);
          vsum += m.adaptiveLoss(f, ids(b.target.slice(i, i + 16))).item();
        }
        vtok += b.target.length;
      }
      const v = evaluateFairseq(fm, data, 'valid', { mode: 'validate' });
      expect(v.ntokens).toBe(vtok);
      expect(v.loss).toBeCloseTo(vsum / vtok / Math.LN2, 9);
      // eval_lm: one block of the whole split scored at once = cross-entropy of the full log-probs
      let esum = 0,
        etok = 0;
      for (const b of tokenBlocks(ds, validBlockSize('size:100000000', ds), 'none')) {
        esum += m.loss(m.forward(ids(b.source)), ids(b.target)).item();
        etok += b.target.length;
      }
      const e = evaluateFairseq(fm, data, 'valid', { mode: 'eval_lm' });
      expect(e.ntokens).toBe(etok);
      expect(e.loss).toBeCloseTo(esum / etok / Math.LN2, 5);
      expect(e.loss).not.toBeCloseTo(v.loss, 3); // the tail pad quirk and the blocks separate them
    });
  });

  it('a checkpoint whose tied tensors differ is rejected', () => {
    const src = adaptiveLm({ normalize_before: false }, 6, 'f32');
    const pt = join(tmp, 'untied.pt');
    writePt(pt, src, { ...ARGS, decoder_chunk_size: -1, rel_pos_bias: 'simple' }, (name, data) => {
      if (name === 'decoder.adaptive_softmax.tail.1.2.weight') data[0] += 1;
    });
    expect(() => importFairseqFile(pt)).toThrow(CheckpointError);
    expect(() => importFairseqFile(pt)).toThrow(
      /'decoder\.embed_tokens\.embeddings\.2\.0\.weight' and 'decoder\.adaptive_softmax\.tail\.1\.2\.weight' are one shared tensor/,
    );
  });
});
