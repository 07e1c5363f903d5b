/**
 * Resident scopes: while `residentScope` runs, the float outputs of the CPU kernels are blocks of
 * the shared WebAssembly memory (wasm/heap.ts) instead of fresh typed arrays. The SIMD kernels
 * then read their operands and write their results in place (no copy in or out), and the blocks
 * are reused from one scope to the next (no fresh pages, no garbage for the collector).
 *
 * Lifetime: when a scope ends, the root tensors (what `roots()` returns, and the tensors in the
 * scope's result) move to ordinary arrays and every block the scope handed out is freed. Roots
 * must name everything that outlives the scope: a training step's roots are the parameters, their
 * gradients and the model's buffers. (A root that is a strided view cannot move: its block is
 * kept and checked again at the end of the same `owner`'s next scope.) Inside a scope, `backward`
 * frees the graph's tensors as soon as their backward has run (autograd/engine.ts): after
 * backward only the roots and the leaves' gradients remain valid.
 *
 * Outside scopes nothing changes: kernels allocate ordinary typed arrays. Without shared
 * WebAssembly memory (MEGA_SIMD=0, a browser page that is not cross-origin isolated) scopes are
 * plain calls.
 */
import { allocate, type DType, type FloatStorage, type Storage } from '../../dtype.js';
import type { Tensor } from '../../tensor.js';
import { platform } from '../../platform/node.js';
import { hostSync } from '../../host-sync.js';
import { deferredJobs, jobsDone, onJobsFinished, queuedJobs, settleJobs, stampFinal, wasmArena, wasmRuntime } from './wasm/runtime.js';
import { poolDebug } from './pool.js';
import type { WasmHeap } from './wasm/heap.js';

interface Scope {
  owner: object;
  /** Blocks handed out in this scope and not freed yet (see {@link residentRelease}). */
  mine: Set<number>;
  /** Blocks that must survive the scope's early frees (roots, gradients of leaves). */
  protectedBlocks: Set<number>;
  roots: () => Iterable<Tensor | null | undefined>;
  /** Blocks handed out since the last {@link residentMark} (null: not recording). */
  log: number[] | null;
}

let scope: Scope | null = null;
/** Blocks each owner kept at the end of its last scope. */
const kept = new WeakMap<object, number[]>();
/** The memory's buffers that resident views were made from (one per growth). */
const buffers = new WeakSet<ArrayBufferLike>();
/**
 * Debug switch: fill freed blocks with NaN so a use after free shows (tests; env
 * `MEGA_RESIDENT_POISON=1` turns it on in every process, e.g. for a whole test run).
 */
export const residentDebug = { poison: platform.env('MEGA_RESIDENT_POISON') === '1' };

function heap(): { heap: WasmHeap; memory: WebAssembly.Memory } | null {
  const rt = wasmRuntime();
  if (!rt || !(rt.memory.buffer instanceof SharedArrayBuffer)) return null;
  return { heap: wasmArena(rt).heap, memory: rt.memory };
}

let lastBuffer: ArrayBufferLike | null = null;
/** The memory's current buffer (a new object only after the memory grew). */
function memoryBuffer(memory: WebAssembly.Memory): ArrayBufferLike {
  if (lastBuffer === null || lastBuffer.byteLength !== memory.buffer.byteLength) {
    lastBuffer = memory.buffer;
    buffers.add(lastBuffer);
  }
  return lastBuffer;
}

/** Whether a resident scope is open (kernel outputs go to the wasm memory). */
export function residentActive(): boolean {
  return scope !== null;
}

/** Whether `s` is a view of the wasm memory (a resident block or part of one). */
export function isResident(s: Storage): boolean {
  return buffers.has(s.buffer);
}

/**
 * Storage for a kernel's output of `n` elements: a resident block inside a scope (float dtypes),
 * else a fresh typed array. `zero`: whether the caller needs zeros (a kernel that writes every
 * element passes false).
 */
export function allocateOut(dtype: DType, n: number, zero = true): Storage {
  if (scope === null || (dtype !== 'f32' && dtype !== 'f64') || n === 0) return allocate(dtype, n);
  const h = heap();
  if (!h) return allocate(dtype, n);
  const E = dtype === 'f32' ? 4 : 8;
  const at = h.heap.alloc(n * E);
  if (at < 0) return allocate(dtype, n); // memory full: an ordinary array
  scope.mine.add(at);
  scope.log?.push(at);
  const buf = memoryBuffer(h.memory);
  const out: FloatStorage = dtype === 'f32' ? new Float32Array(buf, at, n) : new Float64Array(buf, at, n);
  // (no queued job reads a fresh block: frees wait for the jobs queued before them; in the
  // deferred-job debug mode NaN shows a value read before its job ran)
  if (zero || poolDebug.delayMicros > 0) out.fill(zero ? 0 : NaN);
  return out;
}

/** Ends deferral after a failure: the queued jobs are waited for, their own error dropped (one is already thrown). */
function closeDeferral(): void {
  deferredJobs.enabled = false;
  try {
    settleJobs();
  } catch {
    // the step's error is reported
  }
}

/** Every tensor in `x` (a tensor, or an array / plain object holding tensors, one level deep). */
function* tensorsIn(x: unknown): Generator<Tensor> {
  if (x === null || typeof x !== 'object') return;
  if ('shape' in x && 'strides' in x && 'gradFn' in x) {
    yield x as Tensor;
    return;
  }
  for (const v of Array.isArray(x) ? x : Object.values(x)) if (v !== null && typeof v === 'object' && 'shape' in v && 'gradFn' in v) yield v as Tensor;
}

/**
 * Runs `fn` with kernel outputs resident in the wasm memory; at the end frees what no root uses
 * (see the file comment). `owner` identifies a sequence of scopes (e.g. one training run);
 * scopes do not nest (an inner call just runs `fn`).
 */
export function residentScope<T>(owner: object, fn: () => T, roots: () => Iterable<Tensor | null | undefined>): T {
  const h = scope === null ? heap() : null;
  if (!h) return fn();
  scope = { owner, mine: new Set(), protectedBlocks: new Set(), roots, log: null };
  deferredJobs.enabled = true; // kernels may defer jobs (wasm/runtime.ts)
  const s = scope;
  let result: T;
  try {
    result = fn();
    settleJobs();
  } catch (e) {
    closeDeferral();
    scope = null;
    sweep(h.heap, s, h.memory, roots()); // the roots stay valid after a failed step too
    throw e;
  }
  deferredJobs.enabled = false;
  scope = null;
  sweep(h.heap, s, h.memory, [...roots(), ...tensorsIn(result)]);
  return result;
}

/**
 * The block of `t`'s storage when it was handed out in the open scope and not freed yet, else -1
 * (the key the autograd engine's early frees count by).
 */
export function scopeBlock(t: Tensor): number {
  if (scope === null || t.device) return -1;
  const s = t.data as Storage; // the address only: no settle (host-sync.ts)
  if (!isResident(s)) return -1;
  const b = scope.mine.has(s.byteOffset) ? s.byteOffset : heap()!.heap.blockOf(s.byteOffset);
  return scope.mine.has(b) ? b : -1;
}

/** Starts recording the blocks handed out (until {@link residentSinceMark}). */
export function residentMark(): void {
  if (scope !== null) scope.log = [];
}

/** The blocks handed out since {@link residentMark} (still live or not); stops recording. */
export function residentSinceMark(): number[] {
  if (scope === null) return [];
  const log = scope.log ?? [];
  scope.log = null;
  return log;
}

/** Keeps `t`'s block until the scope ends (e.g. a leaf's gradient). */
export function residentProtect(t: Tensor | null | undefined): void {
  if (!t) return;
  const b = scopeBlock(t);
  if (b >= 0) scope!.protectedBlocks.add(b);
}

/** Protects every current root of the open scope (called when backward starts). */
export function residentProtectRoots(): void {
  if (scope === null) return;
  for (const t of scope.roots()) residentProtect(t);
}

/**
 * Frees block `b` (from {@link scopeBlock}) now unless it is protected: the caller guarantees that
 * no tensor that will still be read uses it (the autograd engine, for what backward consumed).
 */
export function residentRelease(b: number): void {
  if (scope === null || b < 0 || scope.protectedBlocks.has(b) || !scope.mine.has(b)) return;
  scope.mine.delete(b);
  const h = heap()!;
  free(h.heap, h.memory, b);
}

/**
 * Frees `t`'s block now when it is a block the open scope handed out (and not protected): for a
 * temporary that an op made and alone references, e.g. a product before its bias is added — the
 * caller guarantees nothing reads `t` afterwards. Outside a scope, or for other storage, nothing.
 */
export function residentDispose(t: Tensor): void {
  residentRelease(scopeBlock(t));
}

/**
 * Returns block `b` to the heap (filled with NaN first when poisoning) — once the deferred jobs
 * queued before have finished: they may still read it (wasm/runtime.ts).
 */
function free(heap: WasmHeap, memory: WebAssembly.Memory, b: number): void {
  if (hostSync.pending) heldFrees.push([queuedJobs(), b]);
  else release(heap, memory, b);
}
function release(heap: WasmHeap, memory: WebAssembly.Memory, b: number): void {
  if (residentDebug.poison) new Float32Array(memory.buffer).fill(NaN, b / 4, (b + heap.sizeOf(b)) / 4);
  heap.release(b);
}
/** Blocks freed while deferred jobs were queued, with the job count that must finish first (in order). */
const heldFrees: [tag: number, block: number][] = [];
let heldHead = 0;
onJobsFinished((finished) => {
  if (heldHead === heldFrees.length) return;
  const h = heap()!;
  while (heldHead < heldFrees.length && jobsDone(heldFrees[heldHead][0], finished)) release(h.heap, h.memory, heldFrees[heldHead++][1]);
  if (heldHead === heldFrees.length) heldFrees.length = heldHead = 0;
});

/**
 * Ends a scope: roots in resident blocks move to ordinary arrays (`rebind`; a view that cannot be
 * rebound keeps its block, checked again at the owner's next scope), then every block of the
 * scope and of the owner's kept list that no root uses is freed.
 */
function sweep(heap: WasmHeap, s: Scope, memory: WebAssembly.Memory, roots: Iterable<Tensor | null | undefined>): void {
  const marked = new Set<number>();
  for (const t of roots) {
    if (!t || t.device) continue;
    const st = t.storage;
    if (!isResident(st) || isPersistent(st)) continue; // a persistent block outlives scopes
    if (t.offset === 0 && st.length === t.size && t.isContiguous()) {
      const copy = allocate(t.dtype, t.size);
      copy.set(st);
      t.rebind(copy);
      continue;
    }
    const b = heap.blockOf(st.byteOffset);
    if (b >= 0) marked.add(b);
  }
  const keep: number[] = [];
  for (const list of [kept.get(s.owner) ?? [], s.mine]) {
    for (const b of list) {
      if (!heap.isLive(b)) continue;
      if (marked.has(b)) {
        keep.push(b);
        marked.delete(b); // listed once
        continue;
      }
      free(heap, memory, b);
    }
  }
  if (keep.length) kept.set(s.owner, keep);
  else kept.delete(s.owner);
}

/**
 * Bytes in live resident blocks handed out by scopes, persistent blocks not counted (diagnostics,
 * tests); after the deferred jobs, whose blocks the frees before them wait for.
 */
export function residentBytes(): number {
  settleJobs();
  const h = heap();
  return h ? h.heap.liveBytes - persistentLive : 0;
}

/** Bytes in live persistent blocks ({@link persistentStorage}; diagnostics, tests). */
export function persistentBytes(): number {
  return persistentLive;
}

/** Persistent blocks by their storage: released when the storage is garbage collected. */
const persistentBlocks = new FinalizationRegistry<number>((b) => {
  const h = heap();
  if (!h) return;
  persistentLive -= h.heap.sizeOf(b);
  if (hostSync.pending) heldFrees.push([queuedJobs(), b]);
  else h.heap.release(b);
});
let persistentLive = 0;
const persistentSet = new WeakSet<Storage>();

/**
 * Zeroed storage of `n` elements in a block of the wasm memory that no scope frees, for state
 * that kernels update in place across steps (the optimizer's moments). The block is returned to
 * the heap when the returned array is garbage collected, so only this array (and tensors holding
 * it) may be kept — not a `subarray` of it. Null without shared wasm memory or when it is full.
 */
export function persistentStorage(dtype: 'f32' | 'f64', n: number): FloatStorage | null {
  const h = heap();
  if (!h || n === 0) return null;
  const E = dtype === 'f32' ? 4 : 8;
  const at = h.heap.alloc(n * E);
  if (at < 0) return null;
  const buf = memoryBuffer(h.memory);
  const out: FloatStorage = dtype === 'f32' ? new Float32Array(buf, at, n) : new Float64Array(buf, at, n);
  out.fill(0);
  stampFinal(out);
  persistentBlocks.register(out, at);
  persistentLive += h.heap.sizeOf(at);
  persistentSet.add(out);
  return out;
}

/** Whether `s` came from {@link persistentStorage}. */
export function isPersistent(s: Storage): boolean {
  return persistentSet.has(s);
}
