/**
 * matmul with batch axes that do not collapse to one stride per operand: a flipped (negative
 * stride) batch axis, and the chunked-attention layout `[B, chunks, C, D]` viewed from a
 * time-major `[L, B, D]` tensor — copied to contiguous outside resident scopes, one gemm per
 * leading batch index read in place inside them; every result equal (bitwise) to the product of
 * contiguous copies.
 */
import { describe, expect, it } from 'vitest';
import { matmulStats } from '../../../../src/tensor/backends/cpu/matmul.js';
import { residentScope } from '../../../../src/tensor/backends/cpu/resident.js';
import type { FloatDType } from '../../../../src/tensor/dtype.js';
import * as K from '../../../../src/tensor/kernels.js';
import { Generator, randNormal } from '../../../../src/tensor/random.js';
import type { Tensor } from '../../../../src/tensor/tensor.js';
import * as V from '../../../../src/tensor/view.js';

const gen = new Generator(11);

function bits(t: Tensor): number[] {
  return Array.from(K.copy(t).storage);
}

/** `matmul(a(x), b(x))` with the operands built inside a resident scope (so they are resident). */
function inScope(make: () => [Tensor, Tensor]): Tensor {
  const holder: { out: Tensor | null } = { out: null };
  residentScope(
    {},
    () => {
      const [a, b] = make();
      holder.out = K.matmul(a, b);
    },
    () => [holder.out],
  );
  return holder.out!;
}

describe('matmul over batch axes that do not collapse', () => {
  for (const dt of ['f32', 'f64'] as FloatDType[]) {
    it(`a flipped batch axis (negative stride) (${dt})`, () => {
      const x = randNormal([3, 8, 9], 0, 1, dt, gen),
        w = randNormal([9, 5], 0, 1, dt, gen);
      const xf = V.flip(x, [0]);
      expect(bits(K.matmul(xf, w))).toEqual(bits(K.matmul(K.copy(xf), w)));
    });

    it(`chunked views of a time-major tensor, outside and inside a resident scope (${dt})`, () => {
      const [L, B, D, C] = [192, 3, 16, 48];
      const x0 = randNormal([L, B, D], 0, 1, dt, gen),
        y0 = randNormal([L, B, D], 0, 1, dt, gen);
      // q: [B, chunks, C, D], kᵀ: [B, chunks, D, C], both views (no nested batch stride)
      const chunks = (t: Tensor) => V.reshape(V.transpose(t, 0, 1), [B, L / C, C, D]);
      const q = chunks(x0),
        kt = V.transpose(chunks(y0), 2, 3);
      const ref = bits(K.matmul(K.copy(q), K.copy(kt)));
      expect(bits(K.matmul(q, kt))).toEqual(ref);
      // inside a scope: operands resident (computed there), the product split per leading batch index
      const res = inScope(() => {
        const xs = K.binary(x0, x0, 'mul'),
          ys = K.binary(y0, y0, 'mul');
        return [chunks(xs), V.transpose(chunks(ys), 2, 3)];
      });
      const sq = (t: Tensor) => K.binary(t, t, 'mul');
      expect(bits(res)).toEqual(bits(K.matmul(K.copy(chunks(sq(x0))), K.copy(V.transpose(chunks(sq(y0)), 2, 3)))));
    });
  }
});

describe('matmulStats', () => {
  it('counts 2·batch·M·N·K operations per matmul, broadcast batches included', () => {
    const a = randNormal([3, 5, 7], 0, 1, 'f32', gen); // batch 3, M 5, K 7
    const b = randNormal([7, 4], 0, 1, 'f32', gen); // K 7, N 4 (broadcast over the batch)
    const f0 = matmulStats().flops;
    K.matmul(a, b);
    K.matmul(randNormal([2, 2], 0, 1, 'f64', gen), randNormal([2, 9], 0, 1, 'f64', gen));
    expect(matmulStats().flops - f0).toBe(2 * 3 * 5 * 4 * 7 + 2 * 2 * 9 * 2);
  });
});
