/**
 * The worker pool: every task of a job runs once, on the workers and the calling thread (also in
 * a job of more tasks than the pool's units of claim); the calling thread takes tasks from the
 * front and the workers from the back; idle threads poll for the next job only for the spin time
 * and then sleep (an idle pool costs no CPU); the spin time from `MEGA_SPIN_MS` is bounded, a
 * malformed value gives the default.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { RING, spinMillis, SyncPool, type PoolKernel } from '../../../../src/tensor/backends/cpu/pool.js';

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

  it('a job of more tasks than its 4,095 units of claim runs each task once', () => {
    const n = 10_000;
    pool.ensureBuffer(4 * n);
    const view = new Int32Array(pool.buffer);
    pool.run(0, n);
    pool.run(0, n);
    for (let t = 0; t < n; t++) expect(view[t]).toBe(2 * (t + 1));
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

describe('SyncPool claims', () => {
  // task t writes 1 + the index of the thread that ran it (0: the calling thread)
  const WHO = `let view = null;
return {
  setBuffer(buf) { view = new Arr(buf); },
  runTask(params, t) { let x = 0; for (let k = 0; k < 20000; k++) x += k * t; view[t] = tid + 1 + (x < 0 ? 1 : 0); },
};`;
  const pool = new SyncPool(1, WHO, ['Int32Array'], [new Function('Arr', 'extra', 'tid', WHO)(Int32Array, null, 0) as PoolKernel]);
  afterAll(() => pool.close());

  it('the calling thread runs a prefix of the tasks, the worker the rest (each keeps its end of the data)', async () => {
    const n = 64;
    pool.ensureBuffer(4 * n);
    const view = new Int32Array(pool.buffer);
    pool.run(0, n);
    for (let i = 0; i < 200 && pool.stats().workersReady < 1; i++) await new Promise((r) => setTimeout(r, 50));
    let workerRan = 0;
    for (let job = 0; job < 20; job++) {
      view.fill(0);
      pool.run(0, n);
      const who = Array.from(view.subarray(0, n));
      expect(who.every((w) => w === 1 || w === 2)).toBe(true);
      const firstWorker = who.indexOf(2);
      if (firstWorker < 0) continue;
      workerRan++;
      expect(who.slice(firstWorker).every((w) => w === 2)).toBe(true); // no task of the calling thread after one of the worker's
    }
    expect(workerRan).toBeGreaterThan(0);
  });
});

describe('SyncPool queue (start / settle)', () => {
  // task t of job j (params[0] = j) sets slot t to 3·slot + j: the result depends on the jobs' order
  const STEP = `let view = null;
return {
  setBuffer(buf) { view = new Arr(buf); },
  runTask(params, t) { let x = 0; for (let k = 0; k < 2000; k++) x += k * t; view[t] = (Math.imul(view[t], 3) + params[0] + (x < 0 ? 1 : 0)) | 0; },
};`;
  const pool = new SyncPool(1, STEP, ['Int32Array'], [new Function('Arr', 'extra', 'tid', STEP)(Int32Array, null, 0) as PoolKernel]);
  afterAll(() => pool.close());

  it('runs queued jobs in the order they were started, each after the one before, past a full ring', async () => {
    const n = 32;
    pool.ensureBuffer(4 * n);
    const view = new Int32Array(pool.buffer);
    pool.run(0, n); // starts the worker
    for (let i = 0; i < 200 && pool.stats().workersReady < 1; i++) await new Promise((r) => setTimeout(r, 50));
    for (const tasks of [1, 3, n]) {
      view.fill(0);
      const jobs = 3 * RING + 5;
      for (let j = 0; j < jobs; j++) {
        pool.params[0] = j + 1;
        pool.start(0, tasks);
        expect(pool.unfinished).toBeLessThanOrEqual(RING);
      }
      pool.settle();
      expect(pool.unfinished).toBe(0);
      let want = 0;
      for (let j = 0; j < jobs; j++) want = (Math.imul(want, 3) + j + 1) | 0;
      for (let t = 0; t < n; t++) expect(view[t]).toBe(t < tasks ? want : 0);
    }
  });

  it('settleTo(k) returns with at most k jobs unfinished, and run() waits for the queued jobs first', () => {
    const n = 8;
    const view = new Int32Array(pool.buffer);
    view.fill(0);
    for (let j = 0; j < 6; j++) {
      pool.params[0] = 1;
      pool.start(0, n);
    }
    pool.settleTo(2);
    expect(pool.unfinished).toBeLessThanOrEqual(2);
    pool.params[0] = 0;
    pool.run(0, n); // the seventh job: after the six before it
    expect(pool.unfinished).toBe(0);
    let want = 0;
    for (let j = 0; j < 6; j++) want = want * 3 + 1;
    want *= 3;
    for (let t = 0; t < n; t++) expect(view[t]).toBe(want);
  });
});

describe('SyncPool: a worker that stalls', () => {
  // as above: task t of a job sets slot t to 3·slot + params[0]
  const STEP = `let view = null;
return {
  setBuffer(buf) { view = new Arr(buf); },
  runTask(params, t) { view[t] = (Math.imul(view[t], 3) + params[0]) | 0; },
};`;
  const pool = new SyncPool(1, STEP, ['Int32Array'], [new Function('Arr', 'extra', 'tid', STEP)(Int32Array, null, 0) as PoolKernel]);
  afterAll(() => pool.close());
  const busy = (ms: number) => {
    const until = performance.now() + ms;
    while (performance.now() < until);
  };

  it('stalled while 256 jobs ran, it takes its unit of the later job in the same slot (same tag) with that job’s description', async () => {
    const n = 5000;
    pool.ensureBuffer(4 * n);
    const view = new Int32Array(pool.buffer);
    pool.run(0, 2);
    for (let i = 0; i < 200 && pool.stats().workersReady < 1; i++) await new Promise((r) => setTimeout(r, 50));
    expect(pool.stats().workersReady).toBe(1);
    view.fill(0);
    const before = pool.stats().workerTasks;
    const first = pool.published;
    pool.stallWorker(first, 300);
    pool.params[0] = 1;
    pool.start(0, n); // 5,000 tasks: claimed two per unit; the worker reads this and stalls
    busy(30);
    pool.settle(); // the calling thread runs it alone
    for (let j = 1; j < 256; j++) {
      pool.params[0] = 1;
      pool.run(0, 2);
    }
    pool.params[0] = 1;
    pool.start(0, 2); // job first + 256: the same slot and tag, two tasks of one unit each
    busy(600); // the worker wakes and claims this job's units (from the back)
    pool.settle();
    expect(pool.stats().workerTasks).toBeGreaterThan(before); // (its units of the last job)
    let twice = 0;
    for (let j = 0; j < 257; j++) twice = (Math.imul(twice, 3) + 1) | 0;
    expect(view[0]).toBe(twice);
    expect(view[1]).toBe(twice);
    for (let t = 2; t < n; t++) if (view[t] !== 1) expect(view[t]).toBe(1);
  });

  it('stalled holding a claim word, its claim succeeds on the later job with the same word (slot, tag, units): it runs and ends that job', async () => {
    pool.ensureBuffer(64);
    const view = new Int32Array(pool.buffer);
    pool.run(0, 2);
    for (let i = 0; i < 200 && pool.stats().workersReady < 1; i++) await new Promise((r) => setTimeout(r, 50));
    view.fill(0);
    const first = pool.published;
    pool.stallWorker(first, 300);
    for (let j = 0; j < 256; j++) {
      pool.params[0] = 1;
      pool.start(0, 1); // one unit each (job `first`: the worker reads its claim word, then stalls)
      if (j === 0) busy(30);
      pool.settle(); // the calling thread runs it
    }
    const before = pool.stats().workerTasks;
    pool.params[0] = 1;
    pool.start(0, 1); // job first + 256: its claim word is the one the worker holds
    busy(600); // the worker wakes, its claim succeeds: it must run and end this job as itself
    pool.settle(); // (would wait forever had the worker ended job `first` instead)
    expect(pool.stats().workerTasks).toBe(before + 1);
    let want = 0;
    for (let j = 0; j < 257; j++) want = (Math.imul(want, 3) + 1) | 0;
    expect(view[0]).toBe(want);
  });
});

describe('SyncPool: jobs that wait only for what they read', () => {
  // params[0] = op, params[1] = a slot s: op 1 — waits (up to 1.5 s) until slot 64 is nonzero,
  // then sets slot s to 1 (2 when it gave up); op 2 — sets slot 64 to 1 + slot s; op 3 — slot s ← 7
  const FLAG = `let view = null;
return {
  setBuffer(buf) { view = new Arr(buf); },
  runTask(params, t) {
    const s = params[1];
    if (params[0] === 1) {
      const until = Date.now() + 1500;
      while (Atomics.load(view, 64) === 0 && Date.now() < until);
      Atomics.store(view, s, Atomics.load(view, 64) !== 0 ? 1 : 2);
    } else if (params[0] === 2) Atomics.store(view, 64, 1 + Atomics.load(view, s));
    else Atomics.store(view, s, 7);
  },
};`;
  const pool = new SyncPool(1, FLAG, ['Int32Array'], [new Function('Arr', 'extra', 'tid', FLAG)(Int32Array, null, 0) as PoolKernel]);
  afterAll(() => pool.close());
  let view: Int32Array;
  /** Starts a one-task job of op `op` on slot `s`; returns its number. */
  const job = (op: number, s: number, after: number[] | null) => {
    const P = pool.params;
    P[0] = op;
    P[1] = s;
    const j = pool.published;
    pool.start(0, 1, after);
    return j;
  };

  it('a job that waits for nothing runs while an earlier one still runs', async () => {
    pool.ensureBuffer(4 * 128);
    view = new Int32Array(pool.buffer);
    job(3, 0, null);
    pool.run(0, 1); // starts the worker
    for (let i = 0; i < 200 && pool.stats().workersReady < 1; i++) await new Promise((r) => setTimeout(r, 50));
    view.fill(0);
    job(1, 0, null); // waits for slot 64, which only the next job sets
    job(2, 1, []); // reads slot 1: independent of the job before
    pool.settle();
    expect([view[0], view[64]]).toEqual([1, 1]); // the first job saw the flag: the second ran before it ended
  });

  it('a job waits for the jobs it names, and one started without a list for all before it', () => {
    view.fill(0);
    const a = job(1, 0, null); // gives up after 1.5 s: slot 0 = 2
    job(2, 0, [a]); // reads slot 0 once a has ended: slot 64 = 3
    pool.settle();
    expect([view[0], view[64]]).toEqual([2, 3]);
    view.fill(0);
    job(1, 0, null);
    job(2, 0, null); // waits for all before it: the same order
    pool.settle();
    expect([view[0], view[64]]).toEqual([2, 3]);
  });

  it('a list of more than four jobs waits for every job up to the last of them', () => {
    for (const names of [4, 5]) {
      view.fill(0);
      job(1, 0, null); // slot 0: 1 if the last job below runs before it ends, else 2
      const others = Array.from({ length: names }, (_, i) => job(3, 1 + i, [])); // independent
      job(2, 0, others);
      pool.settle();
      // four named: the last job ran once they had (the flag reached the first job); five: a
      // list too long to keep, so it waited for all jobs up to the last named, the first included
      expect([view[0], view[64]]).toEqual(names === 4 ? [1, 1] : [2, 3]);
      for (let i = 0; i < names; i++) expect(view[1 + i]).toBe(7);
    }
  });
});
