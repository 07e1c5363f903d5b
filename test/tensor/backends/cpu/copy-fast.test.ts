/**
 * The strided copy (copy-fast.ts) against an element-by-element gather computed here from the
 * view's strides: row layouts, transposes (tiled, partial tiles), slices, negative strides,
 * broadcast (stride-0) views, every dtype, and the axis collapsing it relies on.
 */
import { describe, expect, it } from 'vitest';
import { collapsedAxes, copyStrided } from '../../../../src/tensor/backends/cpu/copy-fast.js';
import { fromArray } from '../../../../src/tensor/create.js';
import type { DType } from '../../../../src/tensor/dtype.js';
import { Generator, randNormal } from '../../../../src/tensor/random.js';
import { fromStorage, Tensor } from '../../../../src/tensor/tensor.js';
import * as V from '../../../../src/tensor/view.js';
import { gathered } from './bits.js';

const gen = new Generator(3);

/** A tensor of `shape` and `dtype` holding distinct values (0, 1, … for integers; bool alternates). */
function base(shape: number[], dtype: DType): Tensor {
  if (dtype === 'f32' || dtype === 'f64') return randNormal(shape, 0, 1, dtype, gen);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = dtype === 'i32' ? Int32Array.from({ length: n }, (_, i) => i * 7 - 3) : Uint8Array.from({ length: n }, (_, i) => ((i * 5) % 3 === 0 ? 1 : 0));
  return fromStorage(data, shape);
}

function check(view: Tensor): void {
  const got = copyStrided(view)!;
  expect(got.shape).toEqual(view.shape);
  expect(got.isContiguous()).toBe(true);
  expect(Array.from(got.storage)).toEqual(gathered(view));
  expect(got.storage.constructor).toBe(view.storage.constructor);
}

describe('copyStrided', () => {
  for (const dtype of ['f32', 'f64', 'i32', 'bool'] as DType[]) {
    it(`copies views of every layout (${dtype})`, () => {
      const x = base([6, 37, 45], dtype);
      check(x); // contiguous
      check(V.narrow(x, 1, 3, 20)); // a window
      check(V.transpose(x, 0, 1)); // unit-stride rows
      check(V.transpose(x, 1, 2)); // transpose: tiled, partial tiles (37, 45 not multiples of 8)
      check(V.permute(x, [2, 0, 1])); // transpose with an outer axis between
      check(V.permute(x, [1, 2, 0])); // last axis strided, no unit-stride axis long enough
      check(V.flip(x, [2])); // negative inner stride
      check(V.flip(V.transpose(x, 1, 2), [0, 2]));
      check(V.expand(base([1, 45], dtype), [30, 45])); // broadcast rows
      check(V.expand(base([30, 1], dtype), [30, 45])); // broadcast columns (stride-0 last axis)
      check(V.reshape(V.transpose(base([40, 6, 16], dtype), 0, 1), [6, 5, 8, 16])); // chunked time-major layout
      check(V.narrow(base([50], dtype), 0, 7, 1)); // one element
      check(V.reshape(V.narrow(base([50], dtype), 0, 7, 1), [])); // a scalar view
    });
  }

  it('collapses size-1 and nested axes', () => {
    const x = fromArray(
      Array.from({ length: 120 }, (_, i) => i),
      [2, 1, 3, 4, 5],
      'f64',
    );
    expect(collapsedAxes(x)).toEqual([[120], [1]]);
    expect(collapsedAxes(V.transpose(x, 0, 2))).toEqual([
      [3, 2, 20],
      [20, 60, 1],
    ]);
    expect(collapsedAxes(V.narrow(x, 4, 0, 1))).toEqual([[24], [5]]);
  });

  it('leaves empty tensors to the generic loop', () => {
    expect(copyStrided(V.narrow(base([4, 5], 'f32'), 1, 2, 0))).toBeNull();
  });
});
