// Section numbers (§) refer to docs/MEGA.md.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/nn/errors.js';
import { makeRelPosBias, RotaryRelativePositionalBias, SimpleRelativePositionalBias } from '../../src/mega/relpos.js';
import { Generator } from '../../src/tensor/random.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { expectGrad } from '../autograd/helpers.js';
import { expectClose } from '../../src/verify/compare.js';

/** Closed form of §4.2: Σ_k (a1b1 + a2b2)·cos((i−j)θ_k) + (a2b1 − a1b2)·sin((j−i)θ_k). */
function rotaryClosedForm(a: number[], b: number[], i: number, j: number): number {
  const h = a.length / 2;
  let s = 0;
  for (let k = 0; k < h; k++) {
    const th = Math.exp((-k * Math.log(10000)) / h);
    const [a1, a2, b1, b2] = [a[k], a[h + k], b[k], b[h + k]];
    s += (a1 * b1 + a2 * b2) * Math.cos((i - j) * th) + (a2 * b1 - a1 * b2) * Math.sin((j - i) * th);
  }
  return s;
}

/** The values of `f(i, j)` over the 2-d shape of `t`, row-major. */
function table(t: Tensor, f: (i: number, j: number) => number): number[] {
  const out: number[] = [];
  for (let i = 0; i < t.shape[0]; i++) for (let j = 0; j < t.shape[1]; j++) out.push(f(i, j));
  return out;
}

describe('SimpleRelativePositionalBias', () => {
  it('has rel_pos_bias [2M−1] with N(0, 0.02²) init', () => {
    const m = new SimpleRelativePositionalBias(50, { dtype: 'f64', gen: new Generator(1) });
    expect(m.namedParameters().map(([n, t]) => [n, t.shape])).toEqual([['rel_pos_bias', [99]]]);
    const w = m.rel_pos_bias.toArray();
    const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
    expect(std).toBeGreaterThan(0.012);
    expect(std).toBeLessThan(0.03);
  });
  it('equals w[M−1+j−i] for n < M and n = M', () => {
    const M = 6;
    const m = new SimpleRelativePositionalBias(M, { dtype: 'f64', gen: new Generator(2) });
    const w = m.rel_pos_bias.toArray();
    for (const n of [1, 4, M]) {
      const b = m.forward(n);
      expect(b.shape).toEqual([n, n]);
      expectClose(
        b,
        table(b, (i, j) => w[M - 1 + j - i]),
      );
    }
  });
  it('raises a ConfigError beyond max_positions', () => {
    const m = new SimpleRelativePositionalBias(4, { dtype: 'f64' });
    expect(() => m.forward(5)).toThrow(ConfigError);
    expect(() => m.forward(5)).toThrow(/5.*max_positions 4/);
  });
  it('gradcheck (f64)', () => {
    const m = new SimpleRelativePositionalBias(5, { dtype: 'f64', gen: new Generator(3) });
    expectGrad(() => m.forward(4), [m.rel_pos_bias]);
  });
});

describe('RotaryRelativePositionalBias', () => {
  it('has alpha, beta [1, Z]; odd Z is a ConfigError', () => {
    const m = new RotaryRelativePositionalBias(8, 16, { dtype: 'f64' });
    expect(m.namedParameters().map(([n, t]) => [n, t.shape])).toEqual([
      ['alpha', [1, 8]],
      ['beta', [1, 8]],
    ]);
    expect(() => new RotaryRelativePositionalBias(7, 16)).toThrow(ConfigError);
  });
  it('equals the §4.2 closed form and depends only on i − j, also beyond max_positions', () => {
    const m = new RotaryRelativePositionalBias(8, 4, { dtype: 'f64', gen: new Generator(4) });
    // scale the parameters up so that the check is not dominated by tiny values
    m.alpha.storage.forEach((v, i) => (m.alpha.storage[i] = v * 50));
    m.beta.storage.forEach((v, i) => (m.beta.storage[i] = v * 50));
    const a = m.alpha.toArray(),
      b = m.beta.toArray();
    for (const n of [3, 4, 11]) {
      const t = m.forward(n);
      expect(t.shape).toEqual([n, n]);
      expectClose(
        t,
        table(t, (i, j) => rotaryClosedForm(a, b, i, j)),
        { atol: 1e-13 },
      );
      expectClose(
        t,
        table(t, (i, j) => (i > 0 && j > 0 ? t.at(i - 1, j - 1) : t.at(i, j))),
        { atol: 1e-13 },
      );
    }
  });
  it('f32 tables and parameters give f32 output close to f64', () => {
    const m = new RotaryRelativePositionalBias(6, 8, { dtype: 'f32', gen: new Generator(5) });
    const t = m.forward(9);
    expect(t.dtype).toBe('f32');
    const a = m.alpha.toArray(),
      b = m.beta.toArray();
    expectClose(
      t,
      table(t, (i, j) => rotaryClosedForm(a, b, i, j)),
      { atol: 1e-6 },
    );
  });
  it('gradcheck (f64)', () => {
    const m = new RotaryRelativePositionalBias(6, 4, { dtype: 'f64', gen: new Generator(6) });
    expectGrad(() => m.forward(5), [m.alpha, m.beta]);
  });
});

describe('makeRelPosBias', () => {
  it('builds either kind', () => {
    expect(makeRelPosBias('simple', 8, 10)).toBeInstanceOf(SimpleRelativePositionalBias);
    const r = makeRelPosBias('rotary', 8, 10, { dtype: 'f64' });
    expect(r).toBeInstanceOf(RotaryRelativePositionalBias);
    expect(r.forward(3).dtype).toBe('f64');
    expect(() => makeRelPosBias('bogus' as 'simple', 8, 10)).toThrow(ConfigError);
  });
});
