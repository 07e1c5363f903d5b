/**
 * `matmulBias(a, b, bias)`: the CPU gemm adds the bias row as it stores C — bit for bit the
 * values of `matmul` then `add` (f32 / f64; the plain-TS path, the SIMD kernel with one and with
 * several K blocks, edge tiles of N not a multiple of the vector width, a bias inside or outside
 * the wasm memory, a strided bias), and in a resident scope its output is its only block.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { residentBytes, residentScope } from '../../../../src/tensor/backends/cpu/resident.js';
import { simdTuning } from '../../../../src/tensor/backends/cpu/wasm/runtime.js';
import { zeros } from '../../../../src/tensor/create.js';
import type { FloatDType } from '../../../../src/tensor/dtype.js';
import { binary, matmul, matmulBias } from '../../../../src/tensor/kernels.js';
import { Generator, randNormal } from '../../../../src/tensor/random.js';
import type { Tensor } from '../../../../src/tensor/tensor.js';
import * as V from '../../../../src/tensor/view.js';

const gen = new Generator(5);
const bits = (t: Tensor) => Buffer.from(V.contiguous(t).toTypedArray().slice().buffer);

afterEach(() => {
  simdTuning.force = false;
});

describe('matmulBias', () => {
  const shapes: [number, number, number, string][] = [
    [37, 24, 40, 'plain-TS gemm'],
    [640, 64, 288, 'SIMD, one K block'],
    [300, 600, 100, 'SIMD, three K blocks, edge tiles'],
    [70, 33, 1, 'one column'],
    [5, 0, 7, 'K = 0: the bias alone'],
  ];
  for (const dt of ['f32', 'f64'] as FloatDType[])
    for (const [M, K, N, what] of shapes)
      it(`${dt} [${M}, ${K}]·[${K}, ${N}] (${what}): bit for bit matmul then add, in and out of a resident scope`, () => {
        const a = randNormal([M, K], 0, 1, dt, gen);
        const w = randNormal([N, K], 0, 0.3, dt, gen);
        const bias = randNormal([N], 0, 1, dt, gen);
        const b = V.transpose(w, 0, 1); // the weight's transpose, as linear passes it
        const want = bits(binary(matmul(a, b), bias, 'add'));
        expect(bits(matmulBias(a, b, bias)).equals(want)).toBe(true);
        expect(
          residentScope(
            {},
            () => bits(matmulBias(a, b, bias)),
            () => [],
          ).equals(want),
        ).toBe(true);
        // a bias in the wasm memory (a resident copy: bias + 0) read in place
        expect(
          residentScope(
            {},
            () => bits(matmulBias(a, b, binary(bias, zeros([N], dt), 'add'))),
            () => [],
          ).equals(want),
        ).toBe(true);
      });

  it('with the SIMD kernel forced on small sizes, and with a strided bias (the two-kernel path)', () => {
    simdTuning.force = true;
    const a = randNormal([9, 5], 0, 1, 'f32', gen);
    const b = randNormal([5, 13], 0, 1, 'f32', gen);
    const bias = randNormal([13], 0, 1, 'f32', gen);
    expect(bits(matmulBias(a, b, bias)).equals(bits(binary(matmul(a, b), bias, 'add')))).toBe(true);
    const m = randNormal([13, 2], 0, 1, 'f32', gen);
    const col = V.squeeze(V.narrow(V.transpose(m, 0, 1), 0, 0, 1), 0); // [13], stride 2
    expect(col.isContiguous()).toBe(false);
    expect(bits(matmulBias(a, b, col)).equals(bits(binary(matmul(a, b), col, 'add')))).toBe(true);
  });

  it('keeps one block in a resident scope: its output (no product of its own)', () => {
    const a = randNormal([300, 64], 0, 1, 'f32', gen);
    const b = randNormal([64, 96], 0, 0.1, 'f32', gen);
    const bias = randNormal([96], 0, 0.1, 'f32', gen);
    const grew = residentScope(
      {},
      () => {
        const before = residentBytes();
        matmulBias(a, b, bias);
        return residentBytes() - before;
      },
      () => [],
    );
    expect(grew).toBe(Math.ceil((300 * 96 * 4) / 64) * 64);
  });

  it('rejects a bias that is not one value per column', () => {
    const a = randNormal([4, 3], 0, 1, 'f32', gen);
    const b = randNormal([3, 5], 0, 1, 'f32', gen);
    expect(() => matmulBias(a, b, randNormal([4], 0, 1, 'f32', gen))).toThrow(/bias of shape \[4\] for a product with 5 columns/);
  });
});
