/**
 * Training steps with deferred jobs (wasm/runtime.ts): kernels return while their jobs run on a
 * worker, overlapping the next ops' JavaScript. On the four training-benchmark configurations,
 * steps with deferral, without it, and in the pool's debug mode (a worker starts each job late,
 * the calling thread never takes a task, fresh blocks are NaN — a value read or a block reused too
 * early shows) give the same losses and parameters, bit for bit.
 */
import { describe, expect, it } from 'vitest';
import { withDeferralThreads } from '../deferral.js';
import { trainStepOf } from '../../bench/train.js';
import { poolDebug } from '../../src/tensor/backends/cpu/pool.js';
import { deferredJobs } from '../../src/tensor/backends/cpu/wasm/runtime.js';

const CASES = ['image', 'listops', 'lm', 'nmt'];
withDeferralThreads();

/** Losses of `n` steps and the parameters after them (copies). */
function run(name: string, n: number): { losses: number[]; params: Float32Array[] } {
  const { step, params } = trainStepOf(name);
  const losses = Array.from({ length: n }, () => step());
  return { losses, params: params.map((p) => Float32Array.from(p.storage as Float32Array)) };
}

describe('training steps with deferred jobs', () => {
  it.each(CASES)('%s: deferred, synchronous and late-worker steps are the same bits', (name) => {
    deferredJobs.allowed = false;
    const sync = run(name, 2);
    deferredJobs.allowed = true;
    const deferred = run(name, 2);
    poolDebug.delayMicros = 200;
    const late = run(name, 2);
    expect(sync.losses.every(Number.isFinite)).toBe(true);
    for (const other of [deferred, late]) {
      expect(other.losses).toEqual(sync.losses);
      other.params.forEach((p, i) => expect(Buffer.from(p.buffer).equals(Buffer.from(sync.params[i].buffer))).toBe(true));
    }
  });
});
