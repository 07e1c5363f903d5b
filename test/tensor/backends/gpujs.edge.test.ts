import { afterAll, beforeAll, expect, it } from 'vitest';
import { setBackend } from '../../../src/tensor/backend.js';
import { fallbacks, resetFallbacks, selectBackend } from '../../../src/tensor/backends/gpujs/index.js';
import { tensor, zeros } from '../../../src/tensor/create.js';
import * as K from '../../../src/tensor/kernels.js';
import { reshape } from '../../../src/tensor/view.js';
import { skipWithout } from '../../system.js';
import { gpuAvailable } from './gpu-probe.js';

// without a GPU mode (and without CI) these are skipped with the run's summary line
const skip = skipWithout({ gpu: gpuAvailable() });

beforeAll(() => {
  if (!skip) selectBackend('gpujs');
}, 180_000);
afterAll(() => setBackend('cpu'));

it.skipIf(skip)('empty operands and large grids', () => {
  resetFallbacks();
  expect(K.indexAdd([3, 2], 0, tensor([], [0], 'i32'), zeros([0, 2])).toArray()).toEqual([0, 0, 0, 0, 0, 0]);
  expect(K.scatterAdd([2, 3], 1, zeros([2, 0], 'i32'), zeros([2, 0])).toArray()).toEqual([0, 0, 0, 0, 0, 0]);
  expect(K.binary(zeros([0, 3]), zeros([1, 3]), 'add').shape).toEqual([0, 3]);
  // an i32 index computed on the device feeds a gather, a bool mask feeds where
  const x = tensor([
    [1, 5, 2],
    [7, 0, 3],
  ]);
  const am = K.argmax(x, 1);
  expect(am.toArray()).toEqual([1, 0]);
  const top = K.gather(x, 1, reshape(am, [2, 1]));
  expect(top.device).not.toBeNull();
  expect(top.toArray()).toEqual([5, 7]);
  const w = K.where(K.binary(x, tensor([2]), 'gt'), x, tensor([0]));
  expect(w.toArray()).toEqual([0, 5, 0, 7, 0, 3]);
  const col = K.gather(x, 1, tensor([[1], [0]], 'i32'));
  expect(col.toArray()).toEqual([5, 7]);
  const big = K.reduce(K.unary(zeros([3, 70000, 2]), 'exp'), 'sum', [0, 2], false);
  expect(big.shape).toEqual([70000]);
  expect(big.toArray().every((v) => v === 6)).toBe(true);
  const f = K.binary(K.unary(zeros([2, 3, 2, 3, 2]), 'exp'), tensor([1, 2], [2]), 'mul');
  expect(K.reduce(f, 'sum', [0, 1, 2, 3, 4], false).item()).toBe(108);
  expect(fallbacks()).toEqual({});
});
