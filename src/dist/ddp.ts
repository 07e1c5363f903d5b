/**
 * Data-parallel training over a process group, as PyTorch's DistributedDataParallel does it:
 *
 * - **Replicas start equal**: parameters and buffers are broadcast from rank 0 when wrapping.
 * - **Gradients are summed across ranks in buckets** of about 25 MB (`bucketBytes`), filled in
 *   reverse parameter order (roughly the order backward produces them), one dtype per bucket.
 *   With `overlap` (default) a bucket starts its all-reduce from the autograd engine's
 *   post-accumulate hook as soon as all its gradients are final, while backward goes on; buckets
 *   are launched strictly in index order so every rank issues the same collectives in the same
 *   order. Gradients on a device (gpujs) go through the buckets' host buffers: each one's copy to
 *   the host starts (`prefetch`) when it is final and runs while backward goes on; the bucket
 *   collects the copies when all its gradients are final. Each bucket also carries one presence flag per parameter: a parameter that got no
 *   gradient on any rank keeps `grad = null` (Adam skips it), one that got a gradient anywhere gets
 *   the sum (zeros from the ranks that had none).
 * - **Gradient accumulation**: `beginBackward(false)` for the non-final micro-steps (gradients just
 *   accumulate locally), `beginBackward(true)` before the last one, `finishGradients()` after it.
 * - **Sum, not average**: gradients of each rank's summed loss are summed, so with fairseq's
 *   normalisation (multiply by 1/Σ sample_size, the global sum) the update equals one process on
 *   the whole batch up to summation order.
 * - **Sync batch-norm**: `syncbatchnorm` layers get the global Σx, Σx² and count in the forward
 *   pass (an all-reduce), and the backward of that all-reduce all-reduces the incoming gradient.
 *   Overlap is turned off for such models (their backward issues collectives of its own).
 *   Plain `batchnorm` buffers (running statistics) are re-broadcast from rank 0 after every update.
 */
import { record, setPostAccumulateGradHook } from '../autograd/engine.js';
import { BatchNorm, setSyncBatchNormReducer } from '../nn/norm.js';
import type { Module } from '../nn/module.js';
import { allocate, type DType } from '../tensor/dtype.js';
import { fromStorage, type Tensor } from '../tensor/tensor.js';
import { DistConfigError } from './errors.js';
import { allGatherJson, type CommArray, type CommDType, type ProcessGroup, type Work } from './group.js';

/** PyTorch DDP's default bucket cap. */
export const DEFAULT_BUCKET_BYTES = 25 * 1024 * 1024;

/** Options of {@link DataParallel}. */
export interface DataParallelOptions {
  /** Bucket cap in bytes (default 25 MiB). */
  bucketBytes?: number;
  /** Start bucket all-reduces during backward (default true; off for models with syncbatchnorm). */
  overlap?: boolean;
  /**
   * Facts that must be equal on every rank (model settings, hyper-parameters, …); compared at
   * construction together with every parameter's name, shape and dtype.
   */
  describe?: Readonly<Record<string, unknown>>;
}

interface Bucket {
  dtype: CommDType;
  params: Tensor[];
  offsets: number[];
  /** Gradients then one presence flag per parameter. */
  flat: CommArray;
  filled: boolean[];
  ready: number;
  work: Work | null;
  /** Final device gradients whose copy to the host has started (filled when the bucket is complete). */
  deferred: Set<number>;
}

function commType(t: Tensor, what: string): CommDType {
  const d = t.dtype;
  if (d === 'f32' || d === 'f64' || d === 'i32') return d;
  throw new DistConfigError(`data parallel: ${what} has dtype ${d} (f32, f64 or i32 expected)`);
}

/** First path (keys in `a`'s order, then `b`'s extra ones) where two JSON-like values differ (`a.b[3]`), or null. */
export function firstDifference(a: unknown, b: unknown, path = ''): { path: string; a: unknown; b: unknown } | null {
  if (a === b) return null;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) {
    return JSON.stringify(a) === JSON.stringify(b) ? null : { path: path || '(value)', a, b };
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return { path: `${path}.length`, a: a.length, b: b.length };
    for (let i = 0; i < a.length; i++) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  const ra = a as Record<string, unknown>,
    rb = b as Record<string, unknown>;
  for (const k of new Set([...Object.keys(ra), ...Object.keys(rb)])) {
    const d = firstDifference(ra[k], rb[k], path ? `${path}.${k}` : k);
    if (d) return d;
  }
  return null;
}

/**
 * Checks that `value` is the same on every rank (a collective).
 * @throws DistConfigError on every rank, naming the first rank and setting that differ from rank 0
 */
export function checkSameOnAllRanks(group: ProcessGroup, value: unknown, what = 'configuration'): void {
  const all = allGatherJson(group, value);
  for (let r = 1; r < all.length; r++) {
    const d = firstDifference(all[0], all[r]);
    if (d) {
      const show = (v: unknown): string => {
        const s = JSON.stringify(v) ?? 'undefined';
        return s.length > 80 ? `${s.slice(0, 77)}...` : s;
      };
      throw new DistConfigError(
        `rank ${r}'s ${what} differs from rank 0's: ${d.path} = ${show(d.b)} on rank ` +
          `${r}, ${show(d.a)} on rank 0 (every rank must run the same model and settings)`,
      );
    }
  }
}

/** Broadcast `tensors` (contiguous) from `root`, one flat message per dtype. */
export function broadcastTensors(group: ProcessGroup, tensors: readonly Tensor[], root = 0): void {
  const byType = new Map<CommDType, Tensor[]>();
  for (const t of tensors) {
    if (!t.isContiguous()) throw new DistConfigError(`data parallel: cannot broadcast a non-contiguous tensor of shape [${t.shape}]`);
    const d = commType(t, `tensor of shape [${t.shape}]`);
    byType.set(d, [...(byType.get(d) ?? []), t]);
  }
  for (const [d, ts] of byType) {
    const n = ts.reduce((s, t) => s + t.size, 0);
    const flat = group.alloc(d, n);
    let off = 0;
    for (const t of ts) {
      flat.set(t.storage.subarray(t.offset, t.offset + t.size) as CommArray, off);
      off += t.size;
    }
    group.broadcast(flat, root);
    off = 0;
    for (const t of ts) {
      (t.storage as CommArray).set(flat.subarray(off, off + t.size), t.offset);
      if (t.device) t.rebind(t.storage); // a device tensor's host copy was written: it is the value now
      off += t.size;
    }
  }
}

/** The leaves requiring grad that `root`'s graph reaches. */
function reachableLeaves(root: Tensor): Set<Tensor> {
  const seen = new Set<Tensor>([root]);
  const leaves = new Set<Tensor>();
  const stack = [root];
  while (stack.length) {
    const t = stack.pop()!;
    if (!t.gradFn) {
      if (t.requiresGrad) leaves.add(t);
      continue;
    }
    for (const c of t.gradFn.inputs) {
      if (c.requiresGrad && !seen.has(c)) {
        seen.add(c);
        stack.push(c);
      }
    }
  }
  return leaves;
}

/** A model replica in a data-parallel job (see the file comment). */
export class DataParallel {
  /** Distinct parameters in registration order. */
  readonly params: Tensor[];
  /** Whether bucket all-reduces start during backward. */
  readonly overlap: boolean;
  private readonly buckets: Bucket[] = [];
  private readonly where = new Map<Tensor, { b: number; i: number }>();
  private nextLaunch = 0;
  private hooked = false;
  private readonly hasSyncBN: boolean;
  private readonly plainBN: boolean;
  private closed = false;

  /**
   * Wraps `model`: checks the replicas agree (a collective), broadcasts parameters and buffers
   * from rank 0, builds the buckets and installs the sync batch-norm reducer.
   * @throws DistConfigError when ranks differ in model or `describe`
   */
  constructor(
    readonly model: Module,
    readonly group: ProcessGroup,
    opts: DataParallelOptions = {},
  ) {
    this.params = model.parameters();
    const shapes = (ts: [string, Tensor][]): Record<string, string> => Object.fromEntries(ts.map(([n, t]) => [n, `${t.dtype}[${t.shape.join(', ')}]`]));
    const structure = { settings: opts.describe ?? {}, parameters: shapes(model.namedParameters()), buffers: shapes(model.namedBuffers()) };
    checkSameOnAllRanks(group, structure, 'model or configuration');
    const bns = model
      .namedModules()
      .map(([, m]) => m)
      .filter((m): m is BatchNorm => m instanceof BatchNorm);
    this.hasSyncBN = bns.some((m) => m.sync);
    this.plainBN = bns.some((m) => !m.sync);
    this.overlap = (opts.overlap ?? true) && !this.hasSyncBN && group.worldSize > 1;
    broadcastTensors(group, [...this.params, ...model.namedBuffers().map(([, t]) => t)]);
    this.buildBuckets(opts.bucketBytes ?? DEFAULT_BUCKET_BYTES);
    if (this.hasSyncBN) setSyncBatchNormReducer((stats, count) => this.reduceBatchStats(stats, count));
  }

  private buildBuckets(cap: number): void {
    const es = (d: CommDType): number => (d === 'f64' ? 8 : 4);
    const open = new Map<CommDType, { params: Tensor[]; bytes: number }>();
    const order: { dtype: CommDType; params: Tensor[] }[] = [];
    const flush = (d: CommDType): void => {
      const o = open.get(d);
      if (o && o.params.length) order.push({ dtype: d, params: o.params });
      open.delete(d);
    };
    for (const p of [...this.params].reverse()) {
      const d = commType(p, 'a parameter');
      if (d === 'i32') continue;
      let o = open.get(d);
      if (!o) open.set(d, (o = { params: [], bytes: 0 }));
      o.params.push(p);
      o.bytes += p.size * es(d);
      if (o.bytes >= cap) flush(d);
    }
    for (const d of [...open.keys()]) flush(d);
    for (const { dtype, params } of order) {
      const offsets: number[] = [];
      let n = 0;
      for (const p of params) {
        offsets.push(n);
        n += p.size;
      }
      const b: Bucket = {
        dtype,
        params,
        offsets,
        flat: this.group.alloc(dtype, n + params.length),
        filled: params.map(() => false),
        ready: 0,
        work: null,
        deferred: new Set(),
      };
      params.forEach((p, i) => this.where.set(p, { b: this.buckets.length, i }));
      this.buckets.push(b);
    }
  }

  /** Number of gradient buckets (for tests and logs). */
  get numBuckets(): number {
    return this.buckets.length;
  }

  /** Sizes of the buckets in bytes. */
  bucketSizes(): number[] {
    return this.buckets.map((b) => b.flat.byteLength);
  }

  /** Copy `p`'s gradient (or zeros) into its bucket slot. */
  private fill(b: Bucket, i: number): void {
    const p = b.params[i],
      off = b.offsets[i],
      n = p.size;
    const g = p.grad;
    if (g) {
      if (g.size !== n) throw new DistConfigError(`data parallel: gradient of shape [${g.shape}] for a parameter of shape [${p.shape}]`);
      const src = g.isContiguous() && g.dtype === p.dtype ? g.storage.subarray(g.offset, g.offset + n) : g.toTypedArray();
      b.flat.set(src as CommArray, off);
      b.flat[b.flat.length - b.params.length + i] = 1;
    } else {
      b.flat.fill(0, off, off + n);
      b.flat[b.flat.length - b.params.length + i] = 0;
    }
    b.filled[i] = true;
    b.ready++;
  }

  private launchReady(): void {
    while (this.nextLaunch < this.buckets.length) {
      const b = this.buckets[this.nextLaunch];
      if (b.ready < b.params.length) return;
      b.work = this.group.allReduceAsync(b.flat, 'sum');
      this.nextLaunch++;
    }
  }

  private readonly hook = (leaf: Tensor): void => {
    const w = this.where.get(leaf);
    if (!w) return;
    const b = this.buckets[w.b];
    if (b.filled[w.i] || b.work || b.deferred.has(w.i)) return;
    const d = leaf.grad?.device;
    if (d?.prefetch) {
      // a device gradient: its copy to the host starts now and runs while backward goes on;
      // the bucket is filled (collecting the copies) once all its gradients are final
      d.prefetch();
      b.deferred.add(w.i);
      if (b.ready + b.deferred.size < b.params.length) return;
    }
    for (const i of b.deferred) this.fill(b, i);
    b.deferred.clear();
    if (!b.filled[w.i]) this.fill(b, w.i);
    if (b.ready === b.params.length) this.launchReady();
  };

  /**
   * Call before each `backward()` of an update: `final` = the last micro-step (its gradients are
   * reduced, with overlap during this backward); earlier micro-steps only accumulate locally.
   * Given the final micro-step's `loss`, parameters it does not reach are marked ready at once
   * (PyTorch's find_unused_parameters), so their buckets do not hold back the ones after them.
   */
  beginBackward(final: boolean, loss?: Tensor): void {
    this.reset();
    if (final && this.overlap) {
      setPostAccumulateGradHook(this.hook);
      this.hooked = true;
      if (loss) {
        const used = reachableLeaves(loss);
        for (const b of this.buckets)
          b.params.forEach((p, i) => {
            if (!used.has(p)) this.fill(b, i);
          });
        this.launchReady();
      }
    } else this.unhook();
  }

  private unhook(): void {
    if (this.hooked) setPostAccumulateGradHook(null);
    this.hooked = false;
  }

  private reset(): void {
    for (const b of this.buckets) {
      if (b.work) b.work.wait();
      b.work = null;
      b.ready = 0;
      b.filled.fill(false);
      b.deferred.clear();
    }
    this.nextLaunch = 0;
  }

  /**
   * Sum every gradient across ranks (after the final micro-step's backward): launches the buckets
   * not yet launched, waits for all and writes the sums back into `p.grad`.
   */
  finishGradients(): void {
    this.unhook();
    for (let k = this.nextLaunch; k < this.buckets.length; k++) {
      const b = this.buckets[k];
      for (let i = 0; i < b.params.length; i++) if (!b.filled[i]) this.fill(b, i);
      b.deferred.clear();
    }
    this.launchReady();
    for (const b of this.buckets) {
      b.work!.wait();
      b.work = null;
      const flags = b.flat.length - b.params.length;
      b.params.forEach((p, i) => {
        const off = b.offsets[i];
        p.grad = b.flat[flags + i] > 0 ? fromStorage(b.flat.slice(off, off + p.size), p.shape) : null;
      });
      b.ready = 0;
      b.filled.fill(false);
    }
    this.nextLaunch = 0;
    if (this.plainBN) this.syncBuffers();
  }

  /** Broadcast every buffer from rank 0 (plain batch-norm running statistics drift apart otherwise). */
  syncBuffers(): void {
    broadcastTensors(
      this.group,
      this.model.namedBuffers().map(([, t]) => t),
    );
  }

  /** Sum of `values` over ranks (f64). */
  sum(values: readonly number[]): number[] {
    const x = Float64Array.from(values);
    this.group.allReduce(x, 'sum');
    return Array.from(x);
  }

  /** The syncbatchnorm reducer: global Σx, Σx² (differentiable: backward all-reduces the gradient) and count. */
  private reduceBatchStats(stats: Tensor, count: number): { stats: Tensor; count: number } {
    const n = stats.size;
    const x = new Float64Array(n + 1);
    x.set(stats.toTypedArray());
    x[n] = count;
    this.group.allReduce(x, 'sum');
    const dtype = stats.dtype as DType;
    const out = allocate(dtype, n);
    for (let i = 0; i < n; i++) out[i] = x[i];
    const t = fromStorage(out, stats.shape);
    record(t, 'sync_batch_norm_all_reduce', [stats], (g) => {
      const gg = Float64Array.from(g.toTypedArray());
      this.group.allReduce(gg, 'sum');
      const r = allocate(g.dtype, gg.length);
      for (let i = 0; i < gg.length; i++) r[i] = gg[i];
      return [fromStorage(r, g.shape)];
    });
    return { stats: t, count: x[n] };
  }

  /** Removes the hooks this wrapper installed (the group stays open). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unhook();
    if (this.hasSyncBN) setSyncBatchNormReducer(null);
  }
}
