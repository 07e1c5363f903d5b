/** The bulk paths of the generator: forUniforms and dropoutMask against the one-draw-at-a-time definitions. */
import { describe, expect, it } from 'vitest';
import { dropoutMask, Generator } from '../../src/tensor/random.js';

describe('Generator.fillUniforms', () => {
  it('gives the values of repeated uniform() calls and leaves the same state', () => {
    const a = new Generator(1234),
      b = new Generator(1234);
    const one = Array.from({ length: 1000 }, () => a.uniform());
    const bulk = new Float64Array(1200).fill(-1);
    b.fillUniforms(bulk, 1000);
    expect(Array.from(bulk.subarray(0, 1000))).toEqual(one);
    expect(bulk[1000]).toBe(-1);
    expect(b.getState()).toEqual(a.getState());
    expect(b.uniform()).toBe(a.uniform());
  });
});

describe('dropoutMask', () => {
  it.each([
    ['f32', 0.1],
    ['f32', 0.3],
    ['f64', 0.1],
  ] as const)('%s p=%s: u rounded to the dtype ≥ p → 1/(1−p) in the dtype, else 0, one draw per element', (dtype, p) => {
    const g = new Generator(7),
      ref = new Generator(7);
    const m = dropoutMask([40, 110], p, dtype, g); // more than one 4096-draw chunk
    const r = dtype === 'f32' ? Math.fround : (v: number) => v;
    const scale = r(1 / (1 - p));
    const expected = Array.from({ length: 4400 }, () => (r(ref.uniform()) >= r(p) ? scale : 0));
    expect(Array.from(m.storage)).toEqual(expected);
    expect(m.shape).toEqual([40, 110]);
    expect(m.dtype).toBe(dtype);
    expect(g.getState()).toEqual(ref.getState());
    const kept = expected.filter((v) => v !== 0).length / 4400;
    expect(Math.abs(kept - (1 - p))).toBeLessThan(0.05);
  });
});
