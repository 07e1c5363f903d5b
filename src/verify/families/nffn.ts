/** Golden adapter: NormalizedFeedForwardNetwork. */
import { NormalizedFeedForwardNetwork } from '../../mega/nffn.js';
import type { NormType } from '../../nn/norm.js';
import { registerAdapter } from '../adapters.js';

/** The reference's NormalizedFeedForwardNetwork kwargs. */
interface NFFNConfig {
  embed_dim: number;
  ffn_hidden_dim: number;
  dropout: number;
  hidden_dropout: number;
  activation: string;
  norm_type: NormType;
  prenorm: boolean;
  norm_affine: boolean;
  feature_dropout: boolean;
}

registerAdapter('NormalizedFeedForwardNetwork', {
  build: (c, dtype) => {
    const k = c.config as unknown as NFFNConfig;
    return new NormalizedFeedForwardNetwork({
      embedDim: k.embed_dim,
      ffnHiddenDim: k.ffn_hidden_dim,
      dropout: k.dropout,
      hiddenDropout: k.hidden_dropout,
      activation: k.activation,
      normType: k.norm_type,
      prenorm: k.prenorm,
      normAffine: k.norm_affine,
      featureDropout: k.feature_dropout,
      dtype,
    });
  },
  forward: (m, inputs) => ({ out: (m as NormalizedFeedForwardNetwork).forward(inputs.x) }),
});
