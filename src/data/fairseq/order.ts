/**
 * fairseq's example order and batches, per task, for exact training continuation.
 *
 * The pipeline of fairseq's batch iterator (docs/FAIRSEQ-CONTINUE.md explains the whole continuation):
 *
 * 1. The task orders the example indices (seeded with numpy's legacy generator):
 *    - `lra-text` / `lra-image`: `perm = permutation(N)` seeded with `--seed` when the split is
 *      loaded; examples are taken in the order `argsort(perm)`.
 *    - `language_modeling` (Mega LM): token blocks of whole sentences whose target sizes are drawn
 *      with `choice(sizes, nSentences)` right after `np.random.seed(--seed)` (re-drawn per epoch
 *      from epoch 2 on, `megaLmBlockDraws`); blocks are ordered by size ascending, ties by a seeded
 *      permutation (`lexsort([perm, sizes])`), and rebatched every epoch.
 *    - `translation`: `permutation(N)` (seeded), then stable sort by target length, then stable sort
 *      by source length.
 * 2. Examples longer than the limit are dropped (train).
 * 3. Batches are cut greedily (`batchBySize`).
 * 4. Epoch `e` shuffles the list of batches with `np.random.seed(seed + e)`.
 * 5. `--update-freq k` groups k consecutive batches into one update.
 */
import { DataError } from '../errors.js';
import { NumpyRandomState } from './numpy-random.js';

/** `np.argsort(keys, kind='stable')` of integer keys. */
function stableArgsort(keys: ArrayLike<number>): Int32Array {
  const idx = Array.from({ length: keys.length }, (_, i) => i);
  idx.sort((a, b) => keys[a] - keys[b] || a - b);
  return Int32Array.from(idx);
}

/** lra-text / lra-image order: `argsort(permutation(n))` with `np.random.seed(seed)`. */
export function lraOrder(n: number, seed: number): Int32Array {
  return stableArgsort(new NumpyRandomState(seed).permutation(n));
}

/**
 * translation order (`LanguagePairDataset.ordered_indices` under `numpy_seed(seed)`): a permutation
 * (or `0..N-1` when `shuffle` is false), stable-sorted by target length, then by source length.
 */
export function languagePairOrder(srcSizes: ArrayLike<number>, tgtSizes: ArrayLike<number>, seed: number, shuffle = true): Int32Array {
  const n = srcSizes.length;
  let idx = shuffle ? new NumpyRandomState(seed).permutation(n) : Int32Array.from({ length: n }, (_, i) => i);
  const byTgt = stableArgsort(Array.from(idx, (i) => tgtSizes[i]));
  idx = byTgt.map((k) => idx[k]);
  const bySrc = stableArgsort(Array.from(idx, (i) => srcSizes[i]));
  return bySrc.map((k) => idx[k]);
}

/**
 * The target block sizes of the Mega LM's training blocks for `epoch`, drawn from
 * `[min..max] × chunk`:
 * - epoch 1 (the dataset as loaded): `choice(sizes, nSentences)` on numpy's global generator just
 *   after `np.random.seed(seed)`;
 * - epoch e >= 2 (the dataset re-blocked at the start of the epoch):
 *   `RandomState([42, seed mod 2^32, e]).choice(sizes, floor(nSentences / 2))`.
 * With `max == 1` every block has the size `min × chunk`. The blocks themselves are cut by
 * `tokenBlocks` (`tasks.ts`, `complete` mode) with these sizes.
 */
export function megaLmBlockDraws(nSentences: number, chunk: number, multMin: number, multMax: number, seed: number, epoch = 1): number[] {
  if (multMax <= 1) return new Array<number>(nSentences).fill(multMin * chunk);
  const sizes: number[] = [];
  for (let m = multMin; m <= multMax; m++) sizes.push(m * chunk);
  if (epoch <= 1) return new NumpyRandomState(seed).choice(sizes, nSentences);
  const rng = new NumpyRandomState(0);
  rng.seedArray([42, seed % 2 ** 32, epoch]);
  return rng.choice(sizes, Math.floor(nSentences / 2));
}

/** MonolingualDataset order: by size ascending, ties by a permutation seeded with `seed` (`lexsort([perm, sizes])`). */
export function monolingualOrder(sizes: ArrayLike<number>, seed: number, shuffle = true): Int32Array {
  const n = sizes.length;
  const perm = shuffle ? new NumpyRandomState(seed).permutation(n) : Int32Array.from({ length: n }, (_, i) => i);
  const idx = Array.from({ length: n }, (_, i) => i);
  idx.sort((a, b) => sizes[a] - sizes[b] || perm[a] - perm[b] || a - b);
  return Int32Array.from(idx);
}

/** Indices whose size is within `max` (fairseq drops longer training examples). */
export function filterBySize(order: ArrayLike<number>, size: (i: number) => number, max: number): Int32Array {
  return Int32Array.from(Array.from(order).filter((i) => size(i) <= max));
}

/** Batching limits (`--max-tokens`, `--max-sentences`/`--batch-size`, `--required-batch-size-multiple`). */
export interface BatchLimits {
  maxTokens?: number | null;
  maxSentences?: number | null;
  /** Default 1. */
  multiple?: number;
}

/**
 * fairseq's `batch_by_size`: walking `order`, a batch is full when it already holds `maxSentences`
 * examples or when (examples + 1) × (longest so far, the new one included) exceeds `maxTokens`; a
 * full batch of n emits its first max(m·floor(n/m), n mod m) and carries the rest.
 * @throws DataError when one example alone exceeds `maxTokens`
 */
export function batchBySize(order: ArrayLike<number>, numTokens: (i: number) => number, lim: BatchLimits): number[][] {
  const maxTokens = lim.maxTokens ?? 0,
    maxSentences = lim.maxSentences ?? 0,
    m = lim.multiple ?? 1;
  const batches: number[][] = [];
  let batch: number[] = [];
  let lens: number[] = [];
  let longest = 0;
  for (let k = 0; k < order.length; k++) {
    const idx = order[k];
    const nt = numTokens(idx);
    lens.push(nt);
    longest = Math.max(longest, nt);
    if (maxTokens > 0 && longest > maxTokens) throw new DataError(`example ${idx} has ${longest} tokens, more than --max-tokens ${maxTokens}`);
    const tokens = (batch.length + 1) * longest;
    const full = batch.length > 0 && ((maxSentences > 0 && batch.length === maxSentences) || (maxTokens > 0 && tokens > maxTokens));
    if (full) {
      const cut = Math.max(m * Math.floor(batch.length / m), batch.length % m);
      batches.push(batch.slice(0, cut));
      batch = batch.slice(cut);
      lens = lens.slice(cut);
      longest = lens.length ? Math.max(...lens) : 0;
    }
    batch.push(idx);
  }
  if (batch.length) batches.push(batch);
  return batches;
}

/** The batches of epoch `epoch` (1-based): shuffled with `np.random.seed(seed + epoch)` when `shuffle`. */
export function epochBatches(batches: readonly number[][], seed: number, epoch: number, shuffle = true): number[][] {
  const out = batches.slice();
  if (shuffle) new NumpyRandomState(seed + epoch).shuffle(out);
  return out;
}

/** `--update-freq k`: consecutive groups of k batches (the last group of an epoch may be shorter). */
export function groupUpdates<T>(batches: readonly T[], updateFreq: number): T[][] {
  if (!Number.isInteger(updateFreq) || updateFreq < 1) throw new DataError(`--update-freq ${updateFreq}: expected a positive integer`);
  const out: T[][] = [];
  for (let i = 0; i < batches.length; i += updateFreq) out.push(batches.slice(i, i + updateFreq));
  return out;
}

/** What a task's training order needs (fairseq argparse names). */
export interface TrainOrderArgs {
  task: 'lra-text' | 'lra-image' | 'language_modeling' | 'translation';
  seed: number;
  max_tokens?: number | null;
  max_sentences?: number | null;
  required_batch_size_multiple?: number;
  /** translation: `[max_source_positions, max_target_positions]`; other tasks: the length limit. */
  max_positions?: number | readonly [number, number];
  /** lra-text / lra-image `--no-shuffle`: examples in file order. */
  no_shuffle?: boolean;
}

/** The sizes of a training split, as the task sees them. */
export interface TrainSizes {
  /** Per example: input length (LRA, cut to max positions), block size (LM), source length (translation). */
  sizes: ArrayLike<number>;
  /** translation: target lengths. */
  tgtSizes?: ArrayLike<number>;
}

/**
 * The frozen list of training batches (example / block indices) before the per-epoch shuffle:
 * task order → size filter → `batchBySize`.
 */
export function trainBatches(a: TrainOrderArgs, s: TrainSizes): number[][] {
  const lim = { maxTokens: a.max_tokens, maxSentences: a.max_sentences, multiple: a.required_batch_size_multiple ?? 8 };
  const n = s.sizes.length;
  switch (a.task) {
    case 'lra-text':
    case 'lra-image':
      return batchBySize(a.no_shuffle ? Int32Array.from({ length: n }, (_, i) => i) : lraOrder(n, a.seed), (i) => s.sizes[i], lim);
    case 'language_modeling': {
      let order = monolingualOrder(s.sizes, a.seed);
      if (typeof a.max_positions === 'number') order = filterBySize(order, (i) => s.sizes[i], a.max_positions);
      return batchBySize(order, (i) => s.sizes[i], lim);
    }
    case 'translation': {
      const tgt = s.tgtSizes;
      if (!tgt || tgt.length !== n) throw new DataError(`translation order: ${tgt ? tgt.length : 0} target sizes for ${n} source sentences`);
      let order = languagePairOrder(s.sizes, tgt, a.seed);
      if (Array.isArray(a.max_positions)) {
        const [ms, mt] = a.max_positions as [number, number];
        order = Int32Array.from(Array.from(order).filter((i) => s.sizes[i] <= ms && tgt[i] <= mt));
      }
      return batchBySize(order, (i) => Math.max(s.sizes[i], tgt[i]), lim);
    }
  }
}
