/** Golden adapters: SimpleRelativePositionalBias and RotaryRelativePositionalBias (`out` = forward(seq_len)). */
import { RotaryRelativePositionalBias, SimpleRelativePositionalBias } from '../../mega/relpos.js';
import { registerAdapter } from '../adapters.js';

registerAdapter('SimpleRelativePositionalBias', {
  build: (c, dtype) => new SimpleRelativePositionalBias((c.config as { max_positions: number }).max_positions, { dtype }),
  forward: (m, _inputs, c) => ({ out: (m as SimpleRelativePositionalBias).forward(c.options.seq_len as number) }),
});

registerAdapter('RotaryRelativePositionalBias', {
  build: (c, dtype) => {
    const k = c.config as { embed_dim: number; max_positions: number };
    return new RotaryRelativePositionalBias(k.embed_dim, k.max_positions, { dtype });
  },
  forward: (m, _inputs, c) => ({ out: (m as RotaryRelativePositionalBias).forward(c.options.seq_len as number) }),
});
