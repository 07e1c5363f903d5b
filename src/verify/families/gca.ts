/** Golden adapter: GatedCrossAttention (forward and static-key incremental decoding). */
import { noGrad } from '../../autograd/index.js';
import type { AttentionActivation } from '../../mega/attention.js';
import { GatedCrossAttention } from '../../mega/cross-attention.js';
import { IncrementalState } from '../../mega/incremental.js';
import type { NormType } from '../../nn/norm.js';
import { registerAdapter, type Named } from '../adapters.js';
import { stateOutputs } from './mega-layer.js';

/** The reference's GatedCrossAttention kwargs. */
interface GCAConfig {
  embed_dim: number;
  zdim: number;
  ndim: number;
  dropout: number;
  attention_dropout: number;
  hidden_dropout: number;
  activation: string;
  attention_activation: AttentionActivation;
  norm_type: NormType;
  prenorm: boolean;
  norm_affine: boolean;
  feature_dropout: boolean;
  rel_pos_bias: 'simple' | 'rotary';
  max_positions: number;
}

registerAdapter('GatedCrossAttention', {
  build: (c, dtype) => {
    const k = c.config as unknown as GCAConfig;
    return new GatedCrossAttention({
      embedDim: k.embed_dim,
      zdim: k.zdim,
      ndim: k.ndim,
      dropout: k.dropout,
      attentionDropout: k.attention_dropout,
      hiddenDropout: k.hidden_dropout,
      activation: k.activation,
      attentionActivation: k.attention_activation,
      normType: k.norm_type,
      prenorm: k.prenorm,
      normAffine: k.norm_affine,
      featureDropout: k.feature_dropout,
      relPosBias: k.rel_pos_bias,
      maxPositions: k.max_positions,
      dtype,
    });
  },
  forward: (m, inputs, c) => {
    const r = (m as GatedCrossAttention).forward(inputs.query, inputs.key, {
      keyPaddingMask: inputs.key_padding_mask ?? null,
      needWeights: Boolean(c.options?.need_weights),
    });
    return r.attnWeights ? { out: r.out, attn_weights: r.attnWeights } : { out: r.out };
  },
  incremental: (m, inputs, steps, c) =>
    noGrad(() => {
      const gca = m as GatedCrossAttention;
      const state = new IncrementalState();
      return steps.map((s) => {
        const r = gca.forward(s.query, s.key ?? inputs.key, {
          keyPaddingMask: s.key_padding_mask ?? inputs.key_padding_mask ?? null,
          state,
          needWeights: Boolean(c.options?.need_weights),
        });
        const o: Named = { out: r.out, ...stateOutputs(state, gca) };
        if (r.attnWeights) o.attn_weights = r.attnWeights;
        return o;
      });
    }),
});
