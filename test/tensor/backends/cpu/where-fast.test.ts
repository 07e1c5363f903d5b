/** The masked-fill path of `where` (where-fast.ts) against the general kernel (elementwise.ts), bitwise. */
import { describe, expect, it } from 'vitest';
import { fromArray } from '../../../../src/tensor/create.js';
import { whereCpu } from '../../../../src/tensor/backends/cpu/elementwise.js';
import { isResident, residentScope } from '../../../../src/tensor/backends/cpu/resident.js';
import { whereFast } from '../../../../src/tensor/backends/cpu/where-fast.js';
import { Generator } from '../../../../src/tensor/random.js';
import { sizeOf } from '../../../../src/tensor/shape.js';
import type { Tensor } from '../../../../src/tensor/tensor.js';
import { permute, unsqueeze } from '../../../../src/tensor/view.js';

const g = new Generator(3);
const floats = (shape: number[], dtype: 'f32' | 'f64') => {
  const n = sizeOf(shape);
  const s = dtype === 'f32' ? new Float32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) s[i] = g.uniform() * 2 - 1;
  if (n > 3) [s[1], s[2]] = [NaN, -0];
  return fromArray(s, shape);
};
const mask = (shape: number[], p = 0.3) => fromArray(Uint8Array.from({ length: sizeOf(shape) }, () => (g.uniform() < p ? 1 : 0)), shape);
const scalarT = (v: number, dtype: 'f32' | 'f64') => fromArray(dtype === 'f32' ? Float32Array.of(v) : Float64Array.of(v), []);
const bytes = (t: Tensor) => Buffer.from((t.toTypedArray() as Float32Array).slice().buffer);

describe('whereFast (masked fill)', () => {
  const cases: [string, () => [Tensor, Tensor, Tensor]][] = [
    ['key padding mask [B,1,S] over scores [B,L,S], -inf fill, f32', () => [mask([2, 1, 37]), scalarT(-Infinity, 'f32'), floats([2, 5, 37], 'f32')]],
    ['the same, backward: where(mask, 0, g)', () => [mask([2, 1, 37]), scalarT(0, 'f32'), floats([2, 5, 37], 'f32')]],
    ['EMA padding mask [B,1,L] over a permuted view [B,D,L], f64', () => [mask([3, 1, 20]), scalarT(0, 'f64'), permute(floats([20, 3, 4], 'f64'), [1, 2, 0])]],
    ['value in the false branch: where(mask, x, 7)', () => [mask([4, 9]), floats([4, 9], 'f32'), scalarT(7, 'f32')]],
    ['full-shape mask, strided (transposed)', () => [permute(mask([9, 4]), [1, 0]), scalarT(1.5, 'f64'), floats([4, 9], 'f64')]],
    ['mask broadcast over the last axis [B,L,1]', () => [mask([2, 6, 1], 0.5), scalarT(-2, 'f32'), floats([2, 6, 11], 'f32')]],
    ['lower-rank mask [S] and 1-element value [1,1]', () => [mask([13]), fromArray(Float32Array.of(3), [1, 1]), floats([3, 13], 'f32')]],
    ['unsqueezed mask view, all true', () => [unsqueeze(mask([2, 8], 2), 1), scalarT(-Infinity, 'f32'), floats([2, 3, 8], 'f32')]],
  ];
  it.each(cases)('%s: bitwise the general kernel, ordinary and resident output', (_, make) => {
    const [c, a, b] = make();
    const ref = whereCpu(c, a, b);
    const got = whereFast(c, a, b);
    expect(got).not.toBeNull();
    expect(got!.shape).toEqual(ref.shape);
    expect(got!.dtype).toBe(ref.dtype);
    expect(bytes(got!).equals(bytes(ref))).toBe(true);
    residentScope(
      {},
      () => {
        const r = whereFast(c, a, b)!;
        expect(isResident(r.storage)).toBe(true);
        expect(bytes(r).equals(bytes(ref))).toBe(true);
      },
      () => [],
    );
  });

  it('declines what is not a masked fill (the general kernel runs)', () => {
    const c = mask([4, 5]);
    expect(whereFast(c, floats([4, 5], 'f32'), floats([4, 5], 'f32'))).toBeNull(); // two tensor branches
    expect(whereFast(c, scalarT(0, 'f32'), floats([1, 5], 'f32'))).toBeNull(); // the tensor branch is broadcast too
    expect(whereFast(c, scalarT(0, 'f64'), floats([4, 5], 'f32'))).toBeNull(); // dtypes differ
    expect(whereFast(mask([3, 5]), scalarT(0, 'f32'), floats([4, 5], 'f32'))).toBeNull(); // shapes do not broadcast
  });
});
