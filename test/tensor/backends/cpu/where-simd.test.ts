/**
 * whereSimd (the masked-fill form of `where`: one branch a single value) against the generic
 * kernel whereCpu, bitwise: attention- and EMA-style broadcast masks, both polarities, f32 and
 * f64, −∞ / NaN / −0 values, transposed and broadcast x, ordinary and resident operands, the pool
 * (forced SIMD splits every job into tasks), and the forms it declines.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { whereCpu } from '../../../../src/tensor/backends/cpu/elementwise.js';
import { getNumThreads, setNumThreads } from '../../../../src/tensor/backends/cpu/pool.js';
import { residentScope } from '../../../../src/tensor/backends/cpu/resident.js';
import { simdTuning } from '../../../../src/tensor/backends/cpu/wasm/runtime.js';
import { whereSimd } from '../../../../src/tensor/backends/cpu/where-simd.js';
import type { FloatDType } from '../../../../src/tensor/dtype.js';
import { scalar } from '../../../../src/tensor/create.js';
import * as K from '../../../../src/tensor/kernels.js';
import { Generator, randNormal } from '../../../../src/tensor/random.js';
import { fromStorage, type Tensor } from '../../../../src/tensor/tensor.js';
import * as V from '../../../../src/tensor/view.js';

const gen = new Generator(5);
const threads = getNumThreads();

afterEach(() => {
  simdTuning.force = false;
  setNumThreads(threads);
});

/** Bits of every element (NaN payloads and the sign of zero included). */
function bits(t: Tensor): number[] {
  const c = K.copy(t).storage as Float32Array | Float64Array;
  return Array.from(c instanceof Float32Array ? new Uint32Array(c.buffer, c.byteOffset, c.length) : new Uint32Array(c.buffer, c.byteOffset, 2 * c.length));
}

/** A padding mask: for batch b, positions ≥ len(b) are true (B × 1 × … × L after reshape). */
function padMask(B: number, L: number, shape: number[]): Tensor {
  const m = new Uint8Array(B * L);
  for (let b = 0; b < B; b++) for (let l = 0; l < L; l++) m[b * L + l] = l >= L - ((b * 7) % (L + 1)) ? 1 : 0;
  return fromStorage(m, shape);
}

/** x with a few −0, NaN and ±∞ entries. */
function special(shape: number[], dtype: FloatDType): Tensor {
  const x = K.copy(randNormal(shape, 0, 1, dtype, gen));
  const s = x.storage as Float32Array;
  s[0] = -0;
  s[1] = NaN;
  s[2] = Infinity;
  s[s.length - 1] = -Infinity;
  return x;
}

function check(cond: Tensor, a: Tensor, b: Tensor): void {
  const got = whereSimd(cond, a, b);
  expect(got).not.toBeNull();
  expect(got!.shape).toEqual(whereCpu(cond, a, b).shape);
  expect(bits(got!)).toEqual(bits(whereCpu(cond, a, b)));
}

describe('whereSimd', () => {
  for (const dtype of ['f32', 'f64'] as const) {
    it(`${dtype}: attention and EMA masks, both polarities, special values`, () => {
      const scores = special([16, 1, 40, 40], dtype);
      const keyMask = padMask(16, 40, [16, 1, 1, 40]);
      check(keyMask, scalar(-Infinity, dtype), scores); // masked_fill(scores, mask, -inf)
      check(keyMask, scores, scalar(0, dtype)); // keep where true
      check(keyMask, scalar(NaN, dtype), scores);
      const ema = special([64, 16, 40], dtype);
      const tMask = padMask(16, 40, [16, 1, 40]);
      check(tMask, scalar(0, dtype), V.permute(ema, [1, 0, 2])); // [16, 64, 40] view, unit rows
      check(tMask, scalar(-0, dtype), V.permute(special([16, 40, 64], dtype), [0, 2, 1])); // rows of stride 64: staged
      check(padMask(16, 1, [16, 1, 1]), scalar(3, dtype), special([16, 64, 40], dtype)); // one entry per row
    });
  }

  it('resident operands in place, forced onto the pool with odd sizes', () => {
    simdTuning.force = true;
    setNumThreads(2);
    const pairs: [Tensor, Tensor][] = [];
    const x = special([7, 3, 13], 'f32');
    residentScope(
      {},
      () => {
        const xr = K.binary(x, scalar(1, 'f32'), 'mul'); // resident copy
        const m = padMask(7, 13, [7, 1, 13]);
        for (const [cond, a, b] of [
          [m, scalar(-Infinity, 'f32'), xr],
          [m, V.narrow(xr, 1, 1, 2), scalar(0.5, 'f32')],
          [padMask(1, 13, [13]), scalar(2, 'f32'), xr],
        ] as [Tensor, Tensor, Tensor][]) {
          const got = whereSimd(cond, a, b);
          expect(got).not.toBeNull();
          pairs.push([K.copy(got!), K.copy(whereCpu(cond, a, b))]);
        }
      },
      () => pairs.flat(),
    );
    for (const [got, ref] of pairs) expect(bits(got)).toEqual(bits(ref));
  });

  it('declines what it does not handle', () => {
    simdTuning.force = true;
    const x = randNormal([4, 8], 0, 1, 'f32', gen),
      y = randNormal([4, 8], 0, 1, 'f32', gen);
    const m = padMask(4, 8, [4, 8]);
    expect(whereSimd(m, x, y)).toBeNull(); // two tensor branches
    expect(whereSimd(fromStorage(new Int32Array(32), [4, 8]), scalar(0, 'f32'), x)).toBeNull(); // not a bool mask
    expect(whereSimd(m, scalar(0, 'f32'), randNormal([4, 1], 0, 1, 'f32', gen))).toBeNull(); // x broadcast along rows
    expect(whereSimd(m, scalar(1, 'i32'), fromStorage(new Int32Array(32), [4, 8]))).toBeNull(); // integers
    expect(whereSimd(m, scalar(0, 'f32'), V.flip(x, [1]))).toBeNull(); // negative stride
  });
});
