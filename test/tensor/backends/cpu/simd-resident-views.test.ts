/**
 * binarySimd on resident operands (inside a resident scope): views into a larger resident storage
 * (split pieces) are read in place, negative-stride views are staged, and small ops with a scalar
 * operand take the SIMD path; every result bitwise equal to the plain-TS kernel. fftConvSimd reads
 * a resident time-strided input (the [B, D, L] view of a time-major tensor) in place, bitwise
 * equal to the same convolution of a contiguous copy.
 */
import { describe, expect, it } from 'vitest';
import { binaryCpu } from '../../../../src/tensor/backends/cpu/elementwise.js';
import { residentScope } from '../../../../src/tensor/backends/cpu/resident.js';
import { binarySimd } from '../../../../src/tensor/backends/cpu/simd.js';
import { fftConvSimd } from '../../../../src/tensor/backends/cpu/fftconv-simd.js';
import type { FloatDType } from '../../../../src/tensor/dtype.js';
import { scalar } from '../../../../src/tensor/create.js';
import * as K from '../../../../src/tensor/kernels.js';
import { Generator, randNormal } from '../../../../src/tensor/random.js';
import type { Tensor } from '../../../../src/tensor/tensor.js';
import * as V from '../../../../src/tensor/view.js';

const gen = new Generator(21);

const bits = (t: Tensor) => Array.from(K.copy(t).storage);

describe('binarySimd on resident operands', () => {
  it('reads split pieces in place, stages flipped views, takes scalar ops from 256 elements', () => {
    const x = randNormal([32, 8, 96], 0, 1, 'f32', gen),
      c = randNormal([32, 8, 32], 0, 1, 'f32', gen),
      small = randNormal([64, 8, 1], 0, 1, 'f32', gen);
    const results: [Tensor | null, Tensor][] = [];
    residentScope(
      {},
      () => {
        const xr = K.binary(x, x, 'add'); // resident [32, 8, 96]
        const piece = V.narrow(xr, 2, 32, 32); // span ≈ 3× the op
        results.push([binarySimd(piece, c, 'add'), binaryCpu(piece, c, 'add')]);
        results.push([binarySimd(c, piece, 'mul'), binaryCpu(c, piece, 'mul')]);
        const flipped = V.flip(piece, [0]);
        results.push([binarySimd(flipped, c, 'sub'), binaryCpu(flipped, c, 'sub')]);
        const sr = K.binary(small, small, 'mul'); // resident [64, 8, 1]
        results.push([binarySimd(scalar(1, 'f32'), sr, 'sub'), binaryCpu(scalar(1, 'f32'), sr, 'sub')]);
        for (const [got] of results) expect(got).not.toBeNull();
        // copy the results out of the scope's blocks before it ends
        for (const r of results) {
          r[0] = K.copy(r[0]!);
          r[1] = K.copy(r[1]);
        }
      },
      () => results.flat(),
    );
    for (const [got, ref] of results) expect(bits(got!)).toEqual(bits(ref));
  });
});

describe('fftConvSimd on a resident strided input', () => {
  for (const dt of ['f32', 'f64'] as FloatDType[]) {
    it(`reads [B, D, L] views of a time-major tensor in place (${dt})`, () => {
      for (const [L, B, D, Lk] of [
        [40, 3, 5, 79], // 15 rows: dummy lanes in the last group
        [64, 4, 8, 64],
      ]) {
        const x0 = randNormal([L, B, D], 0, 1, dt, gen),
          k = randNormal([D, Lk], 0, 1, dt, gen);
        const pairs: Tensor[][] = [];
        residentScope(
          {},
          () => {
            const xr = K.binary(x0, x0, 'mul'); // resident [L, B, D]
            const xv = V.permute(xr, [1, 2, 0]); // [B, D, L], time stride B·D
            const flipped = V.flip(xv, [2]); // negative time stride: staged
            for (const v of [xv, flipped]) pairs.push([K.copy(fftConvSimd(v, k, 0, L)!), K.copy(fftConvSimd(K.copy(v), k, 0, L)!)]);
          },
          () => pairs.flat(),
        );
        for (const [got, ref] of pairs) expect(bits(got)).toEqual(bits(ref));
      }
    });
  }
});
