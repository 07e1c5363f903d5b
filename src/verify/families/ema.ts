/**
 * Golden adapter: MultiHeadEMA. `forward` runs the full-sequence path on `x` (+ `padding_mask`);
 * `incremental` feeds each step's `x` in order through one IncrementalState and reports `out`
 * and `state:ema_state.prev_state` after every step.
 */
import { IncrementalState } from '../../mega/incremental.js';
import { MultiHeadEMA } from '../../mega/ema.js';
import type { Tensor } from '../../tensor/tensor.js';
import { registerAdapter, type Named } from '../adapters.js';

registerAdapter('MultiHeadEMA', {
  build: (c, dtype) => {
    const k = c.config as { embed_dim: number; ndim?: number; bidirectional?: boolean; truncation?: number | null };
    return new MultiHeadEMA(k.embed_dim, k.ndim ?? 2, { bidirectional: k.bidirectional ?? false, truncation: k.truncation ?? null, dtype });
  },
  forward: (m, inputs) => ({ out: (m as MultiHeadEMA).forward(inputs.x, inputs.padding_mask ?? null) }),
  incremental: (m, _inputs, steps) => {
    const ema = m as MultiHeadEMA;
    const state = new IncrementalState();
    return steps.map((s) => {
      const out: Named = { out: ema.forward(s.x, s.padding_mask ?? null, state) };
      for (const [k, v] of Object.entries(state.named(ema))) if (typeof v !== 'number') out[k] = v as Tensor | null;
      return out;
    });
  },
});
