/**
 * The library's memory release on the gpujs backend (loaded through `useBackend`): the weights
 * are uploaded once at load, a prediction outside `tidy` leaves device buffers behind, inside the
 * root's `tidy` none, `dispose()` frees the weights; the prediction equals the CPU's to the f32
 * rule. Skipped without a GPU mode unless CI is set.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { classify, loadModel, tidy, useBackend } from '../../src/index.js';
import { GpuDevice } from '../../src/tensor/backends/gpujs/index.js';
import { expectClose } from '../../src/verify/compare.js';
import { skipWithout } from '../system.js';
import { gpuAvailable } from '../tensor/backends/gpu-probe.js';

const PT = 'test/golden/checkpoints/mega_lra_listops_tiny.pt';
const IDS = [4, 9, 12, 18, 5, 7, 13, 2];

describe.skipIf(skipWithout({ gpu: gpuAvailable() }))('tidy / dispose on the gpujs backend', () => {
  afterAll(async () => {
    await useBackend('cpu');
  });

  it('weights uploaded once, tidy frees the buffers of a prediction, dispose the weights; results match the CPU', async () => {
    const cpu = classify(await loadModel(PT), IDS).logits;
    expect((await useBackend('gpujs')).backend).toBe('gpujs');
    const dev = GpuDevice.get()!;
    const before = dev.liveBuffers;
    const m = await loadModel(PT);
    const live0 = dev.liveBuffers;
    expect(live0 - before).toBe(m.model.parameters().length); // the weights, resident
    const r0 = classify(m, IDS); // intermediate results stay on the device
    const live1 = dev.liveBuffers;
    expect(live1).toBeGreaterThan(live0);
    const launches = dev.counters.launches;
    const r = tidy(() => classify(m, IDS));
    expect(dev.counters.launches).toBeGreaterThan(launches);
    expect(dev.liveBuffers).toBe(live1);
    expect(r.logits).toEqual(r0.logits);
    expectClose(Float64Array.from(r.logits), Float64Array.from(cpu), { precision: 'f32', what: 'gpujs vs cpu logits' });
    const n = m.model.parameters().length;
    m.dispose();
    expect(dev.liveBuffers).toBe(live1 - n);
    expect(() => classify(m, IDS)).toThrow(/disposed/);
  });
});
