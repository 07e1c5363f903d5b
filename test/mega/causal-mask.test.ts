/** `causalMask` against its definition, element by element. */
import { describe, expect, it } from 'vitest';
import { causalMask } from '../../src/mega/attention.js';

describe('causalMask', () => {
  it.each([1, 2, 5, 33, 128])('n=%i: softmax 0 on/below the diagonal and −∞ above; laplace / relu2 1 on/below and 0 above', (n) => {
    for (const dtype of ['f32', 'f64'] as const) {
      for (const act of ['softmax', 'laplace', 'relu2'] as const) {
        const m = causalMask(n, act, dtype);
        expect(m.shape).toEqual([n, n]);
        expect(m.dtype).toBe(dtype);
        const s = m.storage;
        for (let i = 0; i < n; i++) {
          for (let j = 0; j < n; j++) {
            const want = act === 'softmax' ? (j > i ? -Infinity : 0) : j <= i ? 1 : 0;
            if (!Object.is(s[i * n + j], want)) throw new Error(`${act} ${dtype} n=${n}: [${i}, ${j}] = ${s[i * n + j]}, expected ${want}`);
          }
        }
      }
    }
  });
});
