/**
 * The WebAssembly runtime of the CPU backend: one module (every SIMD kernel, emitted at start-up
 * from TypeScript, see gemm.ts / elementwise.ts), one shared `WebAssembly.Memory`, and one
 * {@link SyncPool} whose workers instantiate the same module over the same memory — operands are
 * copied into the memory once and every thread works on them in place.
 *
 * Work is described by a parameter block (`pool.params`, float64 slots; slot 0 = op code) and
 * split into tasks `0 … n-1`; {@link TASK_SRC} (the same source on every thread) turns a task
 * index into calls of the module's exports. Which thread runs a task never changes what it
 * writes, so every result is deterministic for a given thread count.
 *
 * Memory: resident tensor blocks ({@link WasmHeap}, heap.ts) below a bump arena per kernel call
 * ({@link Arena}); the memory grows on demand (it cannot shrink, so the peak stays reserved).
 */
import { platform } from '../../../platform/node.js';
import { hostSync } from '../../../host-sync.js';
import { Tensor } from '../../../tensor.js';
import { getNumThreads, onThreadCountChange, RING, SyncPool, type PoolKernel } from '../pool.js';
import { ModuleBuilder } from './builder.js';
import { emitCopy } from './copy.js';
import { emitElementwise } from './elementwise.js';
import { emitEma } from './ema.js';
import { emitDirectConv } from './dconv.js';
import { emitFftConv } from './fft.js';
import { emitToeplitzMaps } from './toeplitz.js';
import { emitWhereMaps } from './where.js';
import { emitLayerNormMaps } from './layernorm.js';
import { emitGates } from './gates.js';
import { emitGemmMacro, GEMM_SHAPES } from './gemm.js';
import { emitPack } from './gemm-pack.js';
import { growTo, MAX_PAGES, WasmHeap } from './heap.js';
import { emitOptim } from './optim.js';
import { emitBatchNormMaps } from './batchnorm.js';
import { emitRandom } from './random.js';
import { emitRows } from './rows.js';

/** Bytes below the arena reserved for per-thread scratch. */
const ARENA_BASE = 1 << 16;

/** Op codes of the parameter block (slot 0). */
export const OP_PACK = 1;
export const OP_GEMM = 2;
export const OP_MAP = 3;
export const OP_FFT = 4;
export const OP_EMA = 5;
export const OP_DROPOUT = 6;

/**
 * Task dispatcher: body of `function (Arr, extra, tid)` returning the thread's kernel object.
 * Shared verbatim by the calling thread and the workers.
 */
export const TASK_SRC = `"use strict";
const ex = new WebAssembly.Instance(extra.module, { env: { mem: extra.memory } }).exports;
const PACK = [ex.pack_f32_${GEMM_SHAPES.f32.MR}, ex.pack_f32_${GEMM_SHAPES.f32.NR}, ex.pack_f64_${GEMM_SHAPES.f64.MR}, ex.pack_f64_${GEMM_SHAPES.f64.NR}];
const GEMM = [ex.gemm_f32, ex.gemm_f64];
const MAP = extra.mapNames.map((n) => ex[n]);
const FFT = [ex.fftconv_f32, ex.fftconv_f64, ex.dconv_f32, ex.dconv_f64];
const EMA = [ex.ema_f32, ex.ema_f64, ex.emagrad_f32, ex.emagrad_f64];
const DROPOUT = [ex.dropout_f32, ex.dropout_f64];
function packSet(P, o, t) {
  // a set from slot o: fn, src, srcStride, rows, K, si, sk, dst, dstStride, panels, panels per task,
  // chunks per matrix group, matrices per group, matrices
  const chunks = P[o + 11];
  const grp = Math.floor(t / chunks), ch = t - grp * chunks;
  const p0 = ch * P[o + 10], p1 = Math.min(P[o + 9], p0 + P[o + 10]);
  const m0 = grp * P[o + 12], m1 = Math.min(P[o + 13], m0 + P[o + 12]);
  PACK[P[o]](P[o + 1] + m0 * P[o + 2], P[o + 3], P[o + 4], P[o + 5], P[o + 6], P[o + 7] + m0 * P[o + 8], p0, p1, m1 - m0, P[o + 2], P[o + 8]);
}
function gemmTask(P, t) {
  // P[2..6] A: address, panel / row / k / matrix strides; P[7..10] B: address, panel / k / matrix
  // strides; P[11..13] C: address, matrix stride, row pitch; P[14] K; P[15], P[16] row / column
  // panels; P[17] matrices, P[18] per task; P[19], P[20] row / column blocks; P[21], P[22] panels
  // per block; P[23] M, P[24] N; P[25] triangular structure, P[26] first row of the block, P[27]
  // the bias row's address (0: none)
  const mch = P[19], nch = P[20], per = mch * nch;
  const g = Math.floor(t / per), rest = t - g * per;
  const mi = Math.floor(rest / nch), ni = rest - mi * nch;
  const p0 = mi * P[21], p1 = Math.min(p0 + P[21], P[15]);
  const q0 = ni * P[22], q1 = Math.min(q0 + P[22], P[16]);
  const b0 = g * P[18], b1 = Math.min(b0 + P[18], P[17]);
  GEMM[P[1]](P[2] + b0 * P[6], P[3], P[4], P[5], P[7] + b0 * P[10], P[8], P[9], P[11] + b0 * P[12], P[13], P[14],
    p0, p1, q0, q1, P[23], P[24], b1 - b0, P[6], P[10], P[12], P[25], P[26], P[27]);
}
function mapTask(P, t) {
  // P[1] fn, P[2] n (elements), P[3] per-task elements, P[4..] byte addresses / scalars
  const s = t * P[3], e = Math.min(P[2], s + P[3]);
  MAP[P[1]](s, e, P[4], P[5], P[6], P[7], P[8], P[9]);
}
function runTask(P, t) {
  switch (P[0]) {
    case ${OP_PACK}: if (t < P[1]) packSet(P, 2, t); else packSet(P, 16, t - P[1]); break;
    case ${OP_GEMM}: gemmTask(P, t); break;
    case ${OP_MAP}: mapTask(P, t); break;
    case ${OP_FFT}: FFT[P[1]](P[2], t, tid); break;
    case ${OP_EMA}: EMA[P[1]](P[2], t, tid); break;
    case ${OP_DROPOUT}: DROPOUT[P[1]](P[2], P[3], P[4], P[5], P[6], P[7]); break;
    default: throw new Error('wasm pool: unknown op ' + P[0]);
  }
}
return { setBuffer() {}, runTask, ex };
`;

/** The calling thread's kernel object (also gives direct access to the exports). */
export interface WasmKernel extends PoolKernel {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly ex: Record<string, (...args: number[]) => any>;
}

/** Everything the wasm kernels share. */
export interface WasmRuntime {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly main: WasmKernel;
  /** Index of each elementwise map function (see elementwise.ts) in the dispatcher's MAP table. */
  readonly mapIndex: ReadonlyMap<string, number>;
  readonly mapNames: string[];
}

/**
 * Test switch: `force` sends every size through the SIMD kernels and splits every job into
 * tasks on the pool (so small test cases exercise the wasm and threaded paths). Env
 * `MEGA_SIMD=force` sets it at start-up.
 */
export const simdTuning = { force: (platform.env('MEGA_SIMD') ?? '').toLowerCase() === 'force' };

let runtime: WasmRuntime | null | undefined;
let failure: string | undefined;
let simdWanted = !['0', 'false', 'off', 'no'].includes((platform.env('MEGA_SIMD') ?? '').toLowerCase());

/** Builds the module bytes (exported for tests and tools). */
export function buildModuleBytes(shared = true): { bytes: Uint8Array<ArrayBuffer>; mapNames: string[] } {
  const mb = new ModuleBuilder();
  for (const dt of ['f32', 'f64'] as const) {
    const s = GEMM_SHAPES[dt];
    emitGemmMacro(mb, dt, s);
    emitPack(mb, dt, s.MR);
    if (s.NR !== s.MR) emitPack(mb, dt, s.NR);
  }
  const mapNames = [
    ...emitElementwise(mb),
    ...emitGates(mb),
    ...emitWhereMaps(mb),
    ...emitLayerNormMaps(mb),
    ...emitCopy(mb),
    ...emitToeplitzMaps(mb),
    ...emitBatchNormMaps(mb),
    ...emitOptim(mb),
    ...emitRows(mb),
  ];
  const movers = emitFftConv(mb);
  for (const dt of ['f32', 'f64'] as const) emitDirectConv(mb, dt, movers[dt].load, movers[dt].store);
  emitEma(mb);
  emitRandom(mb);
  return { bytes: mb.bytes({ initial: 2, maximum: MAX_PAGES, shared }), mapNames };
}

function create(): WasmRuntime | null {
  try {
    // shared memory needs SharedArrayBuffer (absent on a browser page that is not cross-origin
    // isolated); without it the same kernels run on the calling thread only
    const shared = typeof SharedArrayBuffer === 'function';
    const { bytes, mapNames } = buildModuleBytes(shared);
    const module = new WebAssembly.Module(bytes);
    const memory = new WebAssembly.Memory({ initial: 2, maximum: MAX_PAGES, shared });
    const extra = { module, memory, mapNames };
    const main = new Function('Arr', 'extra', 'tid', TASK_SRC)(null, extra, 0) as WasmKernel;
    return { module, memory, main, mapNames, mapIndex: new Map(mapNames.map((n, i) => [n, i])) };
  } catch (e) {
    failure = (e as Error).message;
    return null;
  }
}

/** The runtime, or null when WebAssembly SIMD / shared memory is unavailable or disabled. */
export function wasmRuntime(): WasmRuntime | null {
  if (!simdWanted) return null;
  if (runtime === undefined) runtime = create();
  return runtime;
}

/** Whether the SIMD kernels are in use (and why not, when they are not). */
export function simdStatus(): { enabled: boolean; reason?: string } {
  if (!simdWanted) return { enabled: false, reason: 'disabled (MEGA_SIMD=0 or setSimd(false))' };
  const rt = wasmRuntime();
  return rt ? { enabled: true } : { enabled: false, reason: failure ?? 'unavailable' };
}

/**
 * Switch the WebAssembly SIMD kernels on or off (off = the plain TypeScript reference kernels);
 * for tests and benchmarks. Env `MEGA_SIMD=0` sets the default to off.
 */
export function setSimd(enabled: boolean): void {
  simdWanted = enabled;
}

let pool: SyncPool | undefined;
/** Jobs queued by the pools closed before this one (job counts go on across pools). */
let closedJobs = 0;
onThreadCountChange(() => {
  settleJobs();
  closedJobs = queuedJobs();
  pool?.close();
  pool = undefined;
});

/** The wasm worker pool (getNumThreads() − 1 workers plus the calling thread). */
export function wasmPool(rt: WasmRuntime): SyncPool {
  pool ??= new SyncPool(getNumThreads() - 1, TASK_SRC, ['null'], [rt.main], { module: rt.module, memory: rt.memory, mapNames: rt.mapNames });
  return pool;
}

/** Diagnostics: workers started and tasks run by workers in the wasm pool. */
export function wasmThreadStats(): { workersReady: number; workerTasks: number } {
  return pool?.stats() ?? { workersReady: 0, workerTasks: 0 };
}

/**
 * Deferred jobs. Inside a resident scope (resident.ts turns `enabled` on) a kernel may ask
 * {@link runJob} to defer its job: the job is queued on the pool (pool.ts `start`) and the kernel
 * returns while a worker runs it, so the JavaScript of the next ops (the autograd engine, views,
 * the next kernels' set-up) overlaps the kernels before them; the calling thread joins the
 * oldest jobs whenever more than `depth` are unfinished. A job queued inside a kernel call waits
 * only for the jobs that write what the call read (see "Job order" below) and may run before
 * jobs queued earlier; any other job waits for all the jobs queued before it.
 * A kernel defers only a job that writes resident blocks alone and touches no memory after it:
 * - values reach JavaScript only through `Tensor.storage`, which waits first (host-sync.ts) for
 *   the jobs queued up to the end of the kernel that made them ({@link stampOutputs}); tensors
 *   are immutable in value, and the one writer of existing storages — the optimizer's update —
 *   is a job that is never deferred (so it runs after every job queued before it);
 * - blocks freed while jobs are queued go back to the heap only when the jobs queued before the
 *   free have finished (resident.ts), so a new block's zero fill never lands in memory a queued
 *   job still reads;
 * - a job that reads the arena's scratch (packed panels, tables) is deferred with `'scratch'`: its
 *   scratch becomes a heap block until it has finished, so a later kernel's scratch (staging,
 *   tables) lies above it; a job deferred with `true` reads resident blocks alone;
 * - anything that runs wasm code or writes the memory outside {@link runJob} and the arena's
 *   views settles first.
 * `MEGA_DEFER=0` turns deferral off (every job synchronous).
 */
export const deferredJobs = {
  enabled: false,
  allowed: !['0', 'false', 'off', 'no'].includes((platform.env('MEGA_DEFER') ?? '').toLowerCase()),
  /** Unfinished jobs the calling thread leaves to the workers before it returns to its own work. */
  depth: queueDepth(platform.env('MEGA_QUEUE_DEPTH')),
};

/** The queue depth from `MEGA_QUEUE_DEPTH`: an integer in [1, RING − 1], else the default 2. */
export function queueDepth(text: string | undefined): number {
  const v = Number(text);
  return text !== undefined && Number.isInteger(v) && v >= 1 && v < RING ? v : 2;
}

/** Called with the pool's finished-job count as jobs finish (resident.ts returns the frees it held back). */
const progressHooks: ((finished: number) => void)[] = [];

/** Registers `fn(finished)`: called after deferred jobs finish, with the pool's finished-job count. */
export function onJobsFinished(fn: (finished: number) => void): void {
  progressHooks.push(fn);
}

/** Jobs queued so far (all pools): a job queued before a free has a lower number. */
export function queuedJobs(): number {
  return (closedJobs + (pool?.published ?? 0)) | 0;
}

/** Jobs finished so far (all pools). */
function finishedJobs(): number {
  return (closedJobs + (pool?.finished ?? 0)) | 0;
}

/** Whether job count `tag` (a {@link queuedJobs} value) has finished, given the finished count. */
export function jobsDone(tag: number, finished: number): boolean {
  return ((finished - tag) | 0) >= 0;
}

function progress(finished: number): void {
  arena?.release(finished);
  for (const fn of progressHooks) fn(finished);
}

/** Waits for every deferred job (see {@link deferredJobs}). */
export function settleJobs(): void {
  if (!hostSync.pending) return;
  hostSync.pending = false;
  try {
    pool?.settle();
  } finally {
    progress(finishedJobs());
  }
}

/** Kernel outputs by the job count after the kernel that made them (its jobs are queued by then). */
const written = new WeakMap<object, number>();

/**
 * Notes that the fresh storages of `result` (a kernel's output tensors, as register.ts sees them
 * returned) are final once the jobs queued so far have finished — the last of them being the
 * kernel's own, which ends after its others (inside resident scopes, where jobs may be deferred).
 * `before`: the {@link queuedJobs} count when the kernel started — a kernel that queued no job
 * wrote its fresh outputs itself, so they wait for nothing. An output that shares an earlier
 * storage (a view of an input; no kernel writes a storage it did not make) keeps its stamp.
 */
export function stampOutputs<T>(result: T, before: number): T {
  if (!deferredJobs.enabled) return result;
  const tag = queuedJobs();
  const reading = hostSync.reading; // (an outer call's: these reads are no input of its)
  hostSync.reading = null;
  if (Array.isArray(result)) {
    for (const t of result) if (t instanceof Tensor) stamp(t, tag, before);
  } else if (result instanceof Tensor) stamp(result, tag, before);
  hostSync.reading = reading;
  return result;
}

function stamp(t: Tensor, tag: number, before: number): void {
  if (t.device) return;
  if (!written.has(t.data)) written.set(t.data, tag !== before ? tag : FINAL);
}

/**
 * Notes that `storage` (a view of the wasm memory) is final once the jobs queued so far have
 * finished: a job just queued writes it (a kernel outside register.ts, a generator's state).
 */
export function stampWritten(storage: object): void {
  written.set(storage, queuedJobs());
}

/** Whether a job that {@link runJob} is asked to defer would be deferred now. */
export function deferring(): boolean {
  return deferredJobs.enabled && deferredJobs.allowed && getNumThreads() > 1;
}

/**
 * Notes that no job writes `storage` (a parameter's persistent block: only the optimizer's
 * update writes it, and that job is never deferred).
 */
export function stampFinal(storage: object): void {
  written.set(storage, FINAL);
}
/** The stamp of a storage no job writes. */
const FINAL = -0x80000000;

/**
 * Job order. register.ts wraps every kernel call in {@link openCall} / {@link closeCall}; while
 * jobs may be deferred, the call notes the storage of every `Tensor.data` read in it
 * (host-sync.ts `reading`) — the kernel's inputs, however it reaches them. A storage stamped by
 * the kernel that wrote it ({@link stampOutputs}: the jobs up to that kernel's last) adds that
 * last job, when unfinished, to what the call's next job waits for; a resident storage with no
 * stamp (written by something the stamps do not follow) makes it wait for every job before it.
 * The jobs of one call wait for each other in the order queued (the next job for the one before,
 * and for what was read in between: a nested kernel call's outputs). A call may name a storage
 * it reads otherwise ({@link callReads}: a dropout mask's generator state, stamped by the mask
 * before). A job queued outside any call waits for all jobs before it.
 * What jobs write needs no more than this: a deferred job writes only fresh blocks, which no
 * queued job reads (a block goes back to the heap once the jobs queued before its free have
 * finished), and its own call's scratch.
 */
interface CallFrame {
  /** Whether this call collects (jobs may be deferred). */
  on: boolean;
  /** Jobs (queued-job numbers) the call's next job waits for. */
  after: number[];
  /** Whether it waits for every job before it. */
  all: boolean;
}
/** The kernel calls in progress, innermost last (frames reused between calls). */
const frames: CallFrame[] = [];
let callDepth = 0;

/** The innermost call's frame when it collects, else null. */
function collecting(): CallFrame | null {
  const f = callDepth > 0 ? frames[callDepth - 1] : null;
  return f !== null && f.on ? f : null;
}

/** Opens a kernel call (register.ts): see "Job order". */
export function openCall(): void {
  const f = (frames[callDepth++] ??= { on: false, after: [], all: false });
  f.on = deferring();
  f.after.length = 0;
  f.all = false;
  hostSync.reading = f.on ? noteRead : null;
}

/**
 * Notes that the open call's next job reads `storage`, which it reaches by other means than a
 * tensor (a generator's state words: random-simd.ts).
 */
export function callReads(storage: object): void {
  if (collecting()) noteRead(storage);
}

/** Closes the innermost kernel call. */
export function closeCall(): void {
  callDepth--;
  hostSync.reading = collecting() ? noteRead : null;
}

function noteRead(storage: object): void {
  const tag = written.get(storage);
  if (tag === FINAL) return;
  const f = frames[callDepth - 1];
  if (tag === undefined) {
    // an ordinary array is read by JavaScript only; a resident block is what jobs read
    if ((storage as ArrayBufferView).buffer instanceof SharedArrayBuffer) f.all = true;
    return;
  }
  if (jobsDone(tag, finishedJobs())) return;
  const job = (tag - 1) | 0;
  if (!f.after.includes(job)) f.after.push(job);
}

/**
 * Test hooks: with `record` on, each deferred job appends what it waits for to `waits` (queued-job
 * numbers of the unfinished jobs; null: every job before it); `afterCount`, when set, runs once
 * right after the calling thread has read how many jobs finished (to let the rest finish then).
 */
export const jobDebug = { record: false, waits: [] as (number[] | null)[], afterCount: null as (() => void) | null };

/** What the next job queued now waits for, as {@link SyncPool.start} takes it (null: all before it). */
function waitsFor(): number[] | null {
  const f = collecting();
  if (jobDebug.record) jobDebug.waits.push(f === null || f.all ? null : f.after.filter((j) => !jobsDone((j + 1) | 0, finishedJobs())));
  if (f === null || f.all) return null;
  poolAfter.length = 0;
  for (const j of f.after) poolAfter.push((j - closedJobs) | 0); // (jobs of a closed pool: finished)
  return poolAfter;
}
const poolAfter: number[] = [];

/** After a job was queued: the call's next job waits for this one (and what is read after it). */
function queued(): void {
  const f = collecting();
  if (f === null) return;
  f.after.length = 0;
  f.after.push((queuedJobs() - 1) | 0);
  f.all = false;
}

/**
 * Waits for the jobs that write `storage`: those queued up to the end of the kernel that made it
 * when it is stamped ({@link stampOutputs}), none for {@link stampFinal}, else all.
 */
function settleFor(storage: object): void {
  const tag = written.get(storage);
  if (tag === FINAL) return;
  if (tag === undefined || !pool) return settleJobs();
  if (jobsDone(tag, finishedJobs())) return;
  pool.settleTo((queuedJobs() - tag) | 0);
  caughtUp();
}

/**
 * Returns what the finished jobs held (scratch, frees) and, when none is left unfinished, clears
 * `pending` — both from one reading of the count: a job that finishes in between leaves `pending`
 * set, so the next settle returns what it held.
 */
function caughtUp(): void {
  const finished = finishedJobs();
  const hook = jobDebug.afterCount;
  if (hook) {
    jobDebug.afterCount = null;
    hook();
  }
  progress(finished);
  if (finished === queuedJobs()) hostSync.pending = false;
}
hostSync.settle = settleFor;

/**
 * Runs `numTasks` tasks of the job that `fill` describes in the parameter block — on the pool
 * when `parallel` and there are several threads and tasks, else on the calling thread. With
 * `defer` (see {@link deferredJobs}) the job may still be queued or running when this returns.
 */
export function runJob(rt: WasmRuntime, parallel: boolean, numTasks: number, fill: (P: Float64Array) => void, defer: boolean | 'scratch' = false): void {
  const threads = getNumThreads();
  if (defer !== false && deferring() && numTasks > 0) {
    const p = wasmPool(rt);
    fill(p.params);
    p.start(0, numTasks, waitsFor());
    queued();
    hostSync.pending = true;
    if (defer === 'scratch' && !wasmArena(rt).hold(queuedJobs())) {
      settleJobs();
      return;
    }
    p.settleTo(deferredJobs.depth);
    caughtUp();
    return;
  }
  settleJobs();
  if (parallel && threads > 1 && numTasks > 1) {
    const p = wasmPool(rt);
    fill(p.params);
    p.run(0, numTasks);
  } else {
    fill(scratchParams);
    for (let t = 0; t < numTasks; t++) rt.main.runTask(scratchParams, t);
  }
}
const scratchParams = new Float64Array(64);

/**
 * Bump allocator over the shared memory for one kernel call: `reset()` opens it at the top of the
 * resident heap (heap.ts), `alloc` reserves byte ranges (64-byte aligned), `commit()` grows the
 * memory to cover them, then views; `close()` when the call no longer reads it (a kernel that does
 * not close it only costs the heap a gap: blocks are then placed above the open scratch).
 */
export class Arena {
  private top = ARENA_BASE;
  private open = false;
  private f32v = new Float32Array(0);
  private f64v = new Float64Array(0);
  private u8v = new Uint8Array(0);
  private i32v = new Int32Array(0);
  /** Where the open scratch starts (the heap's top at `reset`). */
  private base = ARENA_BASE;
  /**
   * Heap blocks that keep the scratch of queued jobs, with the job count that frees each
   * ({@link deferredJobs}) and the `reset` base of the kernel call that made it.
   */
  private held: [tag: number, block: number, base: number][] = [];
  /** The resident heap below the arena. */
  readonly heap: WasmHeap;

  constructor(private readonly memory: WebAssembly.Memory) {
    this.heap = new WasmHeap(memory, ARENA_BASE, () => (this.open ? this.top : 0));
  }

  /**
   * Keeps the scratch allocated since `reset` for the job just queued (number `tag` − 1): it
   * becomes a heap block, so no block is placed over it, until {@link release} sees `tag`
   * finished. When frees since `reset` lowered the heap's top below the scratch, the block starts
   * at the top (the gap under the scratch is free anyway). False (nothing kept) when a block was
   * placed over the scratch's start since `reset`.
   */
  hold(tag: number): boolean {
    const last = this.held[this.held.length - 1];
    if (last && last[2] === this.base) {
      // the same kernel's next job (a gemm after its packing): held until that one ends
      if (last[1] + this.heap.sizeOf(last[1]) < this.top) return false;
      last[0] = tag;
      return true;
    }
    if (this.heap.top > this.base) return false;
    const b = this.heap.reserveTop(this.top - this.heap.top);
    if (b < 0) return false;
    this.held.push([tag, b, this.base]);
    return true;
  }

  /**
   * Frees the scratch of the jobs finished (`finished`: the pool's count). (A kernel that settles
   * between its jobs frees its own held scratch here; the block is the heap's top — the kernel
   * allocates nothing after its first job — so it lowers the top and no block is placed over it.)
   */
  release(finished: number): void {
    while (this.held.length > 0 && jobsDone(this.held[0][0], finished)) this.heap.release(this.held.shift()![1]);
  }

  reset(): void {
    this.top = this.base = Math.ceil(this.heap.top / 64) * 64;
    this.open = true;
  }

  /** Whether a kernel holds the scratch (between `reset()` and `close()`). */
  get isOpen(): boolean {
    return this.open;
  }

  /** Marks the scratch as no longer read (the heap may place blocks over it). */
  close(): void {
    this.open = false;
  }

  /** Reserves `bytes`; returns the byte address. */
  alloc(bytes: number): number {
    const at = this.top;
    this.top = at + Math.ceil(bytes / 64) * 64;
    return at;
  }

  /** Grows the memory to cover everything allocated; throws past 4 GiB. */
  commit(): void {
    if (!growTo(this.memory, this.top)) throw new RangeError(`wasm kernels: ${this.top} bytes exceed the 4 GiB WebAssembly memory`);
  }

  private refresh(): void {
    const buf = this.memory.buffer;
    if (this.u8v.byteLength !== buf.byteLength) {
      this.f32v = new Float32Array(buf);
      this.f64v = new Float64Array(buf);
      this.u8v = new Uint8Array(buf);
      this.i32v = new Int32Array(buf);
    }
  }
  // Views. A kernel writes through them into its own scratch, which lies above every queued job's
  // (those are heap blocks below `base`): no settle needed.
  get f32(): Float32Array {
    this.refresh();
    return this.f32v;
  }
  get f64(): Float64Array {
    this.refresh();
    return this.f64v;
  }
  get u8(): Uint8Array {
    this.refresh();
    return this.u8v;
  }
  get i32(): Int32Array {
    this.refresh();
    return this.i32v;
  }
}

let arena: Arena | undefined;
/** The process-wide arena over the runtime's memory. */
export function wasmArena(rt: WasmRuntime): Arena {
  arena ??= new Arena(rt.memory);
  return arena;
}
