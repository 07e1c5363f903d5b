// Section numbers (§) refer to docs/MEGA.md.
import { describe, expect, it } from 'vitest';
import { IncrementalState } from '../../src/mega/incremental.js';
import { EMA_STATE, lengthsToPaddingMask, MultiHeadEMA } from '../../src/mega/ema.js';
import { ConfigError } from '../../src/nn/errors.js';
import { ShapeError } from '../../src/tensor/errors.js';
import * as F from '../../src/autograd/index.js';
import { Generator, randNormal } from '../../src/tensor/random.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { expectGrad, leaf } from '../autograd/helpers.js';
import { expectClose } from '../../src/verify/compare.js';

const sig = (v: number) => 1 / (1 + Math.exp(-v));
const silu = (v: number) => v * sig(v);

/** An f64 EMA with parameters moved away from their init (as the golden cases do). */
function makeEMA(D: number, N: number, opts: { bidirectional?: boolean; truncation?: number | null } = {}, seed = 7): MultiHeadEMA {
  const gen = new Generator(seed);
  const m = new MultiHeadEMA(D, N, { ...opts, dtype: 'f64', gen });
  for (const t of m.parameters()) t.storage.forEach((v, i) => (t.storage[i] = v + 0.3 * gen.normal()));
  return m;
}

/** Plain-JS coefficients p·beta, q, gamma·scale per (row, n) (pow instead of exp·log). */
function coeffs(m: MultiHeadEMA) {
  const N = m.ndim,
    rows = m.delta.shape[0];
  const [de, al, be, ga] = [m.delta, m.alpha, m.beta, m.gamma].map((t) => t.toArray());
  const pb: number[] = [],
    q: number[] = [],
    g: number[] = [];
  for (let i = 0; i < rows * N; i++) {
    const p = sig(de[i]);
    pb.push(p * be[i]);
    q.push(1 - p * sig(al[i]));
    g.push(ga[i] * m.scale);
  }
  return { N, rows, pb, q, g };
}

/** k[d, l] of §5.3 with Math.pow. */
function refKernel(m: MultiHeadEMA, K: number): number[][] {
  const { N, rows, pb, q, g } = coeffs(m);
  return Array.from({ length: rows }, (_, d) =>
    Array.from({ length: K }, (_, l) => {
      let s = 0;
      for (let n = 0; n < N; n++) s += pb[d * N + n] * q[d * N + n] ** l * g[d * N + n];
      return s;
    }),
  );
}

/** The direct O(L·K) sums of §5.5 steps 4–6: x `L × B × D`, mask `B × L` → `L × B × D` (flat). */
function directForward(m: MultiHeadEMA, x: Tensor, mask: Tensor | null): number[] {
  const [L, B, D] = x.shape;
  const K = m.truncation === null ? L : Math.min(m.truncation, L);
  const k = refKernel(m, K),
    om = m.omega.toArray();
  const xm = (t: number, b: number, d: number) => (t < 0 || t >= L || (mask && mask.at(b, t)) ? 0 : x.at(t, b, d));
  const out: number[] = [];
  for (let t = 0; t < L; t++)
    for (let b = 0; b < B; b++)
      for (let d = 0; d < D; d++) {
        let y = 0;
        for (let l = 0; l < K; l++) {
          y += k[d][l] * xm(t - l, b, d);
          if (m.bidirectional) y += k[D + d][l] * xm(t + l, b, d);
        }
        out.push(silu(y + om[d] * x.at(t, b, d)));
      }
  return out;
}

/** The untruncated causal recurrence of §5.6: outputs `L × B × D` (flat) and final state `B × D × N` (flat). */
function recurrence(m: MultiHeadEMA, x: Tensor): { out: number[]; h: number[] } {
  const [L, B, D] = x.shape;
  const { N, pb, q, g } = coeffs(m);
  const om = m.omega.toArray();
  const h = new Array<number>(B * D * N).fill(0);
  const out: number[] = [];
  for (let t = 0; t < L; t++)
    for (let b = 0; b < B; b++)
      for (let d = 0; d < D; d++) {
        let y = 0;
        for (let n = 0; n < N; n++) {
          const i = (b * D + d) * N + n,
            c = d * N + n;
          h[i] = q[c] * h[i] + pb[c] * x.at(t, b, d);
          y += g[c] * h[i];
        }
        out.push(silu(y + om[d] * x.at(t, b, d)));
      }
  return { out, h };
}

const input = (shape: number[], seed = 11) => randNormal(shape, 0, 1, 'f64', new Generator(seed));

describe('MultiHeadEMA parameters', () => {
  it('has the reference names, shapes and beta sign pattern', () => {
    const m = new MultiHeadEMA(3, 4, { bidirectional: true, dtype: 'f64', gen: new Generator(1) });
    expect(m.namedParameters().map(([n, t]) => [n, t.shape])).toEqual([
      ['delta', [6, 4, 1]],
      ['alpha', [6, 4, 1]],
      ['beta', [6, 4, 1]],
      ['gamma', [6, 4]],
      ['omega', [3]],
    ]);
    const beta = m.beta.toArray();
    for (let i = 0; i < beta.length; i++) expect(Math.abs(beta[i] - ((i % 4) % 2 === 0 ? 1 : -1))).toBeLessThan(0.1);
    expect(new MultiHeadEMA(3, 2).delta.shape).toEqual([3, 2, 1]);
  });
  it('treats truncation ≤ 0 as unlimited', () => {
    expect(new MultiHeadEMA(2, 2, { truncation: 0 }).truncation).toBeNull();
    expect(new MultiHeadEMA(2, 2, { truncation: -1 }).truncation).toBeNull();
    const a = makeEMA(2, 2, { truncation: 0 }),
      b = makeEMA(2, 2, { truncation: null });
    const x = input([6, 1, 2]);
    expect(a.forward(x).toArray()).toEqual(b.forward(x).toArray());
  });
});

describe('MultiHeadEMA full-sequence path', () => {
  // Lengths are chosen so that the fftConv kernel takes its FFT branch (L·Lk > 6·n·log2 n).
  const cases: [string, { bidirectional: boolean; truncation: number | null }, number, number[] | null][] = [
    ['causal, untruncated', { bidirectional: false, truncation: null }, 200, null],
    ['causal, truncated, padding', { bidirectional: false, truncation: 150 }, 600, [600, 431]],
    ['bidirectional, untruncated, padding', { bidirectional: true, truncation: null }, 200, [170, 200]],
    ['bidirectional, truncated', { bidirectional: true, truncation: 150 }, 600, null],
  ];
  for (const [name, opts, L, lengths] of cases) {
    it(`FFT convolution equals the direct sum: ${name}`, () => {
      const m = makeEMA(2, 3, opts);
      const x = input([L, 2, 2]);
      const mask = lengths ? lengthsToPaddingMask(lengths, L) : null;
      expectClose(m.forward(x, mask).toArray(), directForward(m, x, mask), { rtol: 1e-12 });
    });
  }
  it('short sequences (direct kernel branch) and K = min(truncation, L)', () => {
    const m = makeEMA(3, 2, { bidirectional: true, truncation: 4 });
    for (const L of [1, 3, 9]) {
      const x = input([L, 2, 3], L);
      expectClose(m.forward(x).toArray(), directForward(m, x, null), { rtol: 1e-13 });
    }
    expect(m.kernel(3).shape).toEqual([6, 3]);
    expect(m.kernel(9).shape).toEqual([6, 4]);
  });
  it('untruncated causal output equals the recurrence of §5.6', () => {
    const m = makeEMA(3, 4);
    const x = input([40, 2, 3]);
    expectClose(m.forward(x).toArray(), recurrence(m, x).out, { rtol: 1e-12 });
  });
  it('f32 parameters and input give f32 output close to f64', () => {
    const m = makeEMA(2, 2, { bidirectional: true });
    const x = input([12, 2, 2]);
    const m32 = new MultiHeadEMA(2, 2, { bidirectional: true, dtype: 'f32' });
    m32.loadStateDict(m.stateDict());
    const y = m32.forward(F.cast(x, 'f32'));
    expect(y.dtype).toBe('f32');
    expectClose(y.toArray(), m.forward(x).toArray(), { rtol: 1e-5 });
  });
});

describe('MultiHeadEMA incremental path', () => {
  for (const truncation of [null, 3]) {
    it(`segments with carried state reproduce the untruncated causal forward (truncation ${truncation})`, () => {
      const m = makeEMA(3, 4, { truncation });
      const L = 14,
        x = input([L, 2, 3]);
      const ref = recurrence(m, x);
      const state = new IncrementalState();
      const outs: number[] = [];
      let at = 0;
      for (const n of [1, 3, 1, 4, 2, 1, 2]) {
        outs.push(...m.forward(F.narrow(x, 0, at, n), null, state).toArray());
        at += n;
      }
      expect(at).toBe(L);
      expectClose(outs, ref.out, { rtol: 1e-12 });
      const h = state.get(m, EMA_STATE)?.prev_state as Tensor;
      expect(h.shape).toEqual([2, 3, 4]);
      expectClose(h.toArray(), ref.h, { rtol: 1e-12 });
      if (truncation === null) expectClose(outs, m.forward(x).toArray(), { rtol: 1e-12 });
    });
  }
  it('a padding mask zeroes the stepped input as in the full forward', () => {
    const m = makeEMA(2, 2);
    const x = input([6, 2, 2]);
    const mask = lengthsToPaddingMask([6, 4], 6);
    const state = new IncrementalState();
    const a = m.forward(F.narrow(x, 0, 0, 3), F.narrow(mask, 1, 0, 3), state).toArray();
    const b = m.forward(F.narrow(x, 0, 3, 3), F.narrow(mask, 1, 3, 3), state).toArray();
    expectClose([...a, ...b], m.forward(x, mask).toArray(), { rtol: 1e-12 });
  });
  it('bidirectional + incremental is a ConfigError', () => {
    const m = makeEMA(2, 2, { bidirectional: true });
    expect(() => m.forward(input([2, 1, 2]), null, new IncrementalState())).toThrow(ConfigError);
  });
  it('rejects a wrong input width or mask shape with a ShapeError (as MovingAverageGatedAttention does)', () => {
    const m = makeEMA(2, 2);
    expect(() => m.forward(input([3, 1, 4]))).toThrow(ShapeError);
    expect(() => m.forward(input([3, 1, 2]), lengthsToPaddingMask([2], 2))).toThrow(ShapeError);
  });
});

describe('MultiHeadEMA gradients (f64 gradcheck)', () => {
  const params = (m: MultiHeadEMA) => [m.delta, m.alpha, m.beta, m.gamma, m.omega];
  it('causal, truncated, padding mask', () => {
    const m = makeEMA(2, 2, { truncation: 3 });
    const mask = lengthsToPaddingMask([5, 3], 5);
    expectGrad((x) => m.forward(x, mask), [leaf([5, 2, 2]), ...params(m)]);
  });
  it('bidirectional, untruncated and truncated, padding mask', () => {
    const mask = lengthsToPaddingMask([4, 5], 5);
    const m = makeEMA(2, 2, { bidirectional: true });
    expectGrad((x) => m.forward(x, mask), [leaf([5, 2, 2]), ...params(m)]);
    const t = makeEMA(2, 2, { bidirectional: true, truncation: 2 });
    expectGrad((x) => t.forward(x), [leaf([5, 2, 2]), ...params(t)]);
  });
  it('incremental one-step and multi-step with a carried state', () => {
    const m = makeEMA(2, 2);
    expectGrad(
      (x1, x2, x3) => {
        const state = new IncrementalState();
        m.forward(x1, null, state);
        m.forward(x2, null, state);
        const y = m.forward(x3, null, state);
        return F.concat([F.reshape(y, [-1]), F.reshape(state.get(m, EMA_STATE)!.prev_state as Tensor, [-1])], 0);
      },
      [leaf([1, 2, 2]), leaf([3, 2, 2]), leaf([2, 2, 2]), ...params(m)],
    );
  });
});
