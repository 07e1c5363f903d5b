/**
 * The row paths of indexSelectFast / indexAddFast (indexing-fast.ts: embedding lookups and their
 * gradients) against the general kernels of indexing.ts, bit for bit: every dtype, the indexed
 * axis first or in the middle, short rows (element loop) and long ones (`set`), repeated indices
 * (the sums keep the general kernel's order), bad indices.
 */
import { describe, expect, it } from 'vitest';
import { indexAddFast, indexSelectFast } from '../../../../src/tensor/backends/cpu/indexing-fast.js';
import { indexAddCpu, indexSelectCpu } from '../../../../src/tensor/backends/cpu/indexing.js';
import { fromArray } from '../../../../src/tensor/create.js';
import type { DType } from '../../../../src/tensor/dtype.js';
import { Generator, randNormal } from '../../../../src/tensor/random.js';
import { fromStorage, type Tensor } from '../../../../src/tensor/tensor.js';
import * as V from '../../../../src/tensor/view.js';

const gen = new Generator(5);

function tensor(shape: number[], dtype: DType): Tensor {
  if (dtype === 'f32' || dtype === 'f64') return randNormal(shape, 0, 1, dtype, gen);
  const n = shape.reduce((a, b) => a * b, 1);
  return fromStorage(
    Int32Array.from({ length: n }, (_, i) => ((i * 7919) % 1000) - 500),
    shape,
  );
}

const bitsOf = (t: Tensor) =>
  Array.from(new Uint8Array(t.storage.buffer, t.storage.byteOffset + t.offset * t.storage.BYTES_PER_ELEMENT, t.size * t.storage.BYTES_PER_ELEMENT));

describe('indexSelectFast / indexAddFast rows', () => {
  for (const dtype of ['f32', 'f64', 'i32'] as DType[]) {
    it(`equal the general kernels (${dtype})`, () => {
      for (const [shape, axis] of [
        [[50, 40], 0], // an embedding table, rows of 40
        [[50, 5], 0], // short rows
        [[3, 50, 20], 1], // the indexed axis in the middle
      ] as [number[], number][]) {
        const x = tensor(shape, dtype);
        const n = shape[axis];
        const idx = fromArray(
          Int32Array.from({ length: 73 }, (_, i) => (i * 17) % n),
          [73],
        ); // repeats
        const got = indexSelectFast(x, axis, idx);
        expect(got).not.toBeNull();
        const want = indexSelectCpu(x, axis, idx);
        expect(got!.shape).toEqual(want.shape);
        expect(bitsOf(got!)).toEqual(bitsOf(want));
        const g = tensor(want.shape as number[], dtype);
        const sum = indexAddFast(shape, axis, idx, g);
        expect(sum).not.toBeNull();
        expect(bitsOf(sum!)).toEqual(bitsOf(indexAddCpu(shape, axis, idx, g)));
      }
    });
  }

  it('declines strided sources and reports bad indices', () => {
    const x = tensor([20, 30], 'f32');
    const idx = fromArray(Int32Array.from([0, 3, 19]), [3]);
    expect(indexSelectFast(V.transpose(x, 0, 1), 0, idx)).toBeNull();
    expect(indexAddFast([20, 30], 0, idx, V.transpose(tensor([30, 3], 'f32'), 0, 1))).toBeNull();
    const bad = fromArray(Int32Array.from([0, 20]), [2]);
    expect(() => indexSelectFast(x, 0, bad)).toThrow(/index 20 is out of range for axis 0 of size 20/);
    expect(() => indexAddFast([20, 30], 0, bad, tensor([2, 30], 'f32'))).toThrow(/index 20 is out of range/);
  });
});
