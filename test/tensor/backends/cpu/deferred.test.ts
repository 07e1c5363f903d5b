/**
 * Deferred jobs (wasm/runtime.ts "Deferred jobs"): inside a resident scope a kernel returns while
 * its job still waits or runs on a worker. These tests run in the pool's debug mode where a worker
 * starts each job late and the calling thread never takes a task, and where fresh output blocks
 * are NaN: whatever JavaScript reads or writes too early shows. Reading a deferred output waits
 * for it; a block freed while a queued job reads it is not handed out again before the job ran;
 * the arena's scratch that a queued product reads is not reused by the next kernel.
 */
import { describe, expect, it } from 'vitest';
import { withDeferralThreads } from '../../../deferral.js';
import { fromArray } from '../../../../src/tensor/create.js';
import { hostSync } from '../../../../src/tensor/host-sync.js';
import { fromStorage, Tensor } from '../../../../src/tensor/tensor.js';
import { binary, concat, matmul, pad, unary, where } from '../../../../src/tensor/kernels.js';
import { dropoutMask, Generator } from '../../../../src/tensor/random.js';
import { poolDebug, setNumThreads } from '../../../../src/tensor/backends/cpu/pool.js';
import { allocateOut, persistentStorage, residentBytes, residentDispose, residentScope } from '../../../../src/tensor/backends/cpu/resident.js';
import { deferredJobs, jobDebug, queueDepth, queuedJobs, wasmPool, wasmRuntime } from '../../../../src/tensor/backends/cpu/wasm/runtime.js';

withDeferralThreads();

/** f32 values 0.5, 1.5, … (n of them) as a plain tensor. */
function ramp(n: number, shape = [n]): Tensor {
  return fromArray(
    Float32Array.from({ length: n }, (_, i) => (i % 97) + 0.5),
    shape,
  );
}

describe('deferred jobs', () => {
  it('the runtime is there (the tests below need the SIMD kernels and shared memory)', () => {
    expect(wasmRuntime()).not.toBeNull();
  });

  it('a deferred output reads as its final values (Tensor.storage waits for the job)', () => {
    deferredJobs.allowed = true;
    poolDebug.delayMicros = 20_000;
    const n = 4096;
    const got = residentScope(
      {},
      () => {
        const x = unary(ramp(n), 'neg'); // resident
        const y = binary(x, x, 'add'); // reads and writes resident blocks: deferred
        expect(hostSync.pending).toBe(true); // (the worker sleeps 20 ms before it starts)
        return y.toArray();
      },
      () => [],
    );
    expect(got).toEqual(Array.from({ length: n }, (_, i) => -2 * ((i % 97) + 0.5)));
  });

  it('a block freed while a queued job reads it is not reused before the job ran', () => {
    deferredJobs.allowed = true;
    poolDebug.delayMicros = 20_000;
    const n = 4096;
    const got = residentScope(
      {},
      () => {
        const x = unary(ramp(n), 'neg');
        expect(x.toArray()[1]).toBe(-1.5); // x is written (the read waited for its job)
        const y = binary(x, x, 'add'); // queued, reads x
        expect(hostSync.pending).toBe(true);
        residentDispose(x); // x's block goes back to the heap …
        for (let i = 0; i < 4; i++) allocateOut('f32', n, true); // … but not to these zero-filled blocks yet
        return y.toArray();
      },
      () => [],
    );
    expect(got).toEqual(Array.from({ length: n }, (_, i) => -2 * ((i % 97) + 0.5)));
  });

  it('reading an older output waits only for the jobs up to the kernel that made it', () => {
    deferredJobs.allowed = true;
    poolDebug.delayMicros = 300_000; // the worker sleeps 300 ms before each job
    const n = 4096;
    residentScope(
      {},
      () => {
        const x = unary(ramp(n), 'neg');
        expect(x.toArray()[2]).toBe(-2.5);
        const y = binary(x, x, 'add'); // queued after x's job
        let t0 = performance.now();
        expect(x.toArray()[3]).toBe(-3.5); // x's jobs are done: no wait for y's
        expect(performance.now() - t0).toBeLessThan(150);
        t0 = performance.now();
        expect(y.toArray()[3]).toBe(-7);
        expect(performance.now() - t0).toBeGreaterThan(100); // (y's job waited for the worker)
      },
      () => [],
    );
  });

  it("reading a parameter's persistent block waits for nothing (no job writes it)", () => {
    deferredJobs.allowed = true;
    poolDebug.delayMicros = 300_000;
    const n = 4096;
    const w = fromStorage(persistentStorage('f32', 8)!, [8]);
    residentScope(
      {},
      () => {
        const x = unary(ramp(n), 'neg');
        binary(x, x, 'add');
        expect(hostSync.pending).toBe(true);
        const t0 = performance.now();
        expect(w.toArray()).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
        expect(performance.now() - t0).toBeLessThan(150);
        expect(hostSync.pending).toBe(true); // the queued jobs still wait for the worker
      },
      () => [],
    );
  });

  it('a queued product keeps its packed panels while the next kernels stage operands and allocate', () => {
    const product = (defer: boolean, delay: number) => {
      deferredJobs.allowed = defer;
      poolDebug.delayMicros = delay;
      return residentScope(
        {},
        () => {
          const a = unary(ramp(96 * 80, [96, 80]), 'neg');
          const b = unary(ramp(80 * 72, [80, 72]), 'neg');
          const c = matmul(a, b); // packs A and B into the scratch: queued with its scratch held
          for (let i = 0; i < 4; i++) {
            allocateOut('f32', 96 * 80, true);
            binary(ramp(3000), ramp(3000), 'mul'); // plain operands: copied into the scratch
          }
          return Array.from(c.toTypedArray());
        },
        () => [],
      );
    };
    const want = product(false, 0);
    expect(want.every(Number.isFinite)).toBe(true);
    expect(product(true, 2000)).toEqual(want);
    expect(product(true, 0)).toEqual(want);
  });

  it('an output kept across a change of thread count (a new pool) reads at once, with its values', () => {
    deferredJobs.allowed = true;
    const n = 4096;
    const owner = {};
    let view: Tensor | null = null;
    residentScope(
      owner,
      () => {
        for (let i = 0; i < 40; i++) unary(ramp(n), 'neg'); // jobs counted by the first pool
        const y = binary(ramp(n), ramp(n), 'add');
        view = new Tensor(y.data, [32, 64], [64, 1], 64); // a strided root: keeps its block and stamp
      },
      () => [view],
    );
    setNumThreads(3); // a new pool, counting its jobs from 0
    try {
      poolDebug.delayMicros = 20_000;
      residentScope(
        {},
        () => {
          unary(ramp(n), 'neg');
          expect(hostSync.pending).toBe(true);
          expect(view!.at(0, 0)).toBe(2 * ((64 % 97) + 0.5)); // its jobs all ran before the old pool closed
          expect(hostSync.pending).toBe(true);
        },
        () => [],
      );
    } finally {
      poolDebug.delayMicros = 0;
      setNumThreads(2);
      residentScope(
        owner,
        () => undefined,
        () => [],
      );
    }
  });

  it('pad, concat and where of a queued output queue their own jobs: they do not wait for its values', () => {
    deferredJobs.allowed = true;
    poolDebug.delayMicros = 300_000; // the worker sleeps 300 ms before each job
    deferredJobs.depth = 12; // (past the depth the calling thread waits for the oldest job)
    const n = 4096;
    residentScope(
      {},
      () => {
        const x = unary(ramp(n, [64, 64]), 'neg'); // queued
        const cond = fromArray(
          Uint8Array.from({ length: 64 }, (_, j) => (j % 3 ? 1 : 0)),
          [64],
        ); // bool
        const t0 = performance.now();
        const padded = pad(x, [
          [0, 0],
          [2, 1],
        ]);
        const joined = concat([x, x], 0);
        const masked = where(cond, x, fromArray(Float32Array.of(9), []));
        expect(performance.now() - t0).toBeLessThan(150); // (each read of x would wait 300 ms)
        const xv = (i: number, j: number) => -(((i * 64 + j) % 97) + 0.5);
        expect(padded.at(5, 0)).toBe(0);
        expect(padded.at(5, 2)).toBe(xv(5, 0));
        expect(padded.at(5, 66)).toBe(0);
        expect(joined.at(64 + 7, 3)).toBe(xv(7, 3));
        expect(masked.at(4, 3)).toBe(9); // cond[3] = 0
        expect(masked.at(4, 4)).toBe(xv(4, 4));
      },
      () => [],
    );
  });

  it('an output a kernel wrote itself (no job queued) reads at once, with queued jobs pending', () => {
    deferredJobs.allowed = true;
    poolDebug.delayMicros = 300_000;
    residentScope(
      {},
      () => {
        unary(ramp(4096), 'neg'); // queued
        const small = binary(ramp(8), ramp(8), 'add'); // a plain-TypeScript kernel: written here
        expect(hostSync.pending).toBe(true);
        const t0 = performance.now();
        expect(small.toArray()[1]).toBe(3);
        expect(performance.now() - t0).toBeLessThan(150);
      },
      () => [],
    );
  });

  it("a dropout mask drawn by a queued job: the generator's next use waits for it and goes on from its state", () => {
    const shape = [48, 96];
    // the reference: the same generator drawing outside any scope (synchronously)
    const ref = new Generator(7);
    const want = [dropoutMask(shape, 0.3, 'f32', ref), dropoutMask(shape, 0.3, 'f32', ref)].map((m) => Array.from(m.toTypedArray()));
    const wantState = ref.getState();
    const wantNext = ref.uniform();
    deferredJobs.allowed = true;
    poolDebug.delayMicros = 300_000; // the worker sleeps 300 ms before each job
    const gen = new Generator(7);
    residentScope(
      {},
      () => {
        const t0 = performance.now();
        const masks = [dropoutMask(shape, 0.3, 'f32', gen), dropoutMask(shape, 0.3, 'f32', gen)];
        expect(performance.now() - t0).toBeLessThan(150); // queued, not drawn here
        expect(hostSync.pending).toBe(true);
        expect(gen.getState()).toEqual(wantState); // waits for both draws
        expect(masks.map((m) => Array.from(m.toTypedArray()))).toEqual(want);
        expect(gen.uniform()).toBe(wantNext);
        // lent again, then re-seeded while the job is queued: the seed wins
        dropoutMask(shape, 0.3, 'f32', gen);
        gen.seed(7);
      },
      () => [],
    );
    expect(gen.getState()).toEqual(new Generator(7).getState());
  });

  it("a kernel's jobs wait for the jobs that wrote what it read, not for the others queued before", () => {
    deferredJobs.allowed = true;
    deferredJobs.depth = 14; // (the calling thread does not wait for the late worker below)
    poolDebug.delayMicros = 50_000;
    const n = 4096;
    /** Runs a kernel; the numbers of the jobs it queued and what each waited for. */
    const track = <T>(fn: () => T): { out: T; jobs: number[]; waits: (number[] | null)[] } => {
      const before = queuedJobs(),
        w0 = jobDebug.waits.length;
      const out = fn();
      return { out, jobs: Array.from({ length: queuedJobs() - before }, (_, i) => before + i), waits: jobDebug.waits.slice(w0) };
    };
    /** What a kernel's jobs waited for: the first for `first`, each later one for the one before. */
    const chain = (t: { jobs: number[] }, first: (number[] | null)[]) => [...first, ...t.jobs.slice(0, -1).map((j) => [j])];
    const last = (t: { jobs: number[] }) => t.jobs[t.jobs.length - 1];
    jobDebug.waits.length = 0;
    jobDebug.record = true;
    try {
      residentScope(
        {},
        () => {
          const x = track(() => unary(ramp(n), 'neg')); // reads an ordinary array: waits for nothing
          const u = track(() => unary(ramp(n), 'neg'));
          const y = track(() => binary(x.out, x.out, 'add'));
          const z = track(() => binary(y.out, u.out, 'mul'));
          for (const t of [x, u, y, z]) expect(t.jobs.length).toBeGreaterThan(0);
          expect(x.waits).toEqual(chain(x, [[]]));
          expect(u.waits).toEqual(chain(u, [[]])); // not for x's jobs
          expect(y.waits).toEqual(chain(y, [[last(x)]])); // not for u's
          expect(z.waits[0]).toHaveLength(2);
          expect(z.waits).toEqual(chain(z, [expect.arrayContaining([last(y), last(u)])]));
          // a resident block no kernel stamped (its writer unknown): every job before
          const unknown = track(() => binary(fromStorage(allocateOut('f32', n), [n]), x.out, 'add'));
          expect(unknown.waits[0]).toBeNull();
          // a dropout mask: its generator's first (state words no job wrote yet) every job
          // before; the next only the mask before it, which wrote the state it goes on from
          const gen = new Generator(3);
          const mask = track(() => dropoutMask([n], 0.5, 'f32', gen));
          const mask2 = track(() => dropoutMask([n], 0.5, 'f32', gen));
          expect(mask.waits).toEqual([null]);
          expect(mask2.waits).toEqual([[last(mask)]]);
          expect(hostSync.pending).toBe(true);
          expect(z.out.toArray()).toEqual(Array.from({ length: n }, (_, i) => 2 * ((i % 97) + 0.5) ** 2));
        },
        () => [],
      );
    } finally {
      jobDebug.record = false;
    }
  });

  it('a job that finishes while the calling thread catches up leaves its scratch to the next settle, not held past it', () => {
    deferredJobs.allowed = true;
    poolDebug.delayMicros = 20_000;
    const n = 4096;
    residentScope(
      {},
      () => {
        const before = residentBytes();
        // the calling thread reads the finished count, then the worker finishes everything
        jobDebug.afterCount = () => {
          const until = performance.now() + 5000;
          while (wasmPool(wasmRuntime()!).unfinished > 0 && performance.now() < until);
        };
        const x = unary(ramp(n), 'neg'); // an ordinary array staged in the scratch: its job keeps the scratch
        expect(jobDebug.afterCount).toBeNull(); // (the hook ran)
        // x's block alone: the scratch went back at the next settle (here, the one residentBytes makes)
        expect(residentBytes() - before).toBe(n * 4);
        expect(x.toArray()[1]).toBe(-1.5);
      },
      () => [],
    );
  });

  it('MEGA_QUEUE_DEPTH: an integer in [1, 15], else 2', () => {
    expect(queueDepth(undefined)).toBe(2);
    expect(queueDepth('1')).toBe(1);
    expect(queueDepth('15')).toBe(15);
    for (const bad of ['0', '16', '2.5', 'x', '', '-1']) expect(queueDepth(bad)).toBe(2);
  });
});
