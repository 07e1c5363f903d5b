import { describe, expect, it } from 'vitest';
import { tensor } from '../../src/tensor/create.js';
import { checkClose, expectClose } from '../../src/verify/compare.js';

describe('checkClose / expectClose', () => {
  it('names the first element outside the tolerance with got / want, the count and the largest error', () => {
    const want = tensor(
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
      'f64',
    );
    const got = tensor(
      [
        [1, 2, 3.5],
        [4, 9, 6],
      ],
      'f64',
    );
    // tol = 0.1 + 0 · 6 = 0.1: elements [0, 2] (error 0.5) and [1, 1] (error 4) are out
    const r = checkClose(got, want, { atol: 0.1, what: 'logits' });
    expect(r.pass).toBe(false);
    expect(r.mismatches).toBe(2);
    expect(r.first).toEqual({ index: 2, at: [0, 2], got: 3.5, want: 3 });
    expect(r.maxErr).toBe(4);
    expect(r.scale).toBe(6);
    expect(r.message).toMatch(
      /^logits: 2 of 6 elements differ by more than tol 1\.000e-1 .*first at \[0, 2\]: got 3\.5, want 3; max error 4\.000e\+0 at \[1, 1\]$/,
    );
    expect(() => expectClose(got, want, { atol: 0.1, what: 'logits' })).toThrow(/first at \[0, 2\]: got 3\.5, want 3/);
  });

  it('applies FORMAT.md’s rule atol + rtol · max|want| (boundary included)', () => {
    const want = [10, -20, 0];
    // f32: tol = 1e-6 + 2e-4 · 20 = 0.004001
    expect(checkClose([10.004, -20, 0], want, { precision: 'f32' }).pass).toBe(true);
    expect(checkClose([10.0041, -20, 0], want, { precision: 'f32' }).pass).toBe(false);
    expect(checkClose([10, -20.002], [10, -20], { rtol: 1e-4 }).pass).toBe(true);
    expect(checkClose([10, -20.0021], [10, -20], { rtol: 1e-4 }).pass).toBe(false);
    expect(() => expectClose([1, 2], [1, 2])).not.toThrow(); // exact by default
    expect(() => expectClose([1, 2 + 1e-15], [1, 2])).toThrow(/first at \[1\]/);
  });

  it('NaN equals NaN; NaN against a number fails; shapes must match', () => {
    expect(checkClose([NaN, 1], [NaN, 1]).pass).toBe(true);
    const r = checkClose([1, NaN], [1, 2], { atol: 1 });
    expect(r.pass).toBe(false);
    expect(r.first).toEqual({ index: 1, at: [1], got: NaN, want: 2 });
    expect(r.maxErr).toBe(Infinity);
    expect(checkClose(tensor([1, 2, 3, 4], [2, 2], 'f64'), tensor([1, 2, 3, 4], [4], 'f64')).message).toMatch(/shape \[2, 2\] differs from the expected \[4\]/);
    expect(checkClose([1, 2], [1, 2, 3]).pass).toBe(false);
  });
});
