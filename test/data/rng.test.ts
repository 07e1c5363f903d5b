import { describe, expect, it } from 'vitest';
import { deriveSeed, Rng } from '../../src/data/rng.js';

describe('Rng (mulberry32)', () => {
  it('is deterministic per seed and restorable from its state', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const xs = Array.from({ length: 5 }, () => a.nextU32());
    expect(Array.from({ length: 5 }, () => b.nextU32())).toEqual(xs);
    expect(new Rng(43).nextU32()).not.toBe(xs[0]);
    const s = a.state;
    const next = a.next();
    a.state = s;
    expect(a.next()).toBe(next);
  });

  it('matches the reference mulberry32 formula', () => {
    // independent transcription of the published one-liner
    const ref = (seed: number) => () => {
      seed |= 0;
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const r = ref(12345);
    const g = new Rng(12345);
    for (let i = 0; i < 100; i++) expect(g.next()).toBe(r());
  });

  it('draws integers in range, roughly uniformly', () => {
    const g = new Rng(7);
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 10000; i++) counts[g.int(10)]!++;
    for (const c of counts) expect(c).toBeGreaterThan(850);
    for (let i = 0; i < 100; i++) {
      const v = g.intBetween(2, 4);
      expect(v >= 2 && v <= 4).toBe(true);
    }
    expect(() => g.int(0)).toThrow(RangeError);
  });

  it('makes permutations and derives distinct sub-seeds', () => {
    const p = new Rng(1).permutation(50);
    expect(Array.from(p).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(deriveSeed(1, 1)).not.toBe(deriveSeed(1, 2));
    expect(deriveSeed(1, 2)).toBe(deriveSeed(1, 2));
  });
});
