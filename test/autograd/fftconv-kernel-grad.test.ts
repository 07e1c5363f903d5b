/**
 * fftConv's kernel gradient is summed over the broadcast (batch) axes before it is flipped
 * (src/autograd/ops/conv.ts): bit for bit the sums of the flipped convolution that the plain
 * formula `sumTo(flip(conv(x, flip(g))))` gives, on the SIMD and the plain kernels, f32 and f64.
 */
import { describe, expect, it } from 'vitest';
import * as F from '../../src/autograd/index.js';
import { setSimd } from '../../src/tensor/backends/cpu/wasm/runtime.js';
import type { FloatDType } from '../../src/tensor/dtype.js';
import * as K from '../../src/tensor/kernels.js';
import { Generator, randNormal } from '../../src/tensor/random.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import * as V from '../../src/tensor/view.js';

const gen = new Generator(9);
const bits = (t: Tensor) => Array.from(K.copy(t).storage);

describe('fftConv kernel gradient', () => {
  for (const simd of [true, false]) {
    for (const dt of ['f32', 'f64'] as FloatDType[]) {
      it(`equals the flipped-then-summed formula bit for bit (${dt}, ${simd ? 'SIMD' : 'plain'} kernels)`, () => {
        setSimd(simd);
        try {
          for (const [B, D, L, Lk, start] of [
            [3, 8, 300, 599, 299], // the bidirectional EMA's window
            [4, 5, 64, 64, 0], // causal
          ]) {
            const x = randNormal([B, D, L], 0, 1, dt, gen);
            const k = F.requiresGrad(randNormal([D, Lk], 0, 1, dt, gen));
            const g = randNormal([B, D, L], 0, 1, dt, gen);
            F.backward(F.fftConv(x, k, start, L), g);
            const flipped = V.flip(K.fftConv(x, V.flip(g, -1), start + L - Lk, Lk), -1); // B × D × Lk
            const want = K.reduce(flipped, 'sum', [0], false);
            expect(bits(k.grad!)).toEqual(bits(want));
          }
        } finally {
          setSimd(true);
        }
      });
    }
  }
});
