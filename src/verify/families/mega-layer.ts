/** Golden adapter: MovingAverageGatedAttention (forward and token-by-token incremental). */
import { noGrad } from '../../autograd/index.js';
import type { GoldenCase } from '../../io/golden.js';
import { MovingAverageGatedAttention, type AttentionActivation } from '../../mega/attention.js';
import { IncrementalState } from '../../mega/incremental.js';
import type { Module } from '../../nn/module.js';
import type { NormType } from '../../nn/norm.js';
import { full } from '../../tensor/create.js';
import type { FloatDType } from '../../tensor/dtype.js';
import { registerAdapter, type Named } from '../adapters.js';

/** The reference's MovingAverageGatedAttention kwargs. */
interface MegaConfig {
  embed_dim: number;
  zdim: number;
  hdim: number;
  ndim: number;
  dropout: number;
  attention_dropout: number;
  hidden_dropout: number;
  activation: string;
  attention_activation: AttentionActivation;
  bidirectional: boolean;
  chunk_size: number;
  truncation: number | null;
  norm_type: NormType;
  prenorm: boolean;
  norm_affine: boolean;
  feature_dropout: boolean;
  rel_pos_bias: 'simple' | 'rotary';
  max_positions: number;
}

/** The incremental state as golden step outputs; integer entries become 0-d i32 tensors. */
export function stateOutputs(state: IncrementalState, root: Module): Named {
  const out: Named = {};
  for (const [k, v] of Object.entries(state.named(root))) out[k] = typeof v === 'number' ? full([], v, 'i32') : v;
  return out;
}

/** Builds the layer from a golden case's config. */
export function buildMega(c: GoldenCase, dtype: FloatDType): MovingAverageGatedAttention {
  const k = c.config as unknown as MegaConfig;
  return new MovingAverageGatedAttention({
    embedDim: k.embed_dim,
    zdim: k.zdim,
    hdim: k.hdim,
    ndim: k.ndim,
    dropout: k.dropout,
    attentionDropout: k.attention_dropout,
    hiddenDropout: k.hidden_dropout,
    activation: k.activation,
    attentionActivation: k.attention_activation,
    bidirectional: k.bidirectional,
    chunkSize: k.chunk_size,
    truncation: k.truncation,
    normType: k.norm_type,
    prenorm: k.prenorm,
    normAffine: k.norm_affine,
    featureDropout: k.feature_dropout,
    relPosBias: k.rel_pos_bias,
    maxPositions: k.max_positions,
    dtype,
  });
}

registerAdapter('MovingAverageGatedAttention', {
  build: buildMega,
  forward: (m, inputs, c) => {
    const r = (m as MovingAverageGatedAttention).forward(inputs.x, {
      paddingMask: inputs.padding_mask ?? null,
      attnMask: inputs.attn_mask ?? null,
      needWeights: Boolean(c.options?.need_weights),
    });
    return r.attnWeights ? { out: r.out, attn_weights: r.attnWeights } : { out: r.out };
  },
  incremental: (m, inputs, steps, c) =>
    noGrad(() => {
      const layer = m as MovingAverageGatedAttention;
      const state = new IncrementalState();
      return steps.map((s) => {
        const r = layer.forward(s.x, {
          paddingMask: s.padding_mask ?? null,
          attnMask: s.attn_mask ?? null,
          state,
          needWeights: Boolean(c.options?.need_weights),
        });
        const o: Named = { out: r.out, ...stateOutputs(state, layer) };
        if (r.attnWeights) o.attn_weights = r.attnWeights;
        return o;
      });
    }),
});
