import { describe, expect, it } from 'vitest';
import { noGrad } from '../../src/autograd/index.js';
import { causalMask } from '../../src/mega/attention.js';
import { IncrementalState } from '../../src/mega/incremental.js';
import { layerOptionsFromArgs, MegaDecoderLayer, MegaEncoderLayer, MegaSentenceEncoderLayer } from '../../src/mega/layers.js';
import { fromArray } from '../../src/tensor/create.js';
import { Generator, randNormal } from '../../src/tensor/random.js';
import * as V from '../../src/tensor/view.js';
import * as K from '../../src/tensor/kernels.js';

const args = {
  encoder_embed_dim: 8,
  encoder_z_dim: 4,
  encoder_hidden_dim: 12,
  encoder_n_dim: 2,
  encoder_ffn_embed_dim: 10,
  encoder_chunk_size: -1,
  decoder_embed_dim: 8,
  decoder_z_dim: 4,
  decoder_hidden_dim: 12,
  decoder_n_dim: 2,
  decoder_ffn_embed_dim: 10,
  decoder_chunk_size: -1,
  dropout: 0.1,
  attention_dropout: 0.2,
  hidden_dropout: 0.3,
  activation_dropout: 0.4,
  feature_dropout: false,
  truncation_length: null,
  rel_pos_bias: 'simple',
  max_source_positions: 16,
  max_target_positions: 20,
  activation_fn: 'silu',
  attention_activation_fn: 'softmax',
  normalization_type: 'layernorm',
  normalize_before: true,
};

describe('layerOptionsFromArgs', () => {
  it('maps the argparse fields as the reference layers read them', () => {
    const enc = layerOptionsFromArgs(args, 'encoder');
    expect(enc.mega).toMatchObject({
      embedDim: 8,
      zdim: 4,
      hdim: 12,
      ndim: 2,
      bidirectional: true,
      maxPositions: 16,
      hiddenDropout: 0.3,
      dropout: 0.1,
      attentionDropout: 0.2,
      prenorm: true,
    });
    expect(enc.nffn).toMatchObject({ ffnHiddenDim: 10, hiddenDropout: 0.4, dropout: 0.1 });
    expect(enc.cross).toBeNull();
    const dec = layerOptionsFromArgs(args, 'decoder');
    expect(dec.mega).toMatchObject({ bidirectional: false, maxPositions: 20 });
    expect(dec.cross).toMatchObject({ embedDim: 8, zdim: 4, maxPositions: 20, hiddenDropout: 0.3 });
    expect(layerOptionsFromArgs(args, 'decoder', { noCrossAttention: true }).cross).toBeNull();
    expect(layerOptionsFromArgs({ ...args, encoder_ffn_embed_dim: 0 }, 'encoder').nffn).toBeNull();
  });

  it('uses the reference state-dict names', () => {
    const names = new MegaDecoderLayer(args, { dtype: 'f64' }).namedParameters().map(([n]) => n);
    expect(names).toContain('mega_layer.move.delta');
    expect(names).toContain('cross_attn.q_proj.weight');
    expect(names).toContain('nffn.fc2.bias');
    expect(new MegaDecoderLayer(args, { noCrossAttention: true }).namedParameters().some(([n]) => n.startsWith('cross_attn'))).toBe(false);
    expect(new MegaEncoderLayer(args).namedParameters().find(([n]) => n === 'mega_layer.move.delta')![1].shape).toEqual([16, 2, 1]);
  });
});

describe('MegaSentenceEncoderLayer', () => {
  const opts = {
    embeddingDim: 8,
    hiddenDim: 12,
    ffnHiddenDim: 10,
    zDim: 4,
    nDim: 2,
    chunkSize: 4,
    maxPositions: 16,
    attentionActivation: 'softmax' as const,
    normType: 'layernorm' as const,
    prenorm: false,
    dtype: 'f64' as const,
    gen: new Generator(3),
  };

  it('rejects a length >= chunk that is not a multiple of it', () => {
    const layer = new MegaSentenceEncoderLayer(opts);
    layer.eval();
    expect(() => layer.forward(randNormal([6, 2, 8], 0, 1, 'f64', new Generator(1)))).toThrow(/multiple of chunk_size 4/);
  });

  it('treats L < C as one chunk, equal to padding up to C (docs/MEGA.md §10 item 7)', () => {
    const layer = new MegaSentenceEncoderLayer(opts);
    layer.eval();
    const x3 = randNormal([3, 2, 8], 0, 1, 'f64', new Generator(2)); // L3 × B2 × D8
    const x4 = K.pad(x3, [
      [0, 1],
      [0, 0],
      [0, 0],
    ]);
    const mask = fromArray(new Uint8Array([0, 0, 0, 1, 0, 0, 0, 1]), [2, 4]);
    const [a, b] = noGrad(() => [layer.forward(x3), layer.forward(x4, mask)]);
    const bt = V.narrow(b, 0, 0, 3).toArray(),
      at = a.toArray();
    for (let i = 0; i < at.length; i++) expect(bt[i]).toBeCloseTo(at[i], 12);
  });
});

describe('MegaDecoderLayer incremental', () => {
  it('token-by-token decoding with chunk resets equals the causal forward (C = 3)', () => {
    const cargs = { ...args, decoder_chunk_size: 3, attention_activation_fn: 'laplace' };
    const layer = new MegaDecoderLayer(cargs, { dtype: 'f64', gen: new Generator(5) });
    layer.eval();
    const x = randNormal([6, 2, 8], 0, 1, 'f64', new Generator(6));
    const enc = randNormal([5, 2, 8], 0, 1, 'f64', new Generator(7));
    noGrad(() => {
      const full = layer.forward(x, { encoderOut: enc, attnMask: causalMask(3, 'laplace', 'f64') }).out.toArray();
      const state = new IncrementalState();
      const steps: number[] = [];
      for (let t = 0; t < 6; t++) steps.push(...layer.forward(K.copy(V.narrow(x, 0, t, 1)), { encoderOut: enc, state }).out.toArray());
      for (let i = 0; i < full.length; i++) expect(steps[i]).toBeCloseTo(full[i], 12);
    });
  });
});
