/** Golden adapter: SequenceNorm. */
import { SequenceNorm, type NormType } from '../../nn/norm.js';
import { registerAdapter } from '../adapters.js';

registerAdapter('SequenceNorm', {
  build: (c, dtype) => {
    const k = c.config as { norm_type: NormType; embedding_dim: number; eps?: number; affine?: boolean };
    return new SequenceNorm(k.norm_type, k.embedding_dim, { eps: k.eps, affine: k.affine, dtype });
  },
  forward: (m, inputs) => ({ out: (m as SequenceNorm).forward(inputs.x) }),
});
