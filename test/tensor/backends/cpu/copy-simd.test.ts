/**
 * The WebAssembly copy kernels (wasm/copy.ts through copy-simd.ts and simd.ts `stage`) inside a
 * resident scope, against an element-by-element gather computed here from the view's strides and
 * against the plain kernels (concatCpu, padCpu): row layouts, transposes with partial tiles,
 * flips (negative strides, reversed vectors), broadcast views, the Mega layer's layouts, f32 and
 * f64, bit for bit (−0 and NaN payloads included). Run also with MEGA_SIMD=force MEGA_THREADS=2
 * (every copy split into tasks on the pool).
 */
import { describe, expect, it } from 'vitest';
import { concatSimd, copySimd, padSimd } from '../../../../src/tensor/backends/cpu/copy-simd.js';
import { concatCpu, padCpu } from '../../../../src/tensor/backends/cpu/indexing.js';
import { residentScope } from '../../../../src/tensor/backends/cpu/resident.js';
import { binaryCpu } from '../../../../src/tensor/backends/cpu/elementwise.js';
import { binarySimd, copyPlan, residentAddr } from '../../../../src/tensor/backends/cpu/simd.js';
import { wasmRuntime } from '../../../../src/tensor/backends/cpu/wasm/runtime.js';
import type { FloatDType } from '../../../../src/tensor/dtype.js';
import { scalar } from '../../../../src/tensor/create.js';
import * as K from '../../../../src/tensor/kernels.js';
import { Generator, randNormal } from '../../../../src/tensor/random.js';
import type { Tensor } from '../../../../src/tensor/tensor.js';
import * as V from '../../../../src/tensor/view.js';
import { gathered } from './bits.js';

const gen = new Generator(17);
const simd = wasmRuntime() !== null;

/** The bit patterns of row-major `t` (contiguous). */
function bits(t: Tensor): number[] {
  const s = t.storage as Float32Array | Float64Array;
  const part = s.subarray(t.offset, t.offset + t.size);
  return Array.from(part instanceof Float32Array ? new Uint32Array(part.slice().buffer) : new Uint32Array(part.slice().buffer));
}

/** Bit patterns of `values` as dtype `dt`. */
function bitsOf(values: number[], dt: FloatDType): number[] {
  const a = dt === 'f32' ? Float32Array.from(values) : Float64Array.from(values);
  return Array.from(new Uint32Array(a.buffer));
}

/** Random values with some −0 and NaN (with a payload) mixed in. */
function base(shape: number[], dt: FloatDType): Tensor {
  const t = randNormal(shape, 0, 1, dt, gen);
  const s = t.storage as Float32Array | Float64Array;
  for (let i = 0; i < s.length; i += 13) s[i] = -0;
  if (dt === 'f32') new Uint32Array(s.buffer, s.byteOffset, s.length)[5] = 0x7fc01234;
  return t;
}

/** Views of a resident copy of `x` used by the tests (the same list as copy-fast's, plus the layer's layouts). */
function views(r: Tensor, r2: Tensor): Tensor[] {
  return [
    V.narrow(r, 1, 3, 20), // a window
    V.transpose(r, 0, 1), // unit-stride rows
    V.transpose(r, 1, 2), // transpose, partial tiles
    V.permute(r, [2, 0, 1]), // transpose with an outer axis between
    V.permute(r, [1, 2, 0]), // last axis strided
    V.flip(r, [2]), // reversed rows
    V.flip(V.transpose(r, 1, 2), [0, 2]), // transpose with a negative stride
    V.flip(V.permute(r, [1, 2, 0]), [2]),
    V.expand(V.narrow(r, 0, 0, 1), [9, 37, 45]), // broadcast
    V.permute(r2, [1, 2, 0]), // [B, D, L] of time-major [L, B, D]
    V.flip(V.permute(r2, [1, 2, 0]), [2]),
    V.permute(V.reshape(r2, [4, 16, 3, 40]), [2, 0, 1, 3]), // chunked time-major layout
    V.transpose(V.reshape(r2, [4, 16, 3, 8, 5]), 1, 4), // 4 outer axes
    V.narrow(V.reshape(r2, [64 * 3 * 40]), 0, 11, 7), // a short run
  ];
}

describe.skipIf(!simd)('wasm copy kernels', () => {
  for (const dt of ['f32', 'f64'] as FloatDType[]) {
    it(`copy: every layout, bit for bit (${dt})`, () => {
      const x = base([6, 37, 45], dt),
        x2 = base([64, 3, 40], dt);
      const got: number[][] = [],
        want: number[][] = [];
      residentScope(
        {},
        () => {
          const r = K.copy(x),
            r2 = K.copy(x2);
          expect(residentAddr(r)).toBeGreaterThanOrEqual(0);
          for (const v of views(r, r2)) {
            const c = copySimd(v);
            if (v.size >= 256) expect(c).not.toBeNull();
            got.push(bits(c ?? K.copy(v)));
            want.push(bitsOf(gathered(v), dt));
          }
        },
        () => [],
      );
      expect(got).toEqual(want);
    });

    it(`stage (binary ops on transposed resident and plain operands) equals the plain kernel (${dt})`, () => {
      const x = base([64, 3, 40], dt),
        y = base([3, 40, 64], dt);
      const got: number[][] = [],
        want: number[][] = [];
      residentScope(
        {},
        () => {
          const r = K.copy(x);
          const v = V.permute(r, [1, 2, 0]); // staged: no collapse with y
          const plain = V.permute(x, [1, 2, 0]); // not resident: its storage range is copied in, then transposed
          for (const [a, b] of [
            [v, y],
            [y, V.flip(v, [2])],
            [plain, y],
            [y, V.flip(plain, [0, 2])],
          ]) {
            got.push(bits(binarySimd(a, b, 'add')!));
            want.push(bits(binaryCpu(a, b, 'add')));
          }
        },
        () => [],
      );
      expect(got).toEqual(want);
    });

    it(`concat and pad equal the plain kernels (${dt})`, () => {
      const x = base([32, 4, 24], dt),
        y = base([32, 4, 40], dt),
        w = base([48, 100], dt);
      const got: number[][] = [],
        want: number[][] = [];
      residentScope(
        {},
        () => {
          const xr = K.copy(x),
            wr = K.copy(w);
          // resident and plain pieces (copied in from their storage range), a transposed piece, along the last and a middle axis
          const cases: [Tensor[], number][] = [
            [[xr, y, xr], 2],
            [[V.transpose(V.narrow(K.copy(y), 2, 0, 32), 0, 2), V.transpose(xr, 0, 2)], 0],
            [[xr, xr], 1],
            [[V.expand(V.reshape(scalar(2.5, dt), [1, 1, 1]), [32, 4, 40]), xr, V.transpose(V.transpose(y, 0, 2), 0, 2)], 2], // a broadcast piece, plain pieces
          ];
          for (const [xs, axis] of cases) {
            const c = concatSimd(xs, axis);
            expect(c).not.toBeNull();
            got.push(bits(c!));
            want.push(bits(concatCpu(xs, axis)));
          }
          /** Pads of a 2-D / 3-D tensor from flat amounts (before, after per axis). */
          const p = (...v: number[]): [number, number][] => Array.from({ length: v.length / 2 }, (_, i) => [v[2 * i], v[2 * i + 1]]);
          const pads: [Tensor, [number, number][], number][] = [
            [wr, p(0, 0, 99, 0), 0], // the EMA kernel's left padding
            [V.flip(wr, [1]), p(0, 0, 0, 99), 0], // flipped, right padding
            [V.flip(wr, [1]), p(48, 0, 0, 0), 0], // narrow backward of a flipped gradient
            [V.transpose(wr, 0, 1), p(3, -5, -2, 7), 1.5], // transposed, cropped, a fill value
            [V.reshape(V.narrow(V.reshape(wr, [4800]), 0, 4000, 800), [8, 100]), p(1, 1, 0, 0), 0],
            [V.flip(wr, [1]), p(0, 0, 2, 3), -2.5], // margins only, a fill value
            [xr, p(0, 0, 1, 2, 0, 0), 0.5], // a middle axis
            [xr, p(0, 0, 0, 0, -3, -4), 0], // cropped along one axis
          ];
          for (const [t, amounts, value] of pads) {
            const c = padSimd(t, amounts, value);
            expect(c).not.toBeNull();
            got.push(bits(c!));
            want.push(bits(padCpu(t, amounts, value)));
          }
        },
        () => [],
      );
      expect(got).toEqual(want);
    });
  }

  it('plans: collapsed axes, transpose tiles only with a long unit-stride axis', () => {
    // [L, B, D] viewed as [B, D, L]: rows along L (stride B·D), tiles over B·D (one unit-stride axis)
    expect(copyPlan([4, 128, 1024], [128, 1, 512], [131072, 1024, 1], 4)).toEqual({ n: 1024, sj: 512, m: 512, si: 1, di: 1024, outer: [], transpose: true });
    // contiguous pieces into a wider row: one block of rows
    expect(copyPlan([1024, 4, 128], [512, 128, 1], [2048, 512, 1], 4)).toEqual({ n: 128, sj: 1, m: 4096, si: 128, di: 512, outer: [], transpose: false });
    // destination rows not unit-stride, too many outer axes
    expect(copyPlan([8, 8], [1, 8], [1, 8], 4)).toBeNull();
    expect(copyPlan([2, 3, 2, 3, 2, 3, 5], [1, 2, 6, 12, 36, 72, 216], [540, 180, 90, 30, 15, 5, 1], 4)).toBeNull();
  });
});
