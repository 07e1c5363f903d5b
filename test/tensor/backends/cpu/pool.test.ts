/**
 * The worker pool: every task of a job runs once, on the workers and the calling thread; idle
 * threads poll for the next job only for the spin time and then sleep (an idle pool costs no
 * CPU); the spin time from `MEGA_SPIN_MS` is bounded, a malformed value gives the default.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spinMillis, SyncPool, type PoolKernel } from '../../../../src/tensor/backends/cpu/pool.js';

/** Task t adds t + 1 to slot t of the shared Int32Array (so a task run twice shows), after some busy work. */
const KERNEL = `let view = null;
return {
  setBuffer(buf) { view = new Arr(buf); },
  runTask(params, t) { let x = 0; for (let k = 0; k < 20000; k++) x += k * t; Atomics.add(view, t, t + 1 + (x < 0 ? 1 : 0)); },
};`;

function mainKernel(): PoolKernel {
  return new Function('Arr', 'extra', 'tid', KERNEL)(Int32Array, null, 0) as PoolKernel;
}

describe('SyncPool', () => {
  const pool = new SyncPool(1, KERNEL, ['Int32Array'], [mainKernel()]);
  afterAll(() => pool.close());

  it('runs every task of every job exactly once, on both threads', async () => {
    const n = 200;
    pool.ensureBuffer(4 * n);
    const view = new Int32Array(pool.buffer);
    pool.run(0, n); // starts the worker
    for (let i = 0; i < 200 && pool.stats().workersReady < 1; i++) await new Promise((r) => setTimeout(r, 50));
    expect(pool.stats().workersReady).toBe(1);
    for (let job = 0; job < 50; job++) pool.run(0, n);
    for (let t = 0; t < n; t++) expect(view[t]).toBe(51 * (t + 1));
    expect(pool.stats().workerTasks).toBeGreaterThan(0);
  });

  it('sleeps when idle: no CPU burnt after the spin time', async () => {
    pool.run(0, 64); // the worker is awake and polling now
    await new Promise((r) => setTimeout(r, 50)); // well past the 0.5 ms spin
    const c0 = process.cpuUsage();
    await new Promise((r) => setTimeout(r, 400));
    const c = process.cpuUsage(c0);
    // a worker still polling would burn ~400 ms of CPU here
    expect((c.user + c.system) / 1000).toBeLessThan(100);
  });
});

describe('spinMillis (MEGA_SPIN_MS)', () => {
  it('takes milliseconds in [0, 100], else the default 0.5', () => {
    expect(spinMillis(undefined)).toBe(0.5);
    expect(spinMillis('')).toBe(0.5);
    expect(spinMillis('0')).toBe(0);
    expect(spinMillis('2.5')).toBe(2.5);
    expect(spinMillis('100')).toBe(100);
    for (const bad of ['abc', '-1', '1e9', 'Infinity', 'NaN', ' ']) expect(spinMillis(bad)).toBe(0.5);
  });
});
