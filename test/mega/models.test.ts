import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { backward, gradcheck, noGrad, sum } from '../../src/autograd/index.js';
import { IncrementalState } from '../../src/mega/incremental.js';
import { MegaLanguageModel } from '../../src/mega/models/lm.js';
import { LRAModel, lraCrossEntropy } from '../../src/mega/models/lra.js';
import { MegaModel } from '../../src/mega/models/nmt.js';
import { SCRawModel } from '../../src/mega/models/speech.js';
import { buildModel } from '../../src/mega/models/presets.js';
import { tensor } from '../../src/tensor/create.js';
import { Generator, randNormal } from '../../src/tensor/random.js';
import * as K from '../../src/tensor/kernels.js';
import * as V from '../../src/tensor/view.js';
import { runFile } from '../../src/verify/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const task = { dictionary_size: 20, pad: 1, bos: 0, eos: 2, unk: 3 };

describe('checkpoint companion cases (f32 params, eval logits) through the golden adapters', () => {
  for (const name of ['mega_lra_listops_tiny', 'mega_lm_tiny']) {
    it(`${name} meets the f32 rule`, () => {
      const r = runFile(join(here, '../golden/checkpoints', `${name}.expected.msgpack`), 'f32');
      expect(r.error).toBeUndefined();
      expect(r.tensors.map((t) => t.name)).toEqual(['outputs.logits']);
      expect(r.pass, JSON.stringify(r.tensors)).toBe(true);
    });
  }
});

const lraArgs = {
  encoder_layers: 1,
  encoder_embed_dim: 8,
  encoder_hidden_dim: 12,
  encoder_ffn_embed_dim: 10,
  z_dim: 4,
  n_dim: 2,
  chunk_size: 4,
  truncation_length: null,
  max_positions: 32,
  norm_type: 'layernorm',
  encoder_normalize_before: false,
  attention_activation_fn: 'softmax',
  classifier_out_dim: 6,
  sentence_class_num: 3,
  input_type: 'text',
  sen_rep_type: 'mp',
};

describe('LRAModel', () => {
  it('chunk-pads text, pools over the original length and handles dual input', () => {
    const m = new LRAModel(lraArgs, task, { dtype: 'f64', gen: new Generator(1) });
    m.eval();
    const toks = tensor(
      [
        [5, 6, 7, 8, 9, 10],
        [5, 6, 7, 1, 1, 1],
      ],
      'i32',
    );
    const lens = tensor([6, 3], [2], 'i32');
    const logits = noGrad(() => m.forward(toks, lens));
    expect(logits.shape).toEqual([2, 3]);
    // the padded example equals the same example alone, padded to the chunk size
    const alone = noGrad(() => m.forward(tensor([[5, 6, 7, 1]], 'i32'), tensor([3], [1], 'i32')));
    for (let j = 0; j < 3; j++) expect(logits.at(1, j)).toBeCloseTo(alone.at(0, j), 12);
    const dual = new LRAModel({ ...lraArgs, classifier_in_dim: 16 }, task, { dtype: 'f64' });
    expect(noGrad(() => dual.forward(toks, lens, { srcTokens: toks, srcLengths: lens })).shape).toEqual([2, 3]);
    const loss = lraCrossEntropy(logits, tensor([0, 2], [2], 'i32'));
    const lp = [0, 1].map((b) => {
      const row = [0, 1, 2].map((j) => logits.at(b, j));
      const mx = Math.max(...row);
      return row[[0, 2][b]] - mx - Math.log(row.reduce((s, v) => s + Math.exp(v - mx), 0));
    });
    expect(loss.item()).toBeCloseTo(-(lp[0] + lp[1]), 12);
  });
});

const smallDec = {
  decoder_layers: 2,
  decoder_embed_dim: 8,
  decoder_hidden_dim: 12,
  decoder_ffn_embed_dim: 10,
  decoder_z_dim: 4,
  decoder_n_dim: 2,
  decoder_chunk_size: -1,
  normalization_type: 'layernorm',
  normalize_before: true,
  truncation_length: null,
  max_target_positions: 32,
};

describe('MegaLanguageModel', () => {
  it('ties the output projection to the input embedding when asked', () => {
    const tied = new MegaLanguageModel({ ...smallDec, share_decoder_input_output_embed: true }, task);
    const sd = tied.stateDict();
    expect(sd['decoder.output_projection.weight']).toBe(sd['decoder.embed_tokens.weight']);
    const untied = new MegaLanguageModel(smallDec, task);
    expect(untied.numParameters() - tied.numParameters()).toBe(20 * 8);
    expect(() => new MegaLanguageModel({ ...smallDec, adaptive_input: true }, task)).toThrow(/adaptive_input_cutoff/);
    expect(
      () => new MegaLanguageModel({ ...smallDec, adaptive_input: true, adaptive_input_cutoff: '8', share_decoder_input_output_embed: true }, task),
    ).toThrow(/cannot be used with --adaptive-input/);
    expect(() => new MegaLanguageModel({ ...smallDec, tie_adaptive_weights: true, adaptive_softmax_cutoff: '8' }, task)).toThrow(/needs --adaptive-input/);
  });

  it('token-by-token incremental logits equal the full causal pass', () => {
    const m = new MegaLanguageModel(smallDec, task, { dtype: 'f64', gen: new Generator(4) });
    m.eval();
    const toks = tensor(
      [
        [2, 5, 6, 7, 8],
        [2, 9, 4, 4, 6],
      ],
      'i32',
    );
    noGrad(() => {
      const full = m.forward(toks);
      const st = new IncrementalState();
      for (let t = 0; t < 5; t++) {
        const step = m.forward(K.copy(V.narrow(toks, 1, t, 1)), st);
        for (let v = 0; v < 20; v++) expect(step.at(0, 0, v)).toBeCloseTo(full.at(0, t, v), 11);
      }
    });
  });
});

describe('MegaModel', () => {
  const nmtArgs = {
    ...smallDec,
    encoder_layers: 1,
    encoder_embed_dim: 8,
    encoder_hidden_dim: 12,
    encoder_ffn_embed_dim: 10,
    encoder_z_dim: 4,
    encoder_n_dim: 2,
    encoder_chunk_size: -1,
    max_source_positions: 32,
    share_all_embeddings: true,
    decoder_layers: 1,
  };
  it('shares one embedding matrix and reorders beams consistently', () => {
    const m = new MegaModel(nmtArgs, task, { dtype: 'f64', gen: new Generator(8) });
    m.eval();
    const sd = m.stateDict();
    expect(sd['encoder.embed_tokens.weight']).toBe(sd['decoder.embed_tokens.weight']);
    expect(sd['decoder.output_projection.weight']).toBe(sd['decoder.embed_tokens.weight']);
    const src = tensor(
      [
        [1, 5, 6, 2],
        [1, 5, 6, 2],
      ],
      'i32',
    ); // two beams of one (left-padded) sentence
    const prev = tensor(
      [
        [2, 5, 6],
        [2, 7, 7],
      ],
      'i32',
    );
    noGrad(() => {
      const full = m.forward(src, prev).logits;
      // decode the beams swapped for two steps, then reorder them back and finish (cross-attention
      // keys of equal batch size are kept, as in the reference: beams share their source)
      const order = tensor([1, 0], [2], 'i32');
      let enc = m.reorderEncoderOut(m.encoder.forward(src), order);
      const st = new IncrementalState();
      const swapped = K.indexSelect(prev, 0, order);
      for (let t = 1; t <= 2; t++) m.decoder.forward(K.copy(V.narrow(swapped, 1, 0, t)), enc, { state: st });
      m.reorderIncrementalState(st, order);
      enc = m.reorderEncoderOut(enc, order);
      const last = m.decoder.forward(prev, enc, { state: st }).logits; // B × 1 × V
      for (let b = 0; b < 2; b++) for (let v = 0; v < 20; v++) expect(last.at(b, 0, v)).toBeCloseTo(full.at(b, 2, v), 11);
    });
  });
});

describe('speech classifier (sc_raw)', () => {
  const tiny = {
    encoder_layers: 1,
    encoder_embed_dim: 4,
    encoder_hidden_dim: 6,
    encoder_ffn_embed_dim: 6,
    z_dim: 4,
    n_dim: 2,
    chunk_size: 4,
    truncation_length: 8,
    max_positions: 16,
    norm_type: 'batchnorm',
    encoder_normalize_before: true,
    attention_activation_fn: 'laplace',
    classifier_out_dim: 8,
    sentence_class_num: 3,
    dropout: 0,
  };

  it('maps B × L waveforms to B × classes and rejects lengths that are not chunk multiples', () => {
    const m = new SCRawModel(tiny, { dtype: 'f64', gen: new Generator(9) });
    expect(m.forward(randNormal([3, 8], 0, 1, 'f64', new Generator(1))).shape).toEqual([3, 3]);
    expect(() => m.forward(randNormal([3, 6], 0, 1, 'f64'))).toThrow(/multiple of chunk_size/);
    const names = m.namedParameters().map(([n]) => n);
    expect(names).toContain('encoder.encoder.embed_tokens.weight');
    expect(names).toContain('encoder.encoder.final_norm.norm.weight');
    expect(names).toContain('classifier.0.0.weight');
    expect(names).toContain('sentence_projection_layer.weight');
  });

  it('passes a gradient check (input and parameters of every block)', () => {
    const m = new SCRawModel(tiny, { dtype: 'f64', gen: new Generator(10) });
    const x = randNormal([2, 8], 0, 1, 'f64', new Generator(11));
    x.requiresGrad = true;
    const sd = m.stateDict();
    const picks = [
      'encoder.encoder.embed_tokens.weight',
      'encoder.encoder.layers.0.mega_layer.move.delta',
      'encoder.encoder.layers.0.mega_layer.rel_pos_bias.rel_pos_bias',
      'encoder.encoder.layers.0.nffn.fc1.bias',
      'encoder.encoder.final_norm.norm.weight',
      'classifier.0.0.weight',
    ];
    const r = gradcheck((xx) => m.forward(xx), [x, ...picks.map((k) => sd[k])], { atol: 1e-6, rtol: 1e-5 });
    expect(r.ok, r.where).toBe(true);
    const loss = sum(m.forward(x));
    backward(loss);
    expect(sd['sentence_projection_layer.weight'].grad).not.toBeNull();
  });

  it('mega_sc_raw_big has 475 890 parameters (README: 476k)', () => {
    expect(buildModel('mega_sc_raw_big', {}, null).numParameters()).toBe(475890);
  });
});
