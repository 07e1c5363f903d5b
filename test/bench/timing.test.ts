/**
 * The benchmarks' timing helpers (bench/timing.ts): the training benchmark's warm-up rule (at
 * least `minMs`, then until `runs` runs or `maxMs`) and the forced collection that
 * `timeMedian` makes between warm-up and timed runs unless told not to.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { median, timeMedian, warmUp } from '../../bench/timing.js';

/** A run that takes about `ms` milliseconds (busy wait). */
const busy = (ms: number) => () => {
  const t = performance.now();
  while (performance.now() - t < ms);
};

describe('warmUp', () => {
  it('stops at the run count once the minimum time has passed', () => {
    let n = 0;
    const r = warmUp(() => n++, { minMs: 0, runs: 5, maxMs: 60_000 });
    expect(r.runs).toBe(5);
    expect(n).toBe(5);
  });

  it('runs at least the minimum time, whatever the run count', () => {
    const r = warmUp(busy(1), { minMs: 25, runs: 1, maxMs: 60_000 });
    expect(r.ms).toBeGreaterThanOrEqual(25);
    expect(r.runs).toBeGreaterThan(1);
  });

  it('stops at the time cap before the run count', () => {
    const r = warmUp(busy(1), { minMs: 0, runs: 1_000_000, maxMs: 20 });
    expect(r.ms).toBeGreaterThanOrEqual(20);
    expect(r.runs).toBeLessThan(1_000_000);
    // one run always happens, even with a zero cap
    expect(warmUp(() => {}, { minMs: 0, runs: 10, maxMs: 0 }).runs).toBe(1);
  });
});

describe('timeMedian', () => {
  const g = globalThis as { gc?: () => void };
  const saved = g.gc;
  afterEach(() => {
    g.gc = saved;
  });

  it('forces a collection before the timed runs by default, and none with gc: false', () => {
    let calls = 0;
    g.gc = () => calls++;
    timeMedian(() => {}, { warmup: 1, warmupMs: 0, minReps: 3, maxReps: 3 });
    expect(calls).toBe(1);
    timeMedian(() => {}, { warmup: 1, warmupMs: 0, minReps: 3, maxReps: 3, gc: false });
    expect(calls).toBe(1);
  });

  it('returns the median of the timed runs', () => {
    expect(median([3, 1, 2])).toBe(2);
    const ms = timeMedian(busy(2), { warmup: 1, warmupMs: 0, minReps: 5, maxReps: 5, gc: false });
    expect(ms).toBeGreaterThanOrEqual(2);
  });
});
