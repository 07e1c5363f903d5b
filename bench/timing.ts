/**
 * Timing helpers for the benchmarks: warm up, then take the median of several timed runs,
 * bounded in time so slow baselines do not blow the bench budget.
 */

/** Limits for {@link timeMedian}. */
export interface TimingOptions {
  /** warm-up runs wanted (at least 1 always runs); default 2 */
  warmup?: number;
  /** minimum warm-up time in ms, so JIT tiers (also in worker threads) settle; default 200 */
  warmupMs?: number;
  /** timed runs: at least `minReps` (default 3) … */
  minReps?: number;
  /** … at most `maxReps` (default 9) … */
  maxReps?: number;
  /** … stopping after `maxMs` of timed runs once `minReps` are done; default 2500 */
  maxMs?: number;
  /** a full collection (`gc()`, with node --expose-gc) between warm-up and timed runs; default true */
  gc?: boolean;
}

/** Run `fn` repeatedly; return the median wall time of the timed runs in ms. */
export function timeMedian(fn: () => void, o: TimingOptions = {}): number {
  const warmup = o.warmup ?? 2;
  const warmupMs = o.warmupMs ?? 200;
  const minReps = o.minReps ?? 3;
  const maxReps = o.maxReps ?? 9;
  const maxMs = o.maxMs ?? 2500;
  // Warm-up: at least one run; more while under `warmup` runs or `warmupMs`, capped at maxMs/2.
  const w0 = performance.now();
  for (let i = 0; ; i++) {
    fn();
    const el = performance.now() - w0;
    if (el > maxMs / 2 || (i + 1 >= warmup && el >= warmupMs)) break;
  }
  if (o.gc ?? true) (globalThis as { gc?: () => void }).gc?.(); // with node --expose-gc
  const times: number[] = [];
  const t0 = performance.now();
  while (times.length < minReps || (times.length < maxReps && performance.now() - t0 < maxMs)) {
    const t = performance.now();
    fn();
    times.push(performance.now() - t);
  }
  return median(times);
}

/** How long {@link warmUp} runs a step before it is timed. */
export interface WarmUp {
  /** at least this many ms … */
  minMs: number;
  /** … then until this many runs in all … */
  runs: number;
  /** … or this many ms, whichever comes first */
  maxMs: number;
}

/** Runs `fn` as `w` says; returns the number of runs and the ms they took. */
export function warmUp(fn: () => void, w: WarmUp): { runs: number; ms: number } {
  const t0 = performance.now();
  let runs = 0;
  for (;;) {
    fn();
    runs++;
    const el = performance.now() - t0;
    if (el >= w.maxMs || (el >= w.minMs && runs >= w.runs)) return { runs, ms: el };
  }
}

/** The median of `xs` (the mean of the middle two for an even count; NaN when empty). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}
