/**
 * The gpujs host-constant cache: host values cross to the device once while they stay the same,
 * a host tensor changed in place is seen with its new values, and integer bookkeeping on host
 * tensors (masks from token ids) stays on the host without any transfer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipWithout } from '../../../system.js';
import { gpuAvailable } from '../gpu-probe.js';
import { setBackend } from '../../../../src/tensor/backend.js';
import { clearUploadCache, GpuData, GpuDevice, selectBackend } from '../../../../src/tensor/backends/gpujs/index.js';
import { scalar, tensor } from '../../../../src/tensor/create.js';
import * as K from '../../../../src/tensor/kernels.js';
import { skipWithout } from '../../../system.js';
import { gpuAvailable } from '../gpu-probe.js';

describe.skipIf(skipWithout({ gpu: gpuAvailable() }))('gpujs host-constant cache', () => {
  beforeAll(() => {
    selectBackend('gpujs');
  }, 180_000);
  afterAll(() => setBackend('cpu'));

  it('uploads equal host values once and sees in-place changes', () => {
    const d = GpuDevice.get()!;
    clearUploadCache();
    const x = tensor([1, 2, 3], 'f32');
    const u0 = d.counters.uploads;
    expect(K.unary(x, 'neg').toArray()).toEqual([-1, -2, -3]);
    expect(d.counters.uploads).toBe(u0 + 1);
    expect(K.unary(tensor([1, 2, 3], 'f32'), 'neg').toArray()).toEqual([-1, -2, -3]); // a fresh tensor, same values
    expect(d.counters.uploads).toBe(u0 + 1);
    x.storage[1] = 7; // changed in place: a new upload, the new value
    expect(K.unary(x, 'neg').toArray()).toEqual([-1, -7, -3]);
    expect(d.counters.uploads).toBe(u0 + 2);
  });

  it('keeps integer bookkeeping on host tensors on the host', () => {
    const d = GpuDevice.get()!;
    const before = { ...d.counters };
    const tokens = tensor(
      [
        [5, 6, 1],
        [7, 1, 1],
      ],
      'i32',
    );
    const mask = K.binary(tokens, scalar(1, 'i32'), 'eq');
    expect(mask.device).toBeNull();
    expect(Array.from(mask.storage)).toEqual([0, 0, 1, 0, 1, 1]);
    expect(K.reduce(K.cast(mask, 'i32'), 'sum', [1], false).toArray()).toEqual([1, 2]);
    expect(d.counters).toEqual(before);
    // floating work on the device, with the host mask uploaded once
    const y = K.where(
      mask,
      tensor(
        [
          [1, 1, 1],
          [1, 1, 1],
        ],
        'f32',
      ),
      scalar(0, 'f32'),
    );
    expect(y.device).toBeInstanceOf(GpuData);
    expect(y.toArray()).toEqual([0, 0, 1, 0, 1, 1]);
  });
});
