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
 * Protocol (all in `ctrl`, an Int32Array over a SharedArrayBuffer):
 * - `SEQ` is bumped once per job; idle workers `Atomics.wait` on it.
 * - A job's tasks are claimed in units of `CHUNK` consecutive tasks (1 unless a job has more than
 *   `MAX_UNITS` (4,095) tasks). `NEXT` holds `tag << 24 | hi << 12 | lo`: units `[lo, hi)` are
 *   unclaimed, `tag = SEQ & 0xff`. The main thread claims unit `lo` (compare-exchange to lo + 1),
 *   a worker unit `hi − 1` (to hi − 1), only while the tag is its job's. Between jobs NEXT holds
 *   lo = hi = 0 (nothing to claim). A worker that woke late could still meet a later job of the
 *   same tag (256 jobs on): after its claim succeeds it re-reads SEQ — that job cannot end before
 *   the claimed unit is done, so SEQ is stable then — and takes the job's description anew when
 *   it differs from the one it read.
 * - `DONE` counts finished units; whoever finishes the last one notifies the main thread.
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
const CHUNK = 10;
const CTRL_SLOTS = 16;
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
/** NEXT between jobs: lo = hi, so no late worker can claim anything. */
const IDLE = 0;
/** The units `[0, units)` of a job with tag `tag`, as NEXT holds them. */
function nextWord(tag: number, units: number): number {
  return (tag << 24) | (units << 12);
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
const params = new Float64Array(workerData.params);
let gen = workerData.gen;
for (const k of kernels) k.setBuffer(workerData.buf);
let seen = 0;
let n = 0, chunk = 1, units = 0, kernel = null;
/** Takes the description of job s (buffer generation, tasks, kind); false when its buffer is not here. */
function adopt(s) {
  const g = Atomics.load(ctrl, ${GEN});
  while (gen !== g) {
    const m = pullMessage();
    if (m === undefined) break;
    gen = m.gen;
    for (const k of kernels) k.setBuffer(m.buf);
  }
  if (gen !== g) return false;
  n = Atomics.load(ctrl, ${NTASKS});
  chunk = Atomics.load(ctrl, ${CHUNK});
  units = Math.ceil(n / chunk);
  kernel = kernels[Atomics.load(ctrl, ${KIND})];
  return true;
}
function fail(e) { if (Atomics.compareExchange(ctrl, ${ERR}, 0, 1) === 0) reportError(String(e && e.stack || e)); }
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
  if (!adopt(s)) continue;
  const tag = s & 0xff;
  for (;;) {
    const v = Atomics.load(ctrl, ${NEXT});
    const hi = (v >>> 12) & 0xfff;
    if ((v >>> 24) !== tag || (v & 0xfff) >= hi) break;
    if (Atomics.compareExchange(ctrl, ${NEXT}, v, v - 4096) !== v) continue;
    const s2 = Atomics.load(ctrl, ${SEQ});
    let ok = true;
    if (s2 !== s) { s = seen = s2; ok = adopt(s2); }
    Atomics.add(ctrl, ${WORKER_TASKS}, 1);
    if (!ok) fail('SyncPool: a worker could not take the data buffer of a job');
    else try { for (let t = (hi - 1) * chunk, e = Math.min(n, t + chunk); t < e; t++) kernel.runTask(params, t); } catch (e) { fail(e); }
    if (Atomics.add(ctrl, ${DONE}, 1) + 1 === units) Atomics.notify(ctrl, ${DONE});
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
    if (!(Number.isInteger(numTasks) && numTasks >= 0 && numTasks <= 0x7fffffff)) throw new RangeError(`SyncPool: ${numTasks} tasks`);
    const kernel = this.mainKernels[kind];
    if (this.numWorkers === 0 || numTasks <= 1) {
      for (let t = 0; t < numTasks; t++) kernel.runTask(this.params, t);
      return;
    }
    if (!this.started) this.start();
    const ctrl = this.ctrl;
    const chunk = Math.ceil(numTasks / MAX_UNITS),
      units = Math.ceil(numTasks / chunk);
    ctrl[NTASKS] = numTasks;
    ctrl[CHUNK] = chunk;
    ctrl[KIND] = kind;
    Atomics.store(ctrl, DONE, 0);
    Atomics.store(ctrl, ERR, 0);
    const s = (Atomics.load(ctrl, SEQ) + 1) | 0 || 1;
    const tag = s & 0xff;
    Atomics.store(ctrl, NEXT, nextWord(tag, units));
    Atomics.store(ctrl, SEQ, s);
    Atomics.notify(ctrl, SEQ);
    let error: unknown = undefined;
    // The calling thread works too, from the front.
    for (;;) {
      const v = Atomics.load(ctrl, NEXT);
      const lo = v & 0xfff;
      if (v >>> 24 !== tag || lo >= ((v >>> 12) & 0xfff)) break;
      if (Atomics.compareExchange(ctrl, NEXT, v, v + 1) !== v) continue;
      try {
        for (let t = lo * chunk, e = Math.min(numTasks, t + chunk); t < e; t++) kernel.runTask(this.params, t);
      } catch (e) {
        error ??= e;
      }
      Atomics.add(ctrl, DONE, 1);
    }
    // the other threads' last units: spin (they end within a task's time), then sleep
    const until = performance.now() + SPIN_MS;
    for (let i = 1; ; i++) {
      const d = Atomics.load(ctrl, DONE);
      if (d >= units) break;
      if ((i & 255) === 0 && performance.now() > until) Atomics.wait(ctrl, DONE, d);
    }
    // Close the job before NTASKS/KIND change for the next one: nothing is left to claim.
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
