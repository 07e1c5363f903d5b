/**
 * numpy's legacy generator, checked against numbers printed by numpy 2.4 (`np.random.seed`,
 * `permutation`, `shuffle`, `choice`, `randint(0, 2**32, dtype=uint64)`), whose legacy stream is
 * the same as numpy 1.24's (the release's).
 */
import { describe, expect, it } from 'vitest';
import { NumpyRandomState } from '../../../src/data/fairseq/numpy-random.js';
import { DataError } from '../../../src/data/errors.js';

describe('NumpyRandomState', () => {
  it('raw 32-bit words equal MT19937 / numpy for seeds 5489 and 1', () => {
    const a = new NumpyRandomState(5489);
    expect([a.nextUint32(), a.nextUint32(), a.nextUint32()]).toEqual([3499211612, 581869302, 3890346734]);
    const b = new NumpyRandomState(1);
    expect(Array.from({ length: 5 }, () => b.nextUint32())).toEqual([1791095845, 4282876139, 3093770124, 4005303368, 491263]);
  });

  it('permutation equals np.random.permutation', () => {
    expect(Array.from(new NumpyRandomState(0).permutation(10))).toEqual([2, 8, 4, 9, 1, 6, 7, 3, 0, 5]);
    expect(Array.from(new NumpyRandomState(1).permutation(60))).toEqual([
      39, 41, 2, 48, 50, 44, 33, 35, 40, 27, 24, 53, 46, 3, 26, 36, 21, 10, 52, 19, 42, 56, 17, 31, 49, 32, 47, 38, 55, 13, 22, 51, 30, 34, 23, 4, 14, 29, 28,
      54, 58, 18, 59, 20, 25, 6, 45, 7, 57, 1, 16, 0, 15, 5, 11, 9, 8, 12, 43, 37,
    ]);
    const p = Array.from(new NumpyRandomState(12345).permutation(1000));
    expect(p.slice(0, 8)).toEqual([144, 833, 270, 468, 962, 186, 942, 516]);
    expect(p.slice(-8)).toEqual([357, 382, 425, 420, 129, 285, 485, 482]);
    expect(Array.from(new NumpyRandomState(4294967295).permutation(7))).toEqual([1, 5, 0, 6, 4, 2, 3]);
  });

  it('a long permutation (many state regenerations) matches numpy', () => {
    const p = new NumpyRandomState(2026).permutation(70000);
    expect(Array.from(p.subarray(0, 5))).toEqual([16375, 33989, 66341, 17183, 44044]);
    let s = 0n;
    for (let i = 0; i < p.length; i++) s += BigInt(p[i]) * BigInt(i);
    expect(Number(s % 1000000007n)).toBe(712039400);
  });

  it('shuffle of a list equals np.random.shuffle', () => {
    const x = [0, 1, 2, 3, 4, 5, 6, 7, 8];
    new NumpyRandomState(3).shuffle(x);
    expect(x).toEqual([6, 2, 7, 4, 5, 0, 3, 1, 8]);
  });

  it('choice with replacement equals np.random.choice', () => {
    expect(new NumpyRandomState(1).choice([32, 48, 64], 20)).toEqual([48, 32, 32, 48, 48, 32, 32, 48, 32, 48, 32, 64, 48, 64, 32, 64, 48, 64, 32, 32]);
    expect(new NumpyRandomState(7).choice([1, 2, 3, 4, 5], 12)).toEqual([5, 2, 4, 4, 5, 2, 1, 2, 3, 3, 1, 5]);
    expect(new NumpyRandomState(1).choice([32, 48, 64], 300).slice(-10)).toEqual([64, 48, 64, 32, 32, 32, 32, 64, 64, 32]);
  });

  it('array seeding equals np.random.RandomState([42, seed, epoch])', () => {
    const r = new NumpyRandomState(0);
    r.seedArray([42, 1, 2]);
    expect(Array.from({ length: 4 }, () => r.nextUint32())).toEqual([3677367077, 3152908158, 4133059577, 911461947]);
    r.seedArray([42, 1, 3]);
    expect(r.choice([32, 48, 64], 10)).toEqual([32, 64, 64, 64, 64, 48, 48, 32, 64, 48]);
  });

  it('re-seeding restarts the stream', () => {
    const r = new NumpyRandomState(9);
    const a = Array.from(r.permutation(20));
    r.seed(9);
    expect(Array.from(r.permutation(20))).toEqual(a);
  });

  it('rejects seeds numpy rejects', () => {
    expect(() => new NumpyRandomState(-1)).toThrow(DataError);
    expect(() => new NumpyRandomState(2 ** 32)).toThrow(/between 0 and 2\*\*32 - 1/);
    expect(() => new NumpyRandomState(1.5)).toThrow(DataError);
  });
});
