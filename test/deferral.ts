/**
 * Shared set-up of the deferred-job tests: two threads (deferral needs a worker, also on a
 * one-core machine) for the file's tests, the thread count restored after them, and after each
 * test the pool's debug delay off and deferral and its queue depth as the environment set them.
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import { getNumThreads, poolDebug, setNumThreads } from '../src/tensor/backends/cpu/pool.js';
import { deferredJobs } from '../src/tensor/backends/cpu/wasm/runtime.js';

/** Registers the hooks above in the calling test file. */
export function withDeferralThreads(): void {
  const { allowed, depth } = deferredJobs;
  let threads = 1;
  beforeAll(() => {
    threads = getNumThreads();
    setNumThreads(2);
  });
  afterAll(() => setNumThreads(threads));
  afterEach(() => {
    poolDebug.delayMicros = 0;
    deferredJobs.allowed = allowed;
    deferredJobs.depth = depth;
  });
}
