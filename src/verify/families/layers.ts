/**
 * Golden adapters: MegaSentenceEncoderLayer (constructor kwargs), MegaEncoderLayer and
 * MegaDecoderLayer (argparse fields, `no_cross_attention=False`), including the decoder layer's
 * token-by-token incremental procedure (self-attention cache, EMA state, static cross keys).
 */
import { noGrad } from '../../autograd/index.js';
import type { AttentionActivation } from '../../mega/attention.js';
import { IncrementalState } from '../../mega/incremental.js';
import { MegaDecoderLayer, MegaEncoderLayer, MegaSentenceEncoderLayer } from '../../mega/layers.js';
import type { NormType } from '../../nn/norm.js';
import { registerAdapter, type Named } from '../adapters.js';
import { stateOutputs } from './mega-layer.js';

/** The reference's MegaSentenceEncoderLayer kwargs. */
interface SentenceLayerConfig {
  embedding_dim: number;
  hidden_dim: number;
  ffn_hidden_dim: number;
  z_dim: number;
  n_dim: number;
  dropout: number;
  attention_dropout: number;
  hidden_dropout: number;
  chunk_size: number;
  truncation: number | null;
  rel_pos_bias: 'simple' | 'rotary';
  max_positions: number;
  activation: string;
  attention_activation: AttentionActivation;
  norm_type: NormType;
  prenorm: boolean;
  feature_dropout: boolean;
}

registerAdapter('MegaSentenceEncoderLayer', {
  build: (c, dtype) => {
    const k = c.config as unknown as SentenceLayerConfig;
    return new MegaSentenceEncoderLayer({
      embeddingDim: k.embedding_dim,
      hiddenDim: k.hidden_dim,
      ffnHiddenDim: k.ffn_hidden_dim,
      zDim: k.z_dim,
      nDim: k.n_dim,
      dropout: k.dropout,
      attentionDropout: k.attention_dropout,
      hiddenDropout: k.hidden_dropout,
      chunkSize: k.chunk_size,
      truncation: k.truncation,
      relPosBias: k.rel_pos_bias,
      maxPositions: k.max_positions,
      activation: k.activation,
      attentionActivation: k.attention_activation,
      normType: k.norm_type,
      prenorm: k.prenorm,
      featureDropout: k.feature_dropout,
      dtype,
    });
  },
  forward: (m, inputs) => ({ out: (m as MegaSentenceEncoderLayer).forward(inputs.x, inputs.x_padding_mask ?? null) }),
});

registerAdapter('MegaEncoderLayer', {
  build: (c, dtype) => new MegaEncoderLayer(c.config, { dtype }),
  forward: (m, inputs) => ({ out: (m as MegaEncoderLayer).forward(inputs.x, inputs.encoder_padding_mask ?? null) }),
});

registerAdapter('MegaDecoderLayer', {
  build: (c, dtype) => new MegaDecoderLayer(c.config, { dtype, noCrossAttention: false }),
  forward: (m, inputs, c) => {
    const r = (m as MegaDecoderLayer).forward(inputs.x, {
      encoderOut: inputs.encoder_out ?? null,
      encoderPaddingMask: inputs.encoder_padding_mask ?? null,
      attnMask: inputs.attn_mask ?? null,
      decoderPaddingMask: inputs.decoder_padding_mask ?? null,
      needAttn: Boolean(c.options?.need_attn),
    });
    return r.attn ? { out: r.out, attn: r.attn } : { out: r.out };
  },
  incremental: (m, inputs, steps, c) =>
    noGrad(() => {
      const layer = m as MegaDecoderLayer;
      const state = new IncrementalState();
      return steps.map((s) => {
        const r = layer.forward(s.x, {
          encoderOut: s.encoder_out ?? inputs.encoder_out ?? null,
          encoderPaddingMask: s.encoder_padding_mask ?? inputs.encoder_padding_mask ?? null,
          decoderPaddingMask: s.decoder_padding_mask ?? null,
          attnMask: s.attn_mask ?? null,
          state,
          needAttn: Boolean(c.options?.need_attn),
        });
        const o: Named = { out: r.out, ...stateOutputs(state, layer) };
        if (r.attn) o.attn = r.attn;
        return o;
      });
    }),
});
