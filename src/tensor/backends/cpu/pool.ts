/**
 * A synchronous worker_threads pool for CPU kernels.
 *
 * The caller (the main thread) writes its operands into one SharedArrayBuffer, fills a small
 * shared parameter block, and calls {@link SyncPool.run}. Workers and the main thread then
 * claim the task indices `0 … numTasks-1` (dynamic scheduling, so a busy core slows nobody
 * down): the main thread from the front, the workers from the back, so that in a run of jobs cut
 * alike (the elementwise ops and products of one layer) each thread keeps working on the part of
 * the data it wrote last, which is in its own core's cache. Each task runs
 * `kernel.runTask(params, t)`, and the main thread blocks in `Atomics.wait` until every task is
 * done. From the caller's view the call is an ordinary synchronous function — the autograd
 * engine needs that.
 *
 * Which thread runs a task never changes what the task writes, so results are deterministic as
 * long as the kernel makes every task's output independent of the others.
 *
 * Workers are created from a source STRING by the host platform (`platform/node.ts`:
 * worker_threads with `eval: true`; `platform/browser.ts`: Web Workers from a Blob): the code runs
 * from TypeScript sources under vitest, from compiled `dist/` and from a browser bundle alike.
 * The kernel source is the same template the main thread instantiates, so both sides run the
 * same code. Workers are `unref()`ed and never keep the process alive.
 *
 * Jobs can also be started without waiting ({@link SyncPool.start}): they queue in a ring of
 * `RING` slots (parameters, task count, claims, what they wait for). A job started with a list of
 * the jobs whose results it reads runs as soon as those have finished — possibly before jobs
 * started earlier; a job started without one runs after every job started before it. The calling
 * thread returns to its own work and joins the oldest unfinished jobs when it settles
 * ({@link SyncPool.settle}, {@link SyncPool.settleTo}).
 *
 * Protocol (all in `ctrl`, an Int32Array over a SharedArrayBuffer):
 * - `PUB` counts the jobs published; `FIN` is the number of jobs finished *in order*: jobs
 *   `[0, FIN)` have all finished (both wrap as int32). Job `j` lives in slot `j & (RING − 1)` (its
 *   parameters in that `params` block) until `FIN` passes it. `SIG` changes whenever a job is
 *   published or finishes; idle threads `Atomics.wait` on it.
 * - A job may start when `FIN ≥ AFTER` (the jobs before it that it waits for as a whole: its own
 *   number when it waits for all) and each job in its `DEPS` list has finished (`FIN` past it, or
 *   its slot's `ENDED` = its number + 1). Threads claim units of the oldest jobs that may start.
 * - A job's tasks are claimed in units of `CHUNK` consecutive tasks (1 unless a job has more than
 *   `MAX_UNITS` (4,095) tasks). The slot's `NEXT` holds `tag << 24 | hi << 12 | lo`: units
 *   `[lo, hi)` are unclaimed, `tag = j & 0xff`. The calling thread claims unit `lo` (compare-
 *   exchange to lo + 1), a worker unit `hi − 1`, only while the tag is the job's (a slot reused
 *   for job `j + RING` has another tag, so a late claim fails).
 * - The slot's `DONE` counts finished units; whoever finishes the last one sets the slot's `ENDED`,
 *   moves `FIN` past every ended job at its front, bumps `SIG` and notifies.
 * - `GEN` is the generation of the data buffer. When the buffer grows (only with no job
 *   unfinished), the new SharedArrayBuffer is posted on each worker's MessagePort *before* `GEN`
 *   is bumped; a worker that sees a new `GEN` pulls it synchronously (`receiveMessageOnPort`). A
 *   browser has no synchronous receive: there the pool restarts its workers with the new buffer.
 * - A browser page's main thread may not block (`Atomics.wait`): the browser platform reports one
 *   thread there, so the pool only runs inside a worker of a cross-origin isolated page.
 */
import { platform } from '../../platform/node.js';
import type { PoolWorker } from '../../platform/types.js';

/** The per-kind kernel object built from the kernel source (one instance per kind and thread). */
export interface PoolKernel {
  /** Point the kernel's view at the (new) shared data buffer. */
  setBuffer(buf: SharedArrayBuffer): void;
  /** Run task `t` of the current job, reading its description from `params`. */
  runTask(params: Float64Array, t: number): void;
}

/** Slots of the control block. */
const PUB = 0;
const FIN = 1;
const GEN = 2;
const EXIT = 3;
const ERR = 4;
const READY = 5;
const WORKER_TASKS = 6;
/** Debug: microseconds a worker sleeps before it claims a job's first unit (see {@link poolDebug}). */
const DELAY = 7;
/** Generation of the workers (bumped when a browser pool restarts them: older ones stand down). */
const EPOCH = 8;
/** Test hook (`stallWorker`): job number + 1 before whose first claim (its claim word read) a worker stalls, and for how long (ms). */
const STALL_JOB = 9;
const STALL_MS = 10;
/** Bumped whenever a job is published or finishes (idle threads wait on it). */
const SIG = 11;
/** Where the job slots start, and the ints of each (see the file comment). */
const SLOT0 = 12;
const SLOT_INTS = 12;
const NEXT = 0;
const DONE = 1;
const NTASKS = 2;
const CHUNK = 3;
const KIND = 4;
const ENDED = 5;
const AFTER = 6;
const NDEPS = 7;
const DEPS = 8;
/** Most jobs a job's `DEPS` list names (a longer list waits for all jobs up to its last). */
const MAX_DEPS = 4;
/** Job slots: at most this many jobs are started and unfinished (a power of two). */
export const RING = 16;
const MASK = RING - 1;
const CTRL_SLOTS = SLOT0 + RING * SLOT_INTS;
/** Number of float64 parameter slots shared with the kernels. */
export const PARAM_SLOTS = 64;
/** Most units of claim per job (12 bits each for `lo` and `hi` in NEXT): larger jobs are claimed in chunks of tasks. */
const MAX_UNITS = 0xfff;

/** How a batched gemm is cut into pool tasks (see {@link splitGemmTasks}). */
export interface GemmTasks {
  /** Matrices per task. */
  bpt: number;
  /** Row-panel blocks and column-panel blocks per matrix. */
  mch: number;
  nch: number;
  /** Row panels and column panels per block. */
  ppm: number;
  ppn: number;
  /** Number of tasks: ⌈g / bpt⌉ · mch · nch. */
  tasks: number;
}

/**
 * Cuts a gemm of `g` matrices of `mp` row panels × `np` column panels into about `target` tasks:
 * groups of whole matrices when there are more matrices than `target`, otherwise each matrix cut
 * into blocks of panels.
 */
export function splitGemmTasks(g: number, mp: number, np: number, target: number): GemmTasks {
  let bpt = 1;
  let chunks = Math.max(1, Math.ceil(target / g));
  if (g > target) {
    bpt = Math.ceil(g / target);
    chunks = 1;
  }
  const mch = Math.min(mp, chunks);
  const nch = Math.min(np, Math.ceil(chunks / mch));
  const ppm = Math.ceil(mp / mch);
  const ppn = Math.ceil(np / nch);
  const mchR = Math.ceil(mp / ppm);
  const nchR = Math.ceil(np / ppn);
  return { bpt, mch: mchR, nch: nchR, ppm, ppn, tasks: Math.ceil(g / bpt) * mchR * nchR };
}
/**
 * How long (ms) an idle thread polls for the next job, and the caller for the last tasks, before
 * it sleeps in `Atomics.wait`. Waking a sleeping thread costs ~0.1 ms on a virtual machine (the
 * halted virtual CPU must be woken by the host) — as long as a whole small kernel.
 */
const SPIN_MS = spinMillis(platform.env('MEGA_SPIN_MS'));

/**
 * The polling time from `MEGA_SPIN_MS`: a number of milliseconds in [0, 100] (0: sleep at once),
 * else the default 0.5 (an unset or malformed value must not leave idle threads polling forever).
 */
export function spinMillis(text: string | undefined): number {
  const v = text === undefined || text.trim() === '' ? NaN : Number(text);
  return Number.isFinite(v) && v >= 0 && v <= 100 ? v : 0.5;
}
/**
 * Test switch: with `delayMicros` > 0 a worker sleeps that long before it claims a job's tasks and
 * the calling thread leaves every task to the workers, even at {@link SyncPool.settle} — so values
 * read before a started job is settled are not yet written (tests of deferred jobs).
 */
export const poolDebug = { delayMicros: 0 };

/** The units `[0, units)` of job `j`, as its slot's NEXT holds them. */
function nextWord(j: number, units: number): number {
  return ((j & 0xff) << 24) | (units << 12);
}

/**
 * Whether the job in slot int `o` may start, `fin` being `FIN`: the jobs it waits for have
 * finished. Shared verbatim by the workers and the calling thread ({@link jobFunctions}).
 */
const READY_SRC = `function ready(o, fin) {
  if (((Atomics.load(ctrl, o + ${AFTER}) - fin) | 0) > 0) return false;
  for (let i = 0, nd = Atomics.load(ctrl, o + ${NDEPS}); i < nd; i++) {
    const d = Atomics.load(ctrl, o + ${DEPS} + i);
    if (((fin - d) | 0) <= 0 && Atomics.load(ctrl, ${SLOT0} + (d & ${MASK}) * ${SLOT_INTS} + ${ENDED}) !== ((d + 1) | 0)) return false;
  }
  return true;
}`;

/**
 * Ends job `a` (slot int `o`) after its last unit: marks the slot, moves `FIN` past every ended
 * job at its front (whoever ends the front job moves it; a thread that ended a later one first
 * sees the front's mark or the moved `FIN`), and wakes the threads waiting on `SIG`.
 */
const END_SRC = `function end(o, a) {
  Atomics.store(ctrl, o + ${ENDED}, (a + 1) | 0);
  for (;;) {
    const f = Atomics.load(ctrl, ${FIN});
    if (Atomics.load(ctrl, ${SLOT0} + (f & ${MASK}) * ${SLOT_INTS} + ${ENDED}) !== ((f + 1) | 0)) break;
    Atomics.compareExchange(ctrl, ${FIN}, f, (f + 1) | 0);
  }
  Atomics.add(ctrl, ${SIG}, 1);
  Atomics.notify(ctrl, ${SIG});
}`;

/** {@link READY_SRC} and {@link END_SRC} over the calling thread's view of `ctrl`. */
function jobFunctions(ctrl: Int32Array): { ready(o: number, fin: number): boolean; end(o: number, a: number): void } {
  return new Function('ctrl', `${READY_SRC}\n${END_SRC}\nreturn { ready, end };`)(ctrl) as ReturnType<typeof jobFunctions>;
}

/**
 * The worker program. `KERNEL_SRC` is the body of a function `(Arr, extra, tid) => PoolKernel`;
 * the worker builds one instance per kind with its own `new Function`, so V8 keeps each
 * monomorphic. `extra` is the pool's structured-cloneable extra data (e.g. a WebAssembly.Module
 * and a shared WebAssembly.Memory), `tid` the worker's thread index (1 … numWorkers; the calling
 * thread is 0).
 */
function workerSource(kernelSrc: string, kinds: string[]): string {
  // Runs with `workerData`, `pullMessage()` and `reportError(text)` in scope (see platform/*.ts).
  return `const KERNEL_SRC = ${JSON.stringify(kernelSrc)};
const kernels = [${kinds.map((k) => `new Function('Arr', 'extra', 'tid', KERNEL_SRC)(${k}, workerData.extra, workerData.tid)`).join(', ')}];
const ctrl = new Int32Array(workerData.ctrl);
const params = [];
for (let i = 0; i < ${RING}; i++) params.push(new Float64Array(workerData.params, i * ${PARAM_SLOTS * 8}, ${PARAM_SLOTS}));
let gen = workerData.gen;
for (const k of kernels) k.setBuffer(workerData.buf);
/** Takes the data buffer of the current generation; false when it is not here. */
function adopt() {
  const g = Atomics.load(ctrl, ${GEN});
  while (gen !== g) {
    const m = pullMessage();
    if (m === undefined) break;
    gen = m.gen;
    for (const k of kernels) k.setBuffer(m.buf);
  }
  return gen === g;
}
function fail(e) { if (Atomics.compareExchange(ctrl, ${ERR}, 0, 1) === 0) reportError(String(e && e.stack || e)); }
/** Polls ctrl[i] while it equals v for the spin time, then sleeps until it changes. */
function await_(i, v) {
  const until = performance.now() + ${SPIN_MS};
  for (let k = 1; Atomics.load(ctrl, i) === v; k++) {
    if ((k & 255) === 0 && performance.now() > until) { Atomics.wait(ctrl, i, v); return; }
  }
}
${READY_SRC}
${END_SRC}
/** The last job this worker found to claim (its test hooks run once per job). */
let last = (Atomics.load(ctrl, ${FIN}) - 1) | 0;
/**
 * Claims and runs one unit of the oldest job that may start, from the back: 0 when there is none,
 * 1 when it ran one or should look again.
 */
function claim() {
  const fin = Atomics.load(ctrl, ${FIN}), pub = Atomics.load(ctrl, ${PUB});
  for (let j = fin; j !== pub; j = (j + 1) | 0) {
    const o = ${SLOT0} + (j & ${MASK}) * ${SLOT_INTS};
    const v = Atomics.load(ctrl, o + ${NEXT});
    const hi = (v >>> 12) & 0xfff;
    if ((v >>> 24) !== (j & 0xff) || (v & 0xfff) >= hi || !ready(o, fin)) continue;
    if (j !== last) {
      last = j;
      // test hooks (SyncPool.stallWorker, poolDebug.delayMicros): a plain load each, once per job
      const stall = (j + 1) | 0;
      if (Atomics.load(ctrl, ${STALL_JOB}) === stall && Atomics.compareExchange(ctrl, ${STALL_JOB}, stall, 0) === stall) {
        Atomics.wait(ctrl, ${EXIT}, 0, Atomics.load(ctrl, ${STALL_MS}));
      }
      const delay = Atomics.load(ctrl, ${DELAY});
      if (delay > 0) Atomics.wait(ctrl, ${EXIT}, 0, delay / 1000);
    }
    if (Atomics.compareExchange(ctrl, o + ${NEXT}, v, v - 4096) !== v) return 1;
    let a = j;
    const f = Atomics.load(ctrl, ${FIN});
    if (((j - f) | 0) < 0) {
      // This worker stalled while 256 jobs ran: the slot holds a later job of the same tag and
      // units, and the unit is that job's — the one job of [FIN, PUB) in this slot; its
      // description is final (the slot is not reused before it ends, which this unit prevents).
      // It runs once the jobs it waits for have finished (they need nothing from this worker).
      a = (f + ((j - f) & ${MASK})) | 0;
      for (;;) {
        const sig = Atomics.load(ctrl, ${SIG});
        if (ready(o, Atomics.load(ctrl, ${FIN}))) break;
        await_(${SIG}, sig);
      }
    }
    const n = Atomics.load(ctrl, o + ${NTASKS}), chunk = Atomics.load(ctrl, o + ${CHUNK});
    const kernel = kernels[Atomics.load(ctrl, o + ${KIND})], P = params[a & ${MASK}];
    Atomics.add(ctrl, ${WORKER_TASKS}, 1);
    try { for (let t = (hi - 1) * chunk, e = Math.min(n, t + chunk); t < e; t++) kernel.runTask(P, t); } catch (e) { fail(e); }
    if (Atomics.add(ctrl, o + ${DONE}, 1) + 1 === Math.ceil(n / chunk)) end(o, a);
    return 1;
  }
  return 0;
}
Atomics.add(ctrl, ${READY}, 1);
for (;;) {
  if (Atomics.load(ctrl, ${EXIT}) !== 0) break;
  const sig = Atomics.load(ctrl, ${SIG});
  if (!adopt()) {
    if (Atomics.load(ctrl, ${EPOCH}) !== workerData.epoch) break; // replaced (a browser pool restarting)
    fail('SyncPool: a worker could not take the data buffer of a job');
    await_(${SIG}, sig);
    continue;
  }
  if (claim() === 0) await_(${SIG}, sig);
}
`;
}

/** A pool of `numWorkers` workers plus the calling thread; see the file comment. */
export class SyncPool {
  private readonly ctrl: Int32Array;
  private readonly ctrlBuf: SharedArrayBuffer;
  private readonly paramBuf: SharedArrayBuffer;
  /** Each slot's parameter block. */
  private readonly slotParams: Float64Array[] = [];
  private workers: PoolWorker[] = [];
  private buf: SharedArrayBuffer;
  private gen = 0;
  private started = false;
  private closed = false;
  /** Jobs published (the calling thread's copy of PUB). */
  private pub = 0;
  /** Each slot's job as the calling thread started it. */
  private readonly jobs: { kind: number; numTasks: number; chunk: number; units: number }[] = [];
  /** The first error of a task on this thread, thrown at the next settle. */
  private error: unknown = undefined;
  /** The job functions the workers run too ({@link jobFunctions}). */
  private readonly fns: ReturnType<typeof jobFunctions>;

  /**
   * @param numWorkers workers to start (the calling thread is one more participant)
   * @param kernelSrc body of `function (Arr) { …; return kernel }` (see {@link PoolKernel})
   * @param kinds JS expressions for the `Arr` argument of each kind, e.g. `['Float32Array']`
   * @param mainKernels the calling thread's own instances, one per kind, same order
   * @param extra structured-cloneable data handed to every worker's kernel factory
   */
  constructor(
    readonly numWorkers: number,
    private readonly kernelSrc: string,
    private readonly kinds: string[],
    private readonly mainKernels: PoolKernel[],
    private readonly extra: unknown = null,
  ) {
    this.ctrlBuf = new SharedArrayBuffer(CTRL_SLOTS * 4);
    this.ctrl = new Int32Array(this.ctrlBuf);
    this.fns = jobFunctions(this.ctrl);
    this.paramBuf = new SharedArrayBuffer(RING * PARAM_SLOTS * 8);
    for (let i = 0; i < RING; i++) {
      this.slotParams.push(new Float64Array(this.paramBuf, i * PARAM_SLOTS * 8, PARAM_SLOTS));
      this.jobs.push({ kind: 0, numTasks: 0, chunk: 1, units: 0 });
    }
    this.buf = new SharedArrayBuffer(8);
    for (const k of mainKernels) k.setBuffer(this.buf);
  }

  /**
   * The parameter block of the next job (kernel-defined layout): fill it, then {@link run} or
   * {@link start}. When every slot holds an unfinished job, the oldest is settled first.
   */
  get params(): Float64Array {
    if (this.numWorkers > 0) this.settleTo(RING - 1);
    return this.slotParams[this.pub & MASK];
  }

  /** The current shared data buffer (replaced when it grows; re-read after `ensureBuffer`). */
  get buffer(): SharedArrayBuffer {
    return this.buf;
  }

  /** Grow the shared data buffer to at least `bytes` (contents are not preserved). */
  ensureBuffer(bytes: number): SharedArrayBuffer {
    if (this.buf.byteLength >= bytes) return this.buf;
    this.settle();
    const size = Math.max(bytes, Math.min(this.buf.byteLength * 1.5, bytes + (64 << 20)));
    this.buf = new SharedArrayBuffer(Math.ceil(size / 4096) * 4096);
    this.gen++;
    if (platform.syncMessages) {
      for (const w of this.workers) w.post({ gen: this.gen, buf: this.buf });
    } else {
      // the workers cannot take the new buffer while they block: start new ones on next use (one
      // still running until it is terminated sees the new epoch and claims nothing)
      Atomics.add(this.ctrl, EPOCH, 1);
      for (const w of this.workers) w.terminate();
      this.workers = [];
      this.started = false;
    }
    Atomics.store(this.ctrl, GEN, this.gen);
    for (const k of this.mainKernels) k.setBuffer(this.buf);
    return this.buf;
  }

  private startWorkers(): void {
    this.started = true;
    const src = workerSource(this.kernelSrc, this.kinds);
    for (let i = 0; i < this.numWorkers; i++) {
      this.workers.push(
        platform.startWorker(src, {
          ctrl: this.ctrlBuf,
          params: this.paramBuf,
          buf: this.buf,
          gen: this.gen,
          extra: this.extra,
          tid: i + 1,
          epoch: Atomics.load(this.ctrl, EPOCH),
        }),
      );
    }
  }

  /**
   * Run tasks `0 … numTasks-1` of kernel kind `kind` (parameters in {@link params}) on all
   * threads, after every job started before, and return when all are done.
   */
  run(kind: number, numTasks: number): void {
    this.check(numTasks);
    if (this.numWorkers === 0 || (numTasks <= 1 && this.pub === Atomics.load(this.ctrl, FIN))) {
      const P = this.slotParams[this.pub & MASK];
      const kernel = this.mainKernels[kind];
      for (let t = 0; t < numTasks; t++) kernel.runTask(P, t);
      return;
    }
    if (numTasks > 0) this.launch(kind, numTasks);
    this.settle();
  }

  /**
   * Starts the job (parameters in {@link params}) and returns at once: the workers take its tasks
   * from the back, the calling thread joins from the front when it settles — so its own work
   * until then overlaps the jobs. `after`: the jobs (numbers as {@link published} counted them
   * when they were started) whose results it reads — it runs once those have finished, maybe
   * before others started earlier; null: after every job started before it. Without workers the
   * job runs here before `start` returns.
   */
  start(kind: number, numTasks: number, after: readonly number[] | null = null): void {
    this.check(numTasks);
    if (this.numWorkers === 0) {
      const P = this.slotParams[this.pub & MASK];
      const kernel = this.mainKernels[kind];
      for (let t = 0; t < numTasks; t++) kernel.runTask(P, t);
      return;
    }
    if (numTasks > 0) this.launch(kind, numTasks, after);
  }

  /** Jobs started and not finished yet (0 … RING). */
  get unfinished(): number {
    return (this.pub - Atomics.load(this.ctrl, FIN)) | 0;
  }

  /** Jobs started so far, and finished so far (counts that wrap as int32). */
  get published(): number {
    return this.pub;
  }
  get finished(): number {
    return Atomics.load(this.ctrl, FIN);
  }

  private check(numTasks: number): void {
    if (this.closed) throw new Error('SyncPool: run() after close()');
    if (!(Number.isInteger(numTasks) && numTasks >= 0 && numTasks <= 0x7fffffff)) throw new RangeError(`SyncPool: ${numTasks} tasks`);
  }

  /** Publishes job `pub` (numTasks ≥ 1) in its slot, waiting for `after` (see {@link start}). */
  private launch(kind: number, numTasks: number, after: readonly number[] | null = null): void {
    if (!this.started) this.startWorkers();
    this.settleTo(RING - 1);
    const ctrl = this.ctrl;
    const j = this.pub;
    const o = SLOT0 + (j & MASK) * SLOT_INTS;
    // what it waits for: a list of unfinished jobs before it, else all the jobs up to the last of them
    const fin = Atomics.load(ctrl, FIN);
    let nd = 0,
      top = fin;
    for (const d of after ?? []) {
      if (((fin - d) | 0) > 0) continue;
      if (((d - j) | 0) >= 0) throw new RangeError(`SyncPool: job ${j} cannot wait for job ${d}`);
      if (nd < MAX_DEPS) ctrl[o + DEPS + nd] = d;
      nd++;
      if (((d + 1 - top) | 0) > 0) top = (d + 1) | 0;
    }
    const long = nd > MAX_DEPS;
    ctrl[o + AFTER] = after === null ? j : long ? top : fin;
    ctrl[o + NDEPS] = long ? 0 : nd;
    const chunk = Math.ceil(numTasks / MAX_UNITS),
      units = Math.ceil(numTasks / chunk);
    const job = this.jobs[j & MASK];
    job.kind = kind;
    job.numTasks = numTasks;
    job.chunk = chunk;
    job.units = units;
    ctrl[o + NTASKS] = numTasks;
    ctrl[o + CHUNK] = chunk;
    ctrl[o + KIND] = kind;
    ctrl[DELAY] = poolDebug.delayMicros;
    Atomics.store(ctrl, o + DONE, 0);
    Atomics.store(ctrl, o + NEXT, nextWord(j, units));
    this.pub = (j + 1) | 0;
    Atomics.store(ctrl, PUB, this.pub);
    Atomics.add(ctrl, SIG, 1);
    Atomics.notify(ctrl, SIG);
  }

  /** Finishes every started job (see {@link settleTo}). */
  settle(): void {
    this.settleTo(0);
  }

  /**
   * Works on the oldest unfinished jobs until at most `unfinished` remain (`FIN` ≥ published −
   * unfinished): the calling thread claims units from the front of the oldest of them that may
   * start; when none is left to claim it waits for the other threads (spinning for the spin
   * time, then sleeping). Rethrows a task's error.
   */
  settleTo(unfinished: number): void {
    const ctrl = this.ctrl;
    unfinished = Math.max(0, unfinished);
    for (;;) {
      const sig = Atomics.load(ctrl, SIG);
      const fin = Atomics.load(ctrl, FIN);
      if (((this.pub - fin) | 0) <= unfinished) break;
      // (not in the debug mode that leaves every task to the workers, so that a reader that
      // forgot to settle sees unfinished values)
      if (poolDebug.delayMicros === 0 && this.claimFront(fin, (this.pub - unfinished) | 0)) continue;
      // the other threads' units: spin (they end within a task's time), then sleep
      const until = performance.now() + SPIN_MS;
      for (let i = 1; Atomics.load(ctrl, SIG) === sig; i++) {
        if ((i & 255) === 0 && performance.now() > until) Atomics.wait(ctrl, SIG, sig);
      }
    }
    if (this.error !== undefined) {
      const e = this.error;
      this.error = undefined;
      throw e;
    }
    if (Atomics.load(ctrl, ERR) !== 0) {
      Atomics.store(ctrl, ERR, 0);
      let msg = 'unknown error (see the worker console)';
      for (const w of this.workers) msg = w.takeError() ?? msg;
      throw new Error(`SyncPool worker failed: ${msg}`);
    }
  }

  /**
   * Claims and runs the first unclaimed unit of the oldest job before `need` that may start
   * (`fin`: `FIN`); false when there is none.
   */
  private claimFront(fin: number, need: number): boolean {
    const ctrl = this.ctrl;
    for (let j = fin; j !== need; j = (j + 1) | 0) {
      const o = SLOT0 + (j & MASK) * SLOT_INTS;
      const v = Atomics.load(ctrl, o + NEXT);
      const lo = v & 0xfff;
      if (v >>> 24 !== (j & 0xff) || lo >= ((v >>> 12) & 0xfff) || !this.fns.ready(o, fin)) continue;
      if (Atomics.compareExchange(ctrl, o + NEXT, v, v + 1) !== v) return true;
      const { kind, numTasks, chunk, units } = this.jobs[j & MASK];
      const kernel = this.mainKernels[kind];
      const P = this.slotParams[j & MASK];
      try {
        for (let t = lo * chunk, e = Math.min(numTasks, t + chunk); t < e; t++) kernel.runTask(P, t);
      } catch (e) {
        this.error ??= e;
      }
      if (Atomics.add(ctrl, o + DONE, 1) + 1 === units) this.fns.end(o, j);
      return true;
    }
    return false;
  }

  /**
   * Test hook: the next worker to take job number `job` (a {@link published} count) stalls `ms`
   * milliseconds after reading its claim word and before its first claim, as a descheduled
   * thread would.
   */
  stallWorker(job: number, ms: number): void {
    Atomics.store(this.ctrl, STALL_MS, ms);
    Atomics.store(this.ctrl, STALL_JOB, (job + 1) | 0);
  }

  /** Diagnostics: workers that have started, and tasks run by workers (not the caller) so far. */
  stats(): { workersReady: number; workerTasks: number } {
    return { workersReady: Atomics.load(this.ctrl, READY), workerTasks: Atomics.load(this.ctrl, WORKER_TASKS) };
  }

  /** Stop the workers (they exit at their next wake-up; `terminate` is fire-and-forget). */
  close(): void {
    if (this.closed) return;
    this.settle();
    this.closed = true;
    Atomics.store(this.ctrl, EXIT, 1);
    Atomics.add(this.ctrl, SIG, 1);
    Atomics.notify(this.ctrl, SIG);
    for (const w of this.workers) w.terminate();
  }
}

let numThreads = defaultThreadCount();
const threadListeners = new Set<() => void>();

/**
 * Set the number of threads (≥ 1, the calling thread included) every CPU kernel pool uses; the
 * trainer's `--threads` option ends here. Pools of the old size are closed (their workers exit)
 * and rebuilt on next use. Results of every kernel are deterministic for a given thread count
 * (the gemm kernels are even independent of it).
 */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`setNumThreads: expected a positive integer, got ${n}`);
  if (n === numThreads) return;
  numThreads = n;
  for (const fn of threadListeners) fn();
}

/** The number of threads (the calling thread included) the CPU kernels use. */
export function getNumThreads(): number {
  return numThreads;
}

/** Calls `fn` whenever the thread count changes (pool owners close their pools there). */
export function onThreadCountChange(fn: () => void): void {
  threadListeners.add(fn);
}

/**
 * Default thread count: env `MEGA_THREADS` when it is a positive integer, otherwise
 * `os.availableParallelism()`.
 */
export function defaultThreadCount(): number {
  const env = Number.parseInt(platform.env('MEGA_THREADS') ?? '', 10);
  if (Number.isInteger(env) && env >= 1) return env;
  return platform.defaultThreads();
}
