/**
 * The wasm row paths of indexSelect / indexAdd (rows-simd.ts: an embedding's lookup and its
 * gradient inside resident scopes) against the general kernels of indexing.ts, bit for bit: f32
 * and f64, rows of one element (a 1-D table) and of many (a vector tail), repeated indices (the
 * sums keep the general kernel's order, also split over the pool's tasks), deferred with a late
 * worker, and bad indices.
 */
import { describe, expect, it } from 'vitest';
import { withDeferralThreads } from '../../../deferral.js';
import { poolDebug } from '../../../../src/tensor/backends/cpu/pool.js';
import { indexAddCpu, indexSelectCpu } from '../../../../src/tensor/backends/cpu/indexing.js';
import { residentScope } from '../../../../src/tensor/backends/cpu/resident.js';
import { indexAddRows, indexSelectRows } from '../../../../src/tensor/backends/cpu/rows-simd.js';
import { deferredJobs, simdTuning } from '../../../../src/tensor/backends/cpu/wasm/runtime.js';
import { fromArray } from '../../../../src/tensor/create.js';
import { unary } from '../../../../src/tensor/kernels.js';
import { Generator, randNormal } from '../../../../src/tensor/random.js';
import type { Tensor } from '../../../../src/tensor/tensor.js';

withDeferralThreads();
const gen = new Generator(11);

const bits = (t: Tensor) => Array.from(new Uint8Array(Float64Array.from(t.toArray() as number[]).buffer));

/** Runs `fn` inside a resident scope and returns its tensors' values as plain arrays (bits). */
function inScope(fn: () => Tensor[]): number[][] {
  return residentScope(
    {},
    () => fn().map(bits),
    () => [],
  );
}

describe('indexSelectRows / indexAddRows', () => {
  for (const dtype of ['f32', 'f64'] as const) {
    for (const [shape, m] of [
      [[50, 37], 90], // rows of 37: whole vectors and a scalar tail
      [[50], 70], // a 1-D table: rows of one element
      [[7, 3, 4], 40], // rows of a 3-D tensor
    ] as [number[], number][]) {
      it(`equal the general kernels (${dtype}, [${shape}], ${m} indices), deferred or not, with a late worker`, () => {
        const n = shape[0];
        const idx = fromArray(
          Int32Array.from({ length: m }, (_, i) => (i * 13 + (i % 3)) % n),
          [m],
        ); // repeated indices
        const table = randNormal(shape, 0, 1, dtype, gen);
        const g = randNormal([m, ...shape.slice(1)], 0, 1, dtype, gen);
        const want = [indexSelectCpu(table, 0, idx), indexAddCpu(shape, 0, idx, g)].map(bits);
        for (const [defer, delay, force] of [
          [false, 0, false],
          [true, 0, false],
          [true, 2000, false],
          [true, 0, true], // every task split over the pool
        ] as const) {
          deferredJobs.allowed = defer;
          poolDebug.delayMicros = delay;
          simdTuning.force = force;
          try {
            const got = inScope(() => {
              // resident operands: the outputs of a kernel (negated twice: the same values)
              const t = unary(unary(table, 'neg'), 'neg');
              const gg = unary(unary(g, 'neg'), 'neg');
              const sel = indexSelectRows(t, 0, idx);
              const add = indexAddRows(shape, 0, idx, gg);
              expect(sel).not.toBeNull();
              expect(add).not.toBeNull();
              return [sel!, add!];
            });
            expect(got).toEqual(want);
          } finally {
            simdTuning.force = false;
          }
        }
      });
    }
  }

  it('report an index out of range as the general kernels do', () => {
    residentScope(
      {},
      () => {
        const t = unary(randNormal([5, 8], 0, 1, 'f32', gen), 'neg');
        const bad = fromArray(Int32Array.of(1, 5, 2), [3]);
        expect(() => indexSelectRows(t, 0, bad)).toThrow('indexSelect: index 5 is out of range for axis 0 of size 5');
        const g = unary(randNormal([3, 8], 0, 1, 'f32', gen), 'neg');
        expect(() => indexAddRows([5, 8], 0, fromArray(Int32Array.of(0, -1, 2), [3]), g)).toThrow('indexAdd: index -1 is out of range for axis 0 of size 5');
      },
      () => [],
    );
  });

  it('decline outside resident scopes and for other axes', () => {
    const t = randNormal([5, 8], 0, 1, 'f32', gen);
    const idx = fromArray(Int32Array.of(1, 2), [2]);
    expect(indexSelectRows(t, 0, idx)).toBeNull();
    residentScope(
      {},
      () => {
        const r = unary(t, 'neg');
        expect(indexSelectRows(r, 1, idx)).toBeNull();
      },
      () => [],
    );
  });
});
