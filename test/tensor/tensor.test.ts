import { describe, expect, it } from 'vitest';
import * as F from '../../src/autograd/index.js';
import { arange, full, tensor, zeros } from '../../src/tensor/create.js';
import { DTypeError, IndexError, ShapeError } from '../../src/tensor/errors.js';
import * as K from '../../src/tensor/kernels.js';
import { Generator, randNormal } from '../../src/tensor/random.js';
import * as V from '../../src/tensor/view.js';

describe('views', () => {
  const x = tensor(
    [
      [1, 2, 3],
      [4, 5, 6],
    ],
    'f64',
  );
  it('reshape is a view when strides allow, a copy otherwise', () => {
    const r = V.reshape(x, [3, 2]);
    expect(r.storage).toBe(x.storage);
    expect(r.toArray()).toEqual([1, 2, 3, 4, 5, 6]);
    const t = V.transpose(x, 0, 1);
    expect(t.isContiguous()).toBe(false);
    const flat = V.reshape(t, [-1]);
    expect(flat.toArray()).toEqual([1, 4, 2, 5, 3, 6]);
    expect(flat.storage).not.toBe(x.storage);
    // [2,3] transposed then split on its first axis stays a view
    expect(V.reshape(V.unsqueeze(t, 0), [1, 3, 2]).storage).toBe(x.storage);
  });
  it('permute, narrow, expand, squeeze, unsqueeze, flip share storage', () => {
    expect(V.permute(x, [1, 0]).toArray()).toEqual([1, 4, 2, 5, 3, 6]);
    expect(V.narrow(x, 1, 1, 2).toArray()).toEqual([2, 3, 5, 6]);
    expect(V.expand(tensor([7, 8], [2, 1], 'f64'), [2, 3]).toArray()).toEqual([7, 7, 7, 8, 8, 8]);
    expect(V.squeeze(zeros([1, 3, 1])).shape).toEqual([3]);
    expect(V.unsqueeze(x, -1).shape).toEqual([2, 3, 1]);
    const f = V.flip(x, [0, 1]);
    expect(f.storage).toBe(x.storage);
    expect(f.toArray()).toEqual([6, 5, 4, 3, 2, 1]);
    expect(V.contiguous(f).toArray()).toEqual([6, 5, 4, 3, 2, 1]);
  });
  it('creation and casts', () => {
    expect(arange(4).toArray()).toEqual([0, 1, 2, 3]);
    expect(full([2], 2.5, 'f32').toArray()).toEqual([2.5, 2.5]);
    expect(K.cast(tensor([1.7, -1.7, 0], [3], 'f64'), 'i32').toArray()).toEqual([1, -1, 0]);
    expect(K.cast(tensor([0.5, 0], [2], 'f32'), 'bool').toArray()).toEqual([1, 0]);
  });
});

describe('seeded RNG (xoshiro128**, Box–Muller)', () => {
  it('is reproducible and restorable', () => {
    const a = randNormal([100], 0, 1, 'f64', new Generator(42)).toArray();
    expect(randNormal([100], 0, 1, 'f64', new Generator(42)).toArray()).toEqual(a);
    expect(randNormal([100], 0, 1, 'f64', new Generator(43)).toArray()).not.toEqual(a);
    const g = new Generator(5);
    g.uniform();
    const s = g.getState();
    const next = [g.uniform(), g.uniform()];
    g.setState(s);
    expect([g.uniform(), g.uniform()]).toEqual(next);
    const m = a.reduce((p, v) => p + v, 0) / a.length;
    expect(Math.abs(m)).toBeLessThan(0.35);
  });
});

describe('bad input gives typed errors that name the op and the values', () => {
  const a = zeros([2, 3], 'f64');
  it('shape mismatches', () => {
    expect(() => F.add(a, zeros([4], 'f64'))).toThrow(ShapeError);
    expect(() => F.add(a, zeros([4], 'f64'))).toThrow(/add: shapes \[2,3\] and \[4\]/);
    expect(() => F.matmul(a, zeros([2, 3], 'f64'))).toThrow(/matmul: inner dimensions differ/);
    expect(() => V.reshape(a, [4, 2])).toThrow(/cannot view 6 elements as \[4,2\]/);
  });
  it('invalid axes and indices', () => {
    expect(() => F.sum(a, 2)).toThrow(IndexError);
    expect(() => F.narrow(a, 1, 2, 2)).toThrow(/narrow: range \[2, 4\)/);
    expect(() => F.embedding(zeros([3, 2], 'f64'), tensor([0, 3], [2], 'i32'))).toThrow(/index 3 is out of range for axis 0 of size 3/);
  });
  it('dtype mixes', () => {
    expect(() => F.add(a, zeros([2, 3], 'f32'))).toThrow(DTypeError);
    expect(() => F.add(a, zeros([2, 3], 'f32'))).toThrow(/add: operands have different dtypes \(f64 and f32\)/);
    expect(() => F.exp(zeros([2], 'i32'))).toThrow(/exp: expected a floating tensor, got i32/);
  });
});
