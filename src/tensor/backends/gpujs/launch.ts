/**
 * What every gpujs kernel shares: the CPU-fallback counter, operands (a tensor as device buffer +
 * offset + strides), broadcasting and coalescing of strides, the output thread grid, and the
 * helpers that write a kernel's source text. See kernels.ts for the conventions.
 */
import { allocate, type DType } from '../../dtype.js';
import { contiguousStrides, sizeOf } from '../../shape.js';
import { fromStorage, Tensor } from '../../tensor.js';
import { GpuData, GpuDevice, GpuError, releaseData } from './device.js';

// ---- fallbacks ---------------------------------------------------------------------------------

const fallbackCounts = new Map<string, number>();

/** CPU fallbacks taken so far, by `kernel: reason`. */
export function fallbacks(): Record<string, number> {
  return Object.fromEntries(fallbackCounts);
}

/** Forgets the fallback counts. */
export function resetFallbacks(): void {
  fallbackCounts.clear();
}

const debug = /gpujs/.test(process.env.MEGA_DEBUG ?? '');

/** Runs the CPU kernel instead, counting it (and logging the first one of each kind under MEGA_DEBUG=gpujs). */
export function fallback<T = Tensor>(kernel: string, reason: string, run: () => T): T {
  const key = `${kernel}: ${reason}`;
  const n = (fallbackCounts.get(key) ?? 0) + 1;
  fallbackCounts.set(key, n);
  if (debug && n === 1) process.stderr.write(`[gpujs] CPU fallback ${key}\n`);
  return run();
}

// ---- operands ---------------------------------------------------------------------------------

/** The started device (throws when the gpujs backend is not started). */
export function dev(): GpuDevice {
  const d = GpuDevice.get();
  if (!d) throw new GpuError("the gpujs backend is not started (select it with setBackend('gpujs') / selectBackend)");
  return d;
}

/** A tensor as a device buffer + offset + strides; host tensors are uploaded (span only) as temporaries. */
export interface Operand {
  data: GpuData;
  offset: number;
  strides: number[];
}

/** `t` as an operand; a host tensor's span is uploaded and pushed on `temps` (release them with {@link done}). */
export function operandOf(t: Tensor, temps: GpuData[]): Operand {
  if (t.device instanceof GpuData && !t.device.disposed) return { data: t.device, offset: t.offset, strides: [...t.strides] };
  if (t.size === 0) {
    const d = dev().upload(new Float32Array(1), t.dtype); // never read: the kernel's loops are empty
    temps.push(d);
    return { data: d, offset: 0, strides: t.strides.map(() => 0) };
  }
  const s = t.storage;
  let lo = t.offset,
    hi = t.offset;
  for (let i = 0; i < t.ndim; i++) {
    const e = (t.shape[i] - 1) * t.strides[i];
    if (e < 0) lo += e;
    else hi += e;
  }
  const f = new Float32Array(hi - lo + 1);
  f.set(s.subarray(lo, hi + 1));
  return { data: uploadHost(f, t.dtype, temps, { storage: s, span: lo }), offset: t.offset - lo, strides: [...t.strides] };
}

/** Host values on the device for one launch: small spans through the cache, larger ones as temporaries. */
export function uploadHost(f: Float32Array, dtype: DType, temps: GpuData[], source?: Source): GpuData {
  if (f.length <= CACHE_MAX_VALUES) return cachedUpload(f, dtype, temps, source);
  const d = dev().upload(f, dtype);
  temps.push(d);
  return d;
}

// ---- the host-constant cache ------------------------------------------------------------------

/** Host spans up to this many values go through the content-addressed cache. */
export const CACHE_MAX_VALUES = 1 << 16;
/** Bytes of device memory the cache may hold. */
const CACHE_MAX_BYTES = 32 << 20;
interface CacheEntry {
  values: Float32Array;
  dtype: DType;
  data: GpuData;
}
const cache = new Map<string, CacheEntry>(); // insertion order = least recently used first
/** Where host values come from: a storage and the first element of the span. */
export interface Source {
  storage: object;
  span: number;
}
/** The entry last made from each span of a host storage: a storage changed in place (a host
 *  parameter updated by an optimizer) replaces its stale entry instead of adding one per step. */
const bySource = new WeakMap<object, Map<string, string>>();
let cacheBytes = 0;

/** FNV-1a over the bits of the values. */
function hashOf(f: Float32Array): number {
  const u = new Uint32Array(f.buffer, f.byteOffset, f.length);
  let h = 0x811c9dc5;
  for (let i = 0; i < u.length; i++) h = Math.imul(h ^ u[i], 0x01000193);
  return h >>> 0;
}

/**
 * The device copy of host values `f`, uploaded once and reused while the values are the same:
 * host tensors built fresh each step with the same contents (masks, positions, scalars, a batch
 * used by several kernels) cross to the device once. Entries are keyed by content, so a host
 * tensor changed in place simply misses. Least recently used entries are freed past
 * CACHE_MAX_BYTES, after the current launch (through `temps`).
 */
function cachedUpload(f: Float32Array, dtype: DType, temps: GpuData[], source?: Source): GpuData {
  const key = `${dtype}:${f.length}:${hashOf(f)}`;
  if (source) {
    let spans = bySource.get(source.storage);
    if (!spans) bySource.set(source.storage, (spans = new Map()));
    const span = `${source.span}:${f.length}`,
      prev = spans.get(span);
    const stale = prev !== undefined && prev !== key ? cache.get(prev) : undefined;
    if (stale) forget(prev!, stale, temps);
    spans.set(span, key);
  }
  const hit = cache.get(key);
  if (hit && !hit.data.disposed && hit.data.dev === dev() && hit.dtype === dtype && hit.values.every((v, i) => Object.is(v, f[i]))) {
    cache.delete(key);
    cache.set(key, hit);
    return hit.data;
  }
  if (hit) forget(key, hit, temps);
  const values = f.slice();
  const data = dev().upload(f, dtype, false);
  cache.set(key, { values, dtype, data });
  cacheBytes += values.byteLength;
  for (const [k, e] of cache) {
    if (cacheBytes <= CACHE_MAX_BYTES || e.data === data) break;
    forget(k, e, temps);
  }
  return data;
}

function forget(key: string, e: CacheEntry, temps: GpuData[]): void {
  cache.delete(key);
  cacheBytes -= e.values.byteLength;
  temps.push(e.data);
}

/** Frees the host-constant cache (device buffers released now). */
export function clearUploadCache(): void {
  const temps: GpuData[] = [];
  for (const [k, e] of [...cache]) forget(k, e, temps);
  done(temps);
}

/** Releases the temporaries of a launch. */
export function done(temps: GpuData[]): void {
  for (const d of temps) releaseData(d);
}

/** Strides of `t` broadcast to `shape` (right-aligned; stretched axes get stride 0). */
export function bstrides(t: { shape: readonly number[] }, strides: readonly number[], shape: readonly number[]): number[] {
  const lead = shape.length - t.shape.length;
  return shape.map((d, i) => (i < lead ? 0 : t.shape[i - lead] === 1 && d !== 1 ? 0 : strides[i - lead]));
}

/** Drops size-1 axes and merges neighbours that every operand walks contiguously. */
export function coalesce(shape: readonly number[], strideSets: number[][]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strideSets.map(() => []);
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && strideSets.every((s, k) => outStrides[k][last] === s[i] * shape[i])) {
      outShape[last] *= shape[i];
      strideSets.forEach((s, k) => (outStrides[k][last] = s[i]));
    } else {
      outShape.push(shape[i]);
      strideSets.forEach((s, k) => outStrides[k].push(s[i]));
    }
  }
  return { shape: outShape, strides: outStrides };
}

/** Output grid of a (coalesced) shape: gpu.js output, coordinate expressions, prelude, fold args. */
export interface Grid {
  output: number[];
  coords: string[];
  pre: string;
  foldArgs: string[];
  foldVals: number[];
}

/** Largest x / y extent of a dispatch (gpu.js splits it into 8-wide workgroups). */
export const MAX_XY = 65535 * 8;
/** Largest z extent of a dispatch. */
export const MAX_Z = 65535;

/**
 * The output grid of a (coalesced) shape: up to three axes map to gpu.js's x, y, z; further
 * leading axes are folded into z and split again in the kernel's prelude. Null when it does not fit.
 */
export function grid(D: number[]): Grid | null {
  const r = D.length;
  if (r === 0) return grid([1]);
  if (r === 1) return { output: [D[0]], coords: ['this.thread.x'], pre: '', foldArgs: [], foldVals: [] };
  const X = D[r - 1],
    Y = D[r - 2];
  if (X > MAX_XY || Y > MAX_XY) return null;
  if (r === 2) return { output: [X, Y], coords: ['this.thread.y', 'this.thread.x'], pre: '', foldArgs: [], foldVals: [] };
  const Z = sizeOf(D.slice(0, r - 2));
  if (Z > MAX_Z) return null;
  if (r === 3) return { output: [X, Y, Z], coords: ['this.thread.z', 'this.thread.y', 'this.thread.x'], pre: '', foldArgs: [], foldVals: [] };
  // fold D[0..r-3] into z; split it again from the innermost folded axis outwards
  const nf = r - 2;
  const lines = ['const q0 = this.thread.z;'];
  const foldArgs: string[] = [],
    foldVals: number[] = [];
  for (let i = nf - 1, q = 0; i >= 1; i--, q++) {
    foldArgs.push(`f${i}`);
    foldVals.push(D[i]);
    lines.push(`const q${q + 1} = Math.floor((q${q} + 0.5) / f${i});`, `const c${i} = q${q} - q${q + 1} * f${i};`);
  }
  lines.push(`const c0 = q${nf - 1};`);
  const coords = Array.from({ length: nf }, (_, i) => `(c${i} | 0)`);
  coords.push('this.thread.y', 'this.thread.x');
  return { output: [X, Y, Z], coords, pre: lines.join('\n'), foldArgs, foldVals };
}

/** Inline i32 index expression of operand k over coordinates `coords`. */
export function indexExpr(k: number, coords: string[]): string {
  return [`o${k}`, ...coords.map((c, i) => `${c} * s${k}_${i}`)].join(' + ');
}

/** A new contiguous device tensor. */
export function wrap(d: GpuData, shape: readonly number[]): Tensor {
  return new Tensor(d, [...shape], contiguousStrides(shape), 0);
}

/** An empty (zero-size) host tensor: nothing to launch. */
export function emptyHost(shape: readonly number[], dtype: DType): Tensor {
  return fromStorage(allocate(dtype, sizeOf(shape)), shape);
}

/** Builds the source of a kernel from its argument names and body. */
export function fn(args: string[], body: string): string {
  return `function (${args.join(', ')}) {\n${body}\n}`;
}

/** gpu.js argument types: `Array` for buffers, `Integer` and `Float` for scalars. */
export function types(arrays: string[], ints: string[], floats: string[] = []): Record<string, string> {
  const t: Record<string, string> = {};
  for (const a of arrays) t[a] = 'Array';
  for (const a of ints) t[a] = 'Integer';
  for (const a of floats) t[a] = 'Float';
  return t;
}
