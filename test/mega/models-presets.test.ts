/**
 * Registered architectures (docs/MEGA.md §8.5): defaults and parameter counts against the §8.7 formula
 * (per Mega layer, simple bias: EMA 4·D'·N + D; v_proj D·H + H; mx_proj (D+1)(Z+H+2D);
 * h_proj H·D + D; gamma/beta 4Z; bias 2M'−1; NFFN 2·D·F + F + D; plus the norms).
 */
import { describe, expect, it } from 'vitest';
import { archArgs, archNames, buildModel } from '../../src/mega/models/presets.js';

const normP = (t: string, D: number): number => (t === 'scalenorm' ? 1 : t === 'rmsnorm' ? D : 2 * D);
const mega = (D: number, Z: number, H: number, N: number, bidir: boolean, Mp: number, norm: string): number =>
  4 * (bidir ? 2 * D : D) * N + D + (D * H + H) + (D + 1) * (Z + H + 2 * D) + (H * D + D) + 4 * Z + (2 * Mp - 1) + normP(norm, D);
const nffn = (D: number, F: number, norm: string): number => 2 * D * F + F + D + normP(norm, D);
const cross = (D: number, Z: number, M: number, norm: string): number =>
  D * Z + Z + (D * D + D) + (D * (2 * D + Z) + 2 * D + Z) + (D * D + D) + (2 * M - 1) + normP(norm, D);

const V = 20;
const task = { dictionary_size: V, pad: 1 };

/** LRA / SC model count from its args. */
function lraCount(a: Record<string, unknown>): number {
  const n = (k: string) => a[k] as number;
  const D = n('encoder_embed_dim'),
    H = n('encoder_hidden_dim'),
    F = n('encoder_ffn_embed_dim'),
    Z = n('z_dim'),
    N = n('n_dim');
  const C = n('chunk_size'),
    norm = a.norm_type as string;
  const layer = mega(D, Z, H, N, true, C > 0 ? C : n('max_positions'), norm) + nffn(D, F, norm);
  const embed = a.input_type === 'image' || a.arch?.toString().includes('sc_raw') ? 2 * D : V * D;
  const out = n('classifier_out_dim');
  return (
    embed +
    n('encoder_layers') * layer +
    (a.encoder_normalize_before ? normP(norm, D) : 0) +
    (n('classifier_in_dim') * out + out) +
    out * n('sentence_class_num')
  );
}

describe('registered architectures', () => {
  it('lists the reference arch names', () => {
    for (const a of [
      'mega',
      'mega_wmt_en_de',
      'mega_wmt_en_de_big',
      'mega_lm',
      'mega_lm_big',
      'mega_lm_adaptive_big',
      'mega_lm_wiki103',
      'mega_lm_adaptive_base',
      'mega_lm_enwik8_base',
      'mega_lm_enwik8_large',
      'mega_lra_listop',
      'mega_lra_imdb',
      'mega_lra_aan',
      'mega_lra_cifar10',
      'mega_lra_pf32',
      'mega_lra_pf128',
      'sc_raw',
      'mega_sc_raw',
      'mega_sc_raw_base',
      'mega_sc_raw_big',
    ]) {
      expect(archNames()).toContain(a);
    }
  });

  it('fills defaults with getattr semantics (given fields win, decoder inherits encoder sizes)', () => {
    const a = archArgs('mega_wmt_en_de_big', { dropout: 0.2 });
    expect(a).toMatchObject({
      encoder_embed_dim: 1024,
      decoder_embed_dim: 1024,
      decoder_hidden_dim: 2048,
      decoder_ffn_embed_dim: 2048,
      decoder_z_dim: 256,
      decoder_chunk_size: -1,
      dropout: 0.2,
      attention_dropout: 0.1,
      activation_dropout: 0.1,
      truncation_length: 1024,
    });
    expect(archArgs('mega_lra_listop')).toMatchObject({
      attention_activation_fn: 'relu2',
      attention_dropout: 0.1,
      act_dropout: 0,
      norm_type: 'scalenorm',
      max_positions: 2002,
      classifier_in_dim: 80,
      encoder_normalize_before: false,
    });
    expect(archArgs('mega_lra_aan').norm_type).toBeUndefined();
    expect(archArgs('mega_lra_aan').classifier_in_dim).toBe(256);
    expect(archArgs('mega_lm').activation_dropout).toBeUndefined();
    expect(archArgs('mega_lm_enwik8_base')).toMatchObject({
      decoder_layers: 12,
      decoder_hidden_dim: 1024,
      decoder_ffn_embed_dim: 1024,
      activation_dropout: 0,
      truncation_length: 2048,
    });
    expect(() => archArgs('mega_nope')).toThrow(/unknown arch/);
  });

  it('keeps the reference build failures', () => {
    expect(() => buildModel('mega_lra_aan', {}, task)).toThrow(/norm_type/);
    expect(() => buildModel('mega_lm', { decoder_layers: 1 }, task)).toThrow(/activation_dropout/);
    // the WikiText-103 cutoffs 20000,60000 do not fit a small dictionary
    expect(() => buildModel('mega_lm_adaptive_base', { decoder_layers: 1 }, task)).toThrow(/adaptive_input_cutoff.*larger than the vocabulary/);
  });

  for (const [arch, over] of [
    ['mega_lra_listop', {}],
    ['mega_lra_imdb', {}],
    ['mega_lra_aan', { norm_type: 'scalenorm' }],
    ['mega_lra_cifar10', {}],
    ['mega_lra_pf32', { encoder_normalize_before: true }],
    ['mega_lra_pf128', {}],
    ['mega_sc_raw_base', {}],
    ['mega_sc_raw_big', {}],
  ] as [string, Record<string, unknown>][]) {
    it(`${arch}: parameter count = §8.7 formula`, () => {
      const m = buildModel(arch, over, task);
      expect(m.numParameters()).toBe(lraCount(archArgs(arch, over)));
    });
  }

  it('mega_sc_raw_base / big: 6 layers, C 1000, laplace, batchnorm prenorm; big = 475 890 parameters', () => {
    expect(lraCount(archArgs('mega_sc_raw_big'))).toBe(475890);
    expect(archArgs('sc_raw')).toMatchObject({
      encoder_embed_dim: 60,
      chunk_size: 1000,
      attention_activation_fn: 'laplace',
      norm_type: 'batchnorm',
      encoder_normalize_before: true,
    });
  });

  it('mega (NMT, one layer each side): parameter count = §8.7 formula', () => {
    const m = buildModel('mega', { encoder_layers: 1, decoder_layers: 1 }, task);
    const D = 512,
      H = 1024,
      Z = 128,
      N = 16;
    const expected =
      3 * V * D + // encoder / decoder embeddings and output projection (not shared by default)
      mega(D, Z, H, N, true, 1024, 'layernorm') +
      nffn(D, H, 'layernorm') +
      mega(D, Z, H, N, false, 1024, 'layernorm') +
      cross(D, Z, 1024, 'layernorm') +
      nffn(D, H, 'layernorm');
    expect(m.numParameters()).toBe(expected);
    const shared = buildModel('mega', { encoder_layers: 1, decoder_layers: 1, share_all_embeddings: true }, task);
    expect(shared.numParameters()).toBe(expected - 2 * V * D);
  });

  it('mega_lm_enwik8_base (one layer, prenorm non-affine final norm, tied): parameter count = §8.7 formula', () => {
    const m = buildModel(
      'mega_lm_enwik8_base',
      { decoder_layers: 1, normalize_before: true, no_affine_final_norm: true, share_decoder_input_output_embed: true },
      task,
    );
    const D = 512,
      H = 1024,
      Z = 128,
      N = 16;
    expect(m.numParameters()).toBe(V * D + mega(D, Z, H, N, false, 1024, 'layernorm') + nffn(D, H, 'layernorm'));
  });
});
