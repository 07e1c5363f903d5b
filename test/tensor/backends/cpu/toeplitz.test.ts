/**
 * The Toeplitz kernels of the simple relative-position bias: the CPU kernels (row slices) are
 * bitwise the `indexSelect` / `indexAdd` of the Toeplitz index that they replace — f32 sums
 * included, where the order of the additions shows — for contiguous and strided operands, inside
 * and outside a resident scope; the WebAssembly SIMD kernels equal them bit for bit (one thread,
 * two, every job split into the smallest tasks); the generic kernels (what a device backend runs)
 * equal them too; bad operands are refused.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DTypeError, ShapeError } from '../../../../src/tensor/errors.js';
import { copyCpu } from '../../../../src/tensor/backends/cpu/elementwise.js';
import { indexAddCpu, indexSelectCpu } from '../../../../src/tensor/backends/cpu/indexing.js';
import { residentScope } from '../../../../src/tensor/backends/cpu/resident.js';
import { getNumThreads, setNumThreads } from '../../../../src/tensor/backends/cpu/pool.js';
import { toeplitzCpu, toeplitzGradCpu } from '../../../../src/tensor/backends/cpu/toeplitz.js';
import { toeplitzGradSimd, toeplitzSimd } from '../../../../src/tensor/backends/cpu/toeplitz-simd.js';
import { simdTuning } from '../../../../src/tensor/backends/cpu/wasm/runtime.js';
import { toeplitzGeneric, toeplitzGradGeneric } from '../../../../src/tensor/backends/generic-fused.js';
import { fromArray } from '../../../../src/tensor/create.js';
import type { FloatDType } from '../../../../src/tensor/dtype.js';
import { Generator, randNormal } from '../../../../src/tensor/random.js';
import { Tensor } from '../../../../src/tensor/tensor.js';
import * as V from '../../../../src/tensor/view.js';
import { sameBits } from './bits.js';

const gen = new Generator(23);
const threads = getNumThreads();

afterEach(() => {
  simdTuning.force = false;
  setNumThreads(threads);
});

/** The index `M − 1 + j − i` over (i, j), row-major, built here from the definition. */
function index(n: number, M: number): Tensor {
  const idx: number[] = [];
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) idx.push(M - 1 + j - i);
  return fromArray(Int32Array.from(idx), [n * n]);
}

describe('toeplitz kernels', () => {
  for (const dt of ['f32', 'f64'] as FloatDType[]) {
    it(`forward: the indexSelect of the Toeplitz index, bit for bit (${dt}; strided w; resident)`, () => {
      for (const [M, n] of [
        [1, 1],
        [6, 1],
        [6, 4],
        [6, 6],
        [64, 50],
      ]) {
        const w = randNormal([2 * M - 1], 0, 1, dt, gen);
        const ref = V.reshape(indexSelectCpu(w, 0, index(n, M)), [n, n]);
        expect(sameBits(toeplitzCpu(w, n), ref)).toBe(true);
        expect(sameBits(toeplitzGeneric(w, n), ref)).toBe(true);
        // every other element of a longer vector
        const wide = randNormal([2 * (2 * M - 1)], 0, 1, dt, gen);
        const strided = new Tensor(wide.data, [2 * M - 1], [2], 1);
        expect(sameBits(toeplitzCpu(strided, n), V.reshape(indexSelectCpu(copyCpu(strided), 0, index(n, M)), [n, n]))).toBe(true);
        residentScope(
          {},
          () => expect(sameBits(toeplitzCpu(w, n), ref)).toBe(true),
          () => [],
        );
      }
      expect(toeplitzCpu(randNormal([7], 0, 1, dt, gen), 0).shape).toEqual([0, 0]);
    });

    it(`backward: the indexAdd of the Toeplitz index, bit for bit (${dt}; transposed g; resident)`, () => {
      for (const [M, n] of [
        [1, 1],
        [6, 4],
        [6, 6],
        [200, 150],
      ]) {
        // wide value ranges, so that f32 sums taken in another order would differ
        const g = V.reshape(randNormal([n * n], 0, 1, dt, gen), [n, n]);
        for (let k = 0; k < g.size; k += 3) g.storage[k] *= 1e4;
        const ref = indexAddCpu([2 * M - 1], 0, index(n, M), V.reshape(g, [n * n]));
        expect(sameBits(toeplitzGradCpu(g, 2 * M - 1), ref)).toBe(true);
        expect(sameBits(toeplitzGradGeneric(g, 2 * M - 1), ref)).toBe(true);
        const gT = V.transpose(g, 0, 1); // a strided view [n, n]
        const refT = indexAddCpu([2 * M - 1], 0, index(n, M), V.reshape(copyCpu(gT), [n * n]));
        expect(sameBits(toeplitzGradCpu(gT, 2 * M - 1), refT)).toBe(true);
        expect(sameBits(toeplitzGradGeneric(gT, 2 * M - 1), refT)).toBe(true);
        residentScope(
          {},
          () => expect(sameBits(toeplitzGradCpu(g, 2 * M - 1), ref)).toBe(true),
          () => [],
        );
      }
    });
  }

  for (const dt of ['f32', 'f64'] as FloatDType[]) {
    it(`SIMD kernels: the plain-TS kernels bit for bit (${dt}; 1 and 2 threads, smallest tasks; strided; resident)`, () => {
      for (const [M, n] of [
        [1, 1],
        [6, 5],
        [6, 6],
        [300, 257],
        [200, 200],
      ]) {
        const w = randNormal([2 * M - 1], 0, 1, dt, gen);
        const g = V.reshape(randNormal([n * n], 0, 1, dt, gen), [n, n]);
        for (let k = 0; k < g.size; k += 3) g.storage[k] *= 1e4;
        const gT = V.transpose(g, 0, 1);
        const fwd = toeplitzCpu(w, n),
          bwd = toeplitzGradCpu(g, 2 * M - 1),
          bwdT = toeplitzGradCpu(gT, 2 * M - 1);
        for (const [t, force] of [
          [1, false],
          [2, false],
          [2, true],
        ] as [number, boolean][]) {
          setNumThreads(t);
          simdTuning.force = force;
          const check = () => {
            const f = toeplitzSimd(w, n),
              b = toeplitzGradSimd(g, 2 * M - 1),
              bT = toeplitzGradSimd(gT, 2 * M - 1);
            if (n * n < 256 && !force) return; // small: the plain-TS kernels run
            expect(f && b && bT).toBeTruthy();
            expect(sameBits(f!, fwd)).toBe(true);
            expect(sameBits(b!, bwd)).toBe(true);
            expect(sameBits(bT!, bwdT)).toBe(true);
          };
          check();
          residentScope({}, check, () => []);
        }
      }
    });
  }

  it('refuses bad operands', () => {
    const w = randNormal([9], 0, 1, 'f32', gen); // M = 5
    for (const f of [toeplitzCpu, toeplitzSimd, toeplitzGeneric]) {
      expect(() => f(w, 6)).toThrow(ShapeError);
      expect(() => f(w, 2.5)).toThrow(ShapeError);
      expect(() => f(w, -1)).toThrow(ShapeError);
      expect(() => f(randNormal([8], 0, 1, 'f32', gen), 2)).toThrow(/2M − 1/);
      expect(() => f(randNormal([3, 3], 0, 1, 'f32', gen), 2)).toThrow(ShapeError);
      expect(() => f(fromArray(Int32Array.from([1, 2, 3]), [3]), 1)).toThrow(DTypeError);
    }
    for (const f of [toeplitzGradCpu, toeplitzGradSimd, toeplitzGradGeneric]) {
      expect(() => f(randNormal([6, 6], 0, 1, 'f32', gen), 9)).toThrow(/n ≤ 5/);
      expect(() => f(randNormal([3, 4], 0, 1, 'f32', gen), 9)).toThrow(ShapeError);
      expect(() => f(randNormal([3, 3], 0, 1, 'f32', gen), 8)).toThrow(/2M − 1/);
      expect(() => f(fromArray(Int32Array.from([1, 2, 3, 4]), [2, 2]), 3)).toThrow(DTypeError);
    }
  });
});
