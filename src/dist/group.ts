/**
 * Process groups: the collectives data-parallel training needs, behind one interface, with three
 * engines — `tcp` (default; sockets, no native code), `mpi` (Open MPI through koffi) and `local`
 * (a single process: every collective is the identity).
 *
 * Every collective is synchronous and in place (the autograd tape and the trainer are synchronous);
 * `allReduceAsync` starts an all-reduce and returns a handle to wait on, so gradient buckets can be
 * reduced while backward goes on. All ranks must issue the same collectives in the same order.
 */
import type { ReduceOp } from './tcp-protocol.js';

export type { ReduceOp } from './tcp-protocol.js';

/** Typed arrays the collectives take. */
export type CommArray = Float32Array | Float64Array | Int32Array;
/** Element types of {@link CommArray}. */
export type CommDType = 'f32' | 'f64' | 'i32';

/** A started asynchronous collective. */
export interface Work {
  /** Blocks until done (the array then holds the result). @throws DistError */
  wait(): void;
}

/** Backend names. */
export type BackendName = 'tcp' | 'mpi' | 'local';

/** The collectives of a group of `worldSize` processes. */
export interface ProcessGroup {
  /** Which engine. */
  readonly backend: BackendName;
  /** This process's rank. */
  readonly rank: number;
  /** Number of processes. */
  readonly worldSize: number;
  /** Reduce `x` element-wise across ranks, in place (`avg` = sum / worldSize; not for i32). */
  allReduce(x: CommArray, op?: ReduceOp): void;
  /** Start an in-place all-reduce of `x` (leave `x` alone until `wait()`); arrays from `alloc` avoid a copy. */
  allReduceAsync(x: CommArray, op?: ReduceOp): Work;
  /** Copy `x` of rank `root` into `x` of every rank (same length everywhere). */
  broadcast(x: CommArray | Uint8Array, root?: number): void;
  /** Every rank's bytes (lengths may differ), indexed by rank. */
  allGatherBytes(x: Uint8Array): Uint8Array[];
  /** Returns when every rank has called it. */
  barrier(): void;
  /** A zeroed array suited to collectives (shared memory for the tcp engine). */
  alloc(dtype: CommDType, length: number): CommArray;
  /** Leave the group (collective: every rank closes); idempotent. */
  close(): void;
}

/** Allocates a typed array of `dtype` over `buf` (or a fresh ArrayBuffer). */
export function typedArray(dtype: CommDType, length: number, buf?: ArrayBufferLike, byteOffset = 0): CommArray {
  if (dtype === 'f32') return buf ? new Float32Array(buf, byteOffset, length) : new Float32Array(length);
  if (dtype === 'f64') return buf ? new Float64Array(buf, byteOffset, length) : new Float64Array(length);
  return buf ? new Int32Array(buf, byteOffset, length) : new Int32Array(length);
}

/** The dtype of a comm array. */
export function commDType(x: CommArray): CommDType {
  if (x instanceof Float32Array) return 'f32';
  if (x instanceof Float64Array) return 'f64';
  if (x instanceof Int32Array) return 'i32';
  throw new TypeError('collectives take Float32Array, Float64Array or Int32Array');
}

/** Every rank's array (same dtype everywhere; lengths may differ), indexed by rank. */
export function allGather<T extends CommArray>(g: ProcessGroup, x: T): T[] {
  const dtype = commDType(x);
  const es = dtype === 'f64' ? 8 : 4;
  return g.allGatherBytes(new Uint8Array(x.buffer, x.byteOffset, x.byteLength)).map((b) => {
    const copy = b.slice();
    return typedArray(dtype, copy.byteLength / es, copy.buffer) as T;
  });
}

/** JSON value of every rank (an all-gather of UTF-8 JSON). */
export function allGatherJson<T>(g: ProcessGroup, value: T): T[] {
  const parts = g.allGatherBytes(new TextEncoder().encode(JSON.stringify(value)));
  const dec = new TextDecoder();
  return parts.map((p) => JSON.parse(dec.decode(p)) as T);
}

/** The group of one process: every collective leaves its input as it is. */
export class LocalGroup implements ProcessGroup {
  readonly backend = 'local' as const;
  readonly rank = 0;
  readonly worldSize = 1;
  allReduce(x: CommArray, op: ReduceOp = 'sum'): void {
    if (op === 'avg' && x instanceof Int32Array) throw new TypeError('allReduce avg of i32');
  }
  allReduceAsync(x: CommArray, op: ReduceOp = 'sum'): Work {
    this.allReduce(x, op);
    return { wait: () => undefined };
  }
  broadcast(_x: CommArray | Uint8Array, root = 0): void {
    if (root !== 0) throw new RangeError(`broadcast root ${root} in a group of 1`);
  }
  allGatherBytes(x: Uint8Array): Uint8Array[] {
    return [x.slice()];
  }
  barrier(): void {}
  alloc(dtype: CommDType, length: number): CommArray {
    return typedArray(dtype, length);
  }
  close(): void {}
}
