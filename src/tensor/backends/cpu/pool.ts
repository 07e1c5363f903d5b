/**
 * A synchronous worker_threads pool for CPU kernels.
 *
 * The caller (the main thread) writes its operands into one SharedArrayBuffer, fills a small
 * shared parameter block, and calls {@link SyncPool.run}. Workers and the main thread then
 * claim task indices `0 … numTasks-1` from a shared counter (dynamic scheduling, so a busy core
 * slows nobody down), each task runs `kernel.runTask(params, t)`, and the main thread blocks in
 * `Atomics.wait` until the done-counter reaches `numTasks`. From the caller's view the call is an
 * ordinary synchronous function — the autograd engine needs that.
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
 * Protocol (all in `ctrl`, an Int32Array over a SharedArrayBuffer):
 * - `SEQ` is bumped once per job; idle workers `Atomics.wait` on it.
 * - `NEXT` holds `tag << 16 | nextTask`, where `tag = SEQ & 0x7fff`. A worker claims a task with
 *   compare-exchange only while the tag is its job's tag, so a worker that woke late for a job
 *   that already finished can never steal (and mis-run) a task of the following job.
 *   Between jobs NEXT holds index 0xffff (never below NTASKS), so a late worker that reads the
 *   next job's NTASKS before its NEXT cannot claim a stale index either.
 * - `DONE` counts finished tasks; whoever finishes the last one notifies the main thread.
 * - `GEN` is the generation of the data buffer. When the buffer grows, the new
 *   SharedArrayBuffer is posted on each worker's MessagePort *before* `GEN` is bumped; a worker
 *   that sees a new `GEN` pulls it synchronously (`receiveMessageOnPort`). A browser has no
 *   synchronous receive: there the pool restarts its workers with the new buffer instead.
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
const SEQ = 0;
const NEXT = 1;
const DONE = 2;
const NTASKS = 3;
const KIND = 4;
const GEN = 5;
const EXIT = 6;
const ERR = 7;
const READY = 8;
const WORKER_TASKS = 9;
const CTRL_SLOTS = 16;
/** Number of float64 parameter slots shared with the kernels. */
export const PARAM_SLOTS = 64;
/** Largest task count one job may have (the task index lives in the low 16 bits of NEXT). */
export const MAX_TASKS = 0x7fff;

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
 * into blocks of panels. More than {@link MAX_TASKS} tasks (very many small matrices) fall back
 * to whole matrices, enough of them per task.
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
  const tasks = Math.ceil(g / bpt) * mchR * nchR;
  if (tasks > MAX_TASKS) {
    const whole = Math.ceil(g / MAX_TASKS);
    return { bpt: whole, mch: 1, nch: 1, ppm: mp, ppn: np, tasks: Math.ceil(g / whole) };
  }
  return { bpt, mch: mchR, nch: nchR, ppm, ppn, tasks };
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
/** NEXT between jobs: an index no job has, so no late worker can claim anything. */
const IDLE = 0xffff;

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
const params = new Float64Array(workerData.params);
let gen = workerData.gen;
for (const k of kernels) k.setBuffer(workerData.buf);
let seen = 0;
Atomics.add(ctrl, ${READY}, 1);
for (;;) {
  let s = Atomics.load(ctrl, ${SEQ});
  if (s === seen) {
    // spin a while before sleeping: the next job of a step usually follows within microseconds,
    // and a sleeping thread takes ~0.1 ms (a virtual CPU's halt) to wake
    const until = performance.now() + ${SPIN_MS};
    for (let i = 1; s === seen; i++) {
      s = Atomics.load(ctrl, ${SEQ});
      if ((i & 255) === 0 && performance.now() > until) break;
    }
    if (s === seen) { Atomics.wait(ctrl, ${SEQ}, seen); continue; }
  }
  seen = s;
  if (Atomics.load(ctrl, ${EXIT}) !== 0) break;
  const g = Atomics.load(ctrl, ${GEN});
  while (gen !== g) {
    const m = pullMessage();
    if (m === undefined) break;
    gen = m.gen;
    for (const k of kernels) k.setBuffer(m.buf);
  }
  if (gen !== g) continue;
  const tag = s & ${MAX_TASKS};
  const n = Atomics.load(ctrl, ${NTASKS});
  const kernel = kernels[Atomics.load(ctrl, ${KIND})];
  for (;;) {
    const v = Atomics.load(ctrl, ${NEXT});
    if ((v >>> 16) !== tag || (v & 0xffff) >= n) break;
    if (Atomics.compareExchange(ctrl, ${NEXT}, v, v + 1) !== v) continue;
    Atomics.add(ctrl, ${WORKER_TASKS}, 1);
    try { kernel.runTask(params, v & 0xffff); }
    catch (e) { if (Atomics.compareExchange(ctrl, ${ERR}, 0, 1) === 0) reportError(String(e && e.stack || e)); }
    if (Atomics.add(ctrl, ${DONE}, 1) + 1 === n) Atomics.notify(ctrl, ${DONE});
  }
}
`;
}

/** A pool of `numWorkers` workers plus the calling thread; see the file comment. */
export class SyncPool {
  /** Shared float64 parameters of the current job (kernel-defined layout). */
  readonly params: Float64Array;
  private readonly ctrl: Int32Array;
  private readonly ctrlBuf: SharedArrayBuffer;
  private readonly paramBuf: SharedArrayBuffer;
  private workers: PoolWorker[] = [];
  private buf: SharedArrayBuffer;
  private gen = 0;
  private started = false;
  private closed = false;

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
    this.ctrl[NEXT] = IDLE;
    this.paramBuf = new SharedArrayBuffer(PARAM_SLOTS * 8);
    this.params = new Float64Array(this.paramBuf);
    this.buf = new SharedArrayBuffer(8);
    for (const k of mainKernels) k.setBuffer(this.buf);
  }

  /** The current shared data buffer (replaced when it grows; re-read after `ensureBuffer`). */
  get buffer(): SharedArrayBuffer {
    return this.buf;
  }

  /** Grow the shared data buffer to at least `bytes` (contents are not preserved). */
  ensureBuffer(bytes: number): SharedArrayBuffer {
    if (this.buf.byteLength >= bytes) return this.buf;
    const size = Math.max(bytes, Math.min(this.buf.byteLength * 1.5, bytes + (64 << 20)));
    this.buf = new SharedArrayBuffer(Math.ceil(size / 4096) * 4096);
    this.gen++;
    if (platform.syncMessages) {
      for (const w of this.workers) w.post({ gen: this.gen, buf: this.buf });
    } else {
      // the workers cannot take the new buffer while they block: start new ones on next use
      for (const w of this.workers) w.terminate();
      this.workers = [];
      this.started = false;
    }
    Atomics.store(this.ctrl, GEN, this.gen);
    for (const k of this.mainKernels) k.setBuffer(this.buf);
    return this.buf;
  }

  private start(): void {
    this.started = true;
    const src = workerSource(this.kernelSrc, this.kinds);
    for (let i = 0; i < this.numWorkers; i++) {
      this.workers.push(platform.startWorker(src, { ctrl: this.ctrlBuf, params: this.paramBuf, buf: this.buf, gen: this.gen, extra: this.extra, tid: i + 1 }));
    }
  }

  /**
   * Run tasks `0 … numTasks-1` of kernel kind `kind` on all threads and return when all are
   * done. The caller must have written the data buffer and `params` first.
   */
  run(kind: number, numTasks: number): void {
    if (this.closed) throw new Error('SyncPool: run() after close()');
    if (!(numTasks >= 0 && numTasks <= MAX_TASKS)) throw new RangeError(`SyncPool: ${numTasks} tasks`);
    const kernel = this.mainKernels[kind];
    if (this.numWorkers === 0 || numTasks <= 1) {
      for (let t = 0; t < numTasks; t++) kernel.runTask(this.params, t);
      return;
    }
    if (!this.started) this.start();
    const ctrl = this.ctrl;
    ctrl[NTASKS] = numTasks;
    ctrl[KIND] = kind;
    Atomics.store(ctrl, DONE, 0);
    Atomics.store(ctrl, ERR, 0);
    const s = (Atomics.load(ctrl, SEQ) + 1) | 0 || 1;
    const tag = s & MAX_TASKS;
    Atomics.store(ctrl, NEXT, tag << 16);
    Atomics.store(ctrl, SEQ, s);
    Atomics.notify(ctrl, SEQ);
    let error: unknown = undefined;
    // The calling thread works too.
    for (;;) {
      const v = Atomics.load(ctrl, NEXT);
      if (v >>> 16 !== tag || (v & 0xffff) >= numTasks) break;
      if (Atomics.compareExchange(ctrl, NEXT, v, v + 1) !== v) continue;
      try {
        kernel.runTask(this.params, v & 0xffff);
      } catch (e) {
        error ??= e;
      }
      Atomics.add(ctrl, DONE, 1);
    }
    // the other threads' last tasks: spin (they end within a task's time), then sleep
    const until = performance.now() + SPIN_MS;
    for (let i = 1; ; i++) {
      const d = Atomics.load(ctrl, DONE);
      if (d >= numTasks) break;
      if ((i & 255) === 0 && performance.now() > until) Atomics.wait(ctrl, DONE, d);
    }
    // Close the job before NTASKS/KIND change for the next one: index 0xffff is never < NTASKS.
    Atomics.store(ctrl, NEXT, IDLE);
    if (error !== undefined) throw error;
    if (Atomics.load(ctrl, ERR) !== 0) {
      let msg = 'unknown error (see the worker console)';
      for (const w of this.workers) msg = w.takeError() ?? msg;
      throw new Error(`SyncPool worker failed: ${msg}`);
    }
  }

  /** Diagnostics: workers that have started, and tasks run by workers (not the caller) so far. */
  stats(): { workersReady: number; workerTasks: number } {
    return { workersReady: Atomics.load(this.ctrl, READY), workerTasks: Atomics.load(this.ctrl, WORKER_TASKS) };
  }

  /** Stop the workers (they exit at their next wake-up; `terminate` is fire-and-forget). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.ctrl, EXIT, 1);
    Atomics.store(this.ctrl, SEQ, (Atomics.load(this.ctrl, SEQ) + 1) | 0 || 1);
    Atomics.notify(this.ctrl, SEQ);
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
