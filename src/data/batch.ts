/**
 * Datasets of examples and a deterministic, resumable batcher (docs/MEGA.md §9.6).
 *
 * - Token examples (`tokens`, plus `tokens2` for dual-input retrieval, `prevOutputTokens`/`target`
 *   for LM and translation) are right-padded with `<pad>` = 1.
 * - Real-valued examples (`values`: normalised pixels, audio) are right-padded with 0.
 * - Epoch `e` visits the examples in a fixed permutation seeded by `(seed, e)`, cut into batches of at
 *   most `batchSize` examples. The iterator state `{epoch, position}` (position = batches already
 *   returned in that epoch) restores the stream exactly.
 */

import { DataError } from './errors.js';
import { checkInt, checkLabel } from './files.js';
import { deriveSeed, Rng } from './rng.js';
import { PAD } from './vocab.js';

/** A token-sequence example. */
export interface TokenExample {
  /** Source tokens (LRA text input, LM input, NMT source). */
  tokens: Int32Array;
  /** Class label (classification tasks). */
  label?: number;
  /** Second document (retrieval / AAN dual input). */
  tokens2?: Int32Array;
  /** Decoder input `[</s>, y0, …]` (translation). */
  prevOutputTokens?: Int32Array;
  /** Per-position targets (LM, translation). */
  target?: Int32Array;
}

/** A real-valued sequence example (image pixels, raw audio). */
export interface ValueExample {
  /** Real inputs, e.g. `(pixel/255 − mean)/std`. */
  values: Float32Array;
  /** Class label. */
  label?: number;
}

/** Any example. */
export type Example = TokenExample | ValueExample;

/** Random-access collection of examples. */
export interface Dataset<E extends Example = Example> {
  /** Number of examples. */
  readonly length: number;
  /** Example `index` (0-based). */
  get(index: number): E;
}

/** A {@link Dataset} over an in-memory array. */
export class ArrayDataset<E extends Example> implements Dataset<E> {
  /**
   * @param examples the examples (not copied)
   * @param name data set name for error messages
   * @throws DataError when `examples` is empty
   */
  constructor(
    readonly examples: readonly E[],
    readonly name = 'dataset',
  ) {
    if (examples.length === 0) throw new DataError(`${name}: no examples (expected at least one)`);
  }

  /** Number of examples. */
  get length(): number {
    return this.examples.length;
  }

  /** Example `index`. @throws DataError when out of range */
  get(index: number): E {
    const e = this.examples[index];
    if (e === undefined) throw new DataError(`${this.name}: example index ${index} out of range [0, ${this.length})`);
    return e;
  }
}

/**
 * Check that every example has a label in `[0, numClasses)`.
 * @throws DataError naming the first bad example
 */
export function validateLabels(dataset: Dataset, numClasses: number, name = 'dataset'): void {
  for (let i = 0; i < dataset.length; i++) {
    const l = dataset.get(i).label;
    if (l === undefined) throw new DataError(`${name}: example ${i} has no label (expected 0..${numClasses - 1})`);
    checkLabel(l, `${name}: example ${i}`, numClasses);
  }
}

/** A padded batch of token examples (row-major `B × L` arrays). */
export interface TokenBatch {
  /** Discriminant. */
  kind: 'tokens';
  /** Number of examples. */
  B: number;
  /** Padded source length (max of `srcLengths`). */
  L: number;
  /** Dataset indices of the rows. */
  ids: Int32Array;
  /** `B × L` source tokens, right-padded with `<pad>` = 1. */
  srcTokens: Int32Array;
  /** `B` real source lengths. */
  srcLengths: Int32Array;
  /** `B` labels (−1 where an example has none). */
  labels: Int32Array;
  /** Dual input: `B × L2` second-document tokens. */
  srcTokens2?: Int32Array;
  /** Dual input: padded length of the second documents. */
  L2?: number;
  /** Dual input: `B` second-document lengths. */
  srcLengths2?: Int32Array;
  /** `B × T` decoder inputs (pad 1). */
  prevOutputTokens?: Int32Array;
  /** `B × T` targets (pad 1). */
  target?: Int32Array;
  /** Padded target length. */
  T?: number;
  /** Non-pad target tokens when `target` is present, else the sum of `srcLengths`. */
  ntokens: number;
}

/** A padded batch of real-valued examples. */
export interface ValueBatch {
  /** Discriminant. */
  kind: 'values';
  /** Number of examples. */
  B: number;
  /** Padded length. */
  L: number;
  /** Dataset indices of the rows. */
  ids: Int32Array;
  /** `B × L` values, right-padded with 0. */
  srcValues: Float32Array;
  /** `B` real lengths. */
  srcLengths: Int32Array;
  /** `B` labels (−1 where an example has none). */
  labels: Int32Array;
  /** Sum of `srcLengths`. */
  ntokens: number;
}

/** Any batch. */
export type Batch = TokenBatch | ValueBatch;

function padRows<A extends Int32Array | Float32Array>(rows: readonly A[], make: (n: number) => A, pad: number): { data: A; L: number; lengths: Int32Array } {
  const lengths = new Int32Array(rows.length);
  let L = 0;
  rows.forEach((r, i) => {
    lengths[i] = r.length;
    if (r.length > L) L = r.length;
  });
  const data = make(rows.length * L);
  if (pad !== 0) data.fill(pad);
  rows.forEach((r, i) => data.set(r, i * L));
  return { data, L, lengths };
}

function field<T>(examples: readonly Example[], key: string, what: string): T[] | undefined {
  const has = examples.map((e) => (e as unknown as Record<string, unknown>)[key] !== undefined);
  if (has.every((h) => !h)) return undefined;
  const i = has.indexOf(false);
  if (i >= 0) throw new DataError(`batch: example ${i} lacks ${what} "${key}" that other examples have`);
  return examples.map((e) => (e as unknown as Record<string, T>)[key]!);
}

/**
 * Collate examples into a padded batch (tokens padded with `pad`, values with 0).
 * @param examples the examples (all token examples or all value examples)
 * @param ids their dataset indices (default `0..n-1`)
 * @param pad token padding id (default 1)
 * @throws DataError for an empty list or mixed example kinds / fields
 */
export function collate(examples: readonly Example[], ids?: ArrayLike<number>, pad = PAD): Batch {
  if (examples.length === 0) throw new DataError('batch: no examples (expected at least one)');
  const B = examples.length;
  const idArr = ids ? Int32Array.from(ids) : Int32Array.from({ length: B }, (_, i) => i);
  const labels = new Int32Array(B).fill(-1);
  examples.forEach((e, i) => {
    if (e.label !== undefined) labels[i] = e.label;
  });
  const values = field<Float32Array>(examples, 'values', 'field');
  const tokens = field<Int32Array>(examples, 'tokens', 'field');
  if (values && tokens) throw new DataError('batch: examples mix "tokens" and "values" (expected one kind)');
  if (values) {
    const p = padRows(values, (n) => new Float32Array(n), 0);
    const ntokens = p.lengths.reduce((a, b) => a + b, 0);
    return { kind: 'values', B, L: p.L, ids: idArr, srcValues: p.data, srcLengths: p.lengths, labels, ntokens };
  }
  if (!tokens) throw new DataError('batch: examples have neither "tokens" nor "values"');
  const src = padRows(tokens, (n) => new Int32Array(n), pad);
  const batch: TokenBatch = {
    kind: 'tokens',
    B,
    L: src.L,
    ids: idArr,
    srcTokens: src.data,
    srcLengths: src.lengths,
    labels,
    ntokens: 0,
  };
  const t2 = field<Int32Array>(examples, 'tokens2', 'field');
  if (t2) {
    const p = padRows(t2, (n) => new Int32Array(n), pad);
    batch.srcTokens2 = p.data;
    batch.L2 = p.L;
    batch.srcLengths2 = p.lengths;
  }
  const prev = field<Int32Array>(examples, 'prevOutputTokens', 'field');
  const tgt = field<Int32Array>(examples, 'target', 'field');
  let T: number | undefined;
  if (prev) {
    const p = padRows(prev, (n) => new Int32Array(n), pad);
    batch.prevOutputTokens = p.data;
    T = p.L;
  }
  if (tgt) {
    const p = padRows(tgt, (n) => new Int32Array(n), pad);
    if (T !== undefined && T !== p.L) {
      throw new DataError(`batch: prevOutputTokens length ${T} != target length ${p.L} (expected equal)`);
    }
    batch.target = p.data;
    T = p.L;
    let nt = 0;
    for (let i = 0; i < p.data.length; i++) if (p.data[i] !== pad) nt++;
    batch.ntokens = nt;
  } else {
    batch.ntokens = src.lengths.reduce((a, b) => a + b, 0);
  }
  if (T !== undefined) batch.T = T;
  return batch;
}

/** Rows `[lo, hi)` of a `B × W` row-major array. */
function rows<A extends Int32Array | Float32Array>(a: A, W: number, lo: number, hi: number, newW: number): A {
  const out = new (a.constructor as new (n: number) => A)((hi - lo) * newW);
  for (let r = lo; r < hi; r++) out.set(a.subarray(r * W, r * W + newW), (r - lo) * newW);
  return out;
}

function maxOf(a: Int32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (a[i]! > m) m = a[i]!;
  return m;
}

/**
 * The part of a global batch that data-parallel rank `rank` of `worldSize` processes: a contiguous
 * run of examples, the first `B mod worldSize` ranks taking one extra example. Padding is trimmed to
 * the shard's own maximum length (as if each rank had collated its examples itself); a shard may be
 * empty (`B = 0`) when `B < worldSize`.
 * @throws DataError for an invalid rank / world size
 */
export function shardBatch<T extends Batch>(batch: T, rank: number, worldSize: number): T {
  if (!Number.isInteger(worldSize) || worldSize < 1) throw new DataError(`worldSize = ${worldSize}: expected an integer >= 1`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) {
    throw new DataError(`rank = ${rank}: expected an integer in [0, ${worldSize})`);
  }
  const base = Math.floor(batch.B / worldSize);
  const extra = batch.B % worldSize;
  const lo = rank * base + Math.min(rank, extra);
  const hi = lo + base + (rank < extra ? 1 : 0);
  const srcLengths = batch.srcLengths.slice(lo, hi);
  const L = maxOf(srcLengths);
  const common = { B: hi - lo, L, ids: batch.ids.slice(lo, hi), srcLengths, labels: batch.labels.slice(lo, hi) };
  if (batch.kind === 'values') {
    const srcValues = rows(batch.srcValues, batch.L, lo, hi, L);
    return { ...common, kind: 'values', srcValues, ntokens: srcLengths.reduce((a, b) => a + b, 0) } as T;
  }
  const out: TokenBatch = { ...common, kind: 'tokens', srcTokens: rows(batch.srcTokens, batch.L, lo, hi, L), ntokens: 0 };
  if (batch.srcTokens2 && batch.srcLengths2 && batch.L2 !== undefined) {
    out.srcLengths2 = batch.srcLengths2.slice(lo, hi);
    out.L2 = maxOf(out.srcLengths2);
    out.srcTokens2 = rows(batch.srcTokens2, batch.L2, lo, hi, out.L2);
  }
  if (batch.T !== undefined) {
    // target lengths are not stored: trim to the last column holding a non-pad entry in this shard
    let T = 0;
    for (const a of [batch.prevOutputTokens, batch.target]) {
      if (!a) continue;
      for (let r = lo; r < hi; r++) {
        for (let t = batch.T - 1; t >= T; t--) {
          if (a[r * batch.T + t] !== PAD) {
            T = t + 1;
            break;
          }
        }
      }
    }
    out.T = T;
    if (batch.prevOutputTokens) out.prevOutputTokens = rows(batch.prevOutputTokens, batch.T, lo, hi, T);
    if (batch.target) out.target = rows(batch.target, batch.T, lo, hi, T);
  }
  if (out.target) {
    let nt = 0;
    for (let i = 0; i < out.target.length; i++) if (out.target[i] !== PAD) nt++;
    out.ntokens = nt;
  } else {
    out.ntokens = srcLengths.reduce((a, b) => a + b, 0);
  }
  return out as T;
}

/** Options of {@link Batcher}. */
export interface BatcherOptions {
  /** Maximum examples per batch (`--batch-size`). */
  batchSize: number;
  /** Seed of the per-epoch permutations (default 1, fairseq's default `--seed`). */
  seed?: number;
  /** Shuffle (default true); false keeps dataset order every epoch. */
  shuffle?: boolean;
  /** Drop a last incomplete batch (default false). */
  dropLast?: boolean;
  /** Token padding id (default 1). */
  pad?: number;
}

/** Resumable iterator position: `position` batches of epoch `epoch` (1-based) were returned. */
export interface BatchIteratorState {
  /** Current epoch, starting at 1. */
  epoch: number;
  /** Batches already returned in this epoch. */
  position: number;
}

/** Deterministic batcher with an exactly restorable `{epoch, position}` state. */
export class Batcher<E extends Example = Example> {
  /** Number of batches in every epoch. */
  readonly batchesPerEpoch: number;
  private readonly batchSize: number;
  private readonly seed: number;
  private readonly shuffle: boolean;
  private readonly pad: number;
  private epoch = 1;
  private position = 0;
  private cache: { epoch: number; batches: Int32Array[] } | undefined;

  /**
   * @param dataset the examples
   * @param opts batch size, seed, shuffle, dropLast, pad
   * @throws DataError for an empty dataset, a bad batch size, or no complete batch with `dropLast`
   */
  constructor(
    readonly dataset: Dataset<E>,
    opts: BatcherOptions,
  ) {
    if (opts.batchSize === undefined) throw new DataError('batchSize = undefined: expected an integer >= 1');
    checkInt('batchSize', opts.batchSize);
    if (dataset.length === 0) throw new DataError('batcher: dataset is empty (expected at least one example)');
    this.batchSize = opts.batchSize;
    this.seed = opts.seed ?? 1;
    this.shuffle = opts.shuffle ?? true;
    this.pad = opts.pad ?? PAD;
    const n = dataset.length;
    this.batchesPerEpoch = opts.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
    if (this.batchesPerEpoch === 0) {
      throw new DataError(`batcher: ${n} examples < batchSize ${this.batchSize} with dropLast (expected a full batch)`);
    }
  }

  /** Example indices of every batch of `epoch` (deterministic in `seed` and `epoch`). */
  batchIndices(epoch: number): Int32Array[] {
    if (this.cache?.epoch === epoch) return this.cache.batches;
    const n = this.dataset.length;
    const order = this.shuffle ? new Rng(deriveSeed(this.seed, epoch)).permutation(n) : Int32Array.from({ length: n }, (_, i) => i);
    const batches: Int32Array[] = [];
    for (let b = 0; b < this.batchesPerEpoch; b++) {
      batches.push(order.slice(b * this.batchSize, Math.min(n, (b + 1) * this.batchSize)));
    }
    this.cache = { epoch, batches };
    return batches;
  }

  /** A copy of the current iterator state. */
  get state(): BatchIteratorState {
    return { epoch: this.epoch, position: this.position };
  }

  /**
   * Restore a state saved from {@link state} (e.g. from a checkpoint).
   * @throws DataError for an epoch < 1 or a position outside `[0, batchesPerEpoch]`
   */
  setState(s: BatchIteratorState): void {
    if (!Number.isInteger(s.epoch) || s.epoch < 1) throw new DataError(`iterator state epoch = ${s.epoch}: expected an integer >= 1`);
    if (!Number.isInteger(s.position) || s.position < 0 || s.position > this.batchesPerEpoch) {
      throw new DataError(`iterator state position = ${s.position}: expected an integer in [0, ${this.batchesPerEpoch}]`);
    }
    this.epoch = s.epoch;
    this.position = s.position;
  }

  /** Whether the current epoch has no batch left. */
  get endOfEpoch(): boolean {
    return this.position >= this.batchesPerEpoch;
  }

  /** Move to the start of the next epoch. */
  nextEpoch(): void {
    this.epoch++;
    this.position = 0;
  }

  /** Collate batch `position` of `epoch` without moving the iterator. */
  batchAt(epoch: number, position: number): Batch {
    const idx = this.batchIndices(epoch)[position];
    if (!idx) throw new DataError(`batch position ${position}: expected < ${this.batchesPerEpoch}`);
    return collate(
      Array.from(idx, (i) => this.dataset.get(i)),
      idx,
      this.pad,
    );
  }

  /** The next batch; rolls over into the next epoch after the last batch of an epoch. */
  next(): Batch {
    if (this.endOfEpoch) this.nextEpoch();
    const b = this.batchAt(this.epoch, this.position);
    this.position++;
    return b;
  }

  /** Iterate the remaining batches of the current epoch (does not roll over). */
  *remaining(): Generator<Batch> {
    while (!this.endOfEpoch) yield this.next();
  }
}
