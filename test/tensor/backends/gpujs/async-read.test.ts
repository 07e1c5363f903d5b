/**
 * An asynchronous read-back whose answer has already arrived when `collect` is called: the device
 * thread posted and counted it before the main thread looked, so `collect` must take it from the
 * reply port rather than wait for a signal that will not come (a lost wake-up that hung the
 * data-parallel gpujs test about 1 run in 8). On the broken protocol this blocks until the 600 s
 * answer deadline and then throws.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setBackend } from '../../../../src/tensor/backend.js';
import { GpuDevice, selectBackend } from '../../../../src/tensor/backends/gpujs/index.js';
import { skipWithout } from '../../../system.js';
import { gpuAvailable } from '../gpu-probe.js';

/** Blocks the calling thread for `ms` (the device thread keeps running). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

describe.skipIf(skipWithout({ gpu: gpuAvailable() }))('gpujs asynchronous read-back', () => {
  beforeAll(() => selectBackend('gpujs'), 180_000);
  afterAll(() => setBackend('cpu'));

  it('collects an answer that arrived before collect was called', () => {
    const d = GpuDevice.get()!;
    for (let round = 0; round < 3; round++) {
      const values = Float32Array.from({ length: 64 }, (_, i) => i * (round + 1));
      const x = d.upload(values.slice(), 'f32'); // the upload takes its buffer
      const tag = d.readAsync(x.id, values.length);
      sleepSync(500); // the device thread copies, maps and answers meanwhile
      expect(Array.from(d.collect(tag))).toEqual(Array.from(values));
    }
  });
});
