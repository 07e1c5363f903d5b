/**
 * The training split of a fairseq data folder as the release's tasks batch it: per-example sizes
 * for fairseq's order (`data/fairseq/order.ts`) and a collater that turns a list of example ids
 * into a padded `Batch` exactly as fairseq's collater does.
 *
 * - `lra-text`: `src-bin/train` (+ `src1-bin/train`) cut to `max_positions`, right-padded with
 *   `<pad>`; class = label id − 4 (the label's line in `label-bin/dict.txt`).
 * - `lra-image`: `input/train.src` pixels → `(p/255 − mean)/std` (f32), labels from `label/train.label`.
 * - `language_modeling`: the Mega LM's seeded variant blocks (re-drawn per epoch); target = the block's tokens, source =
 *   the token before each (`</s>` before the very first); right-padded.
 * - `translation`: `train.<s>-<t>.<s|t>`; source left-padded when `left_pad_source` (the task's
 *   default), decoder input `[</s>, t1 … tn]`, rows sorted by descending source length.
 */
import type { Batch, TokenBatch, TokenExample, ValueBatch, ValueExample } from '../data/batch.js';
import { megaLmBlockDraws, type TrainOrderArgs, type TrainSizes } from '../data/fairseq/order.js';
import { PAD, readLm, readLraImage, readLraText, readTranslation, tokenBlocks } from '../data/fairseq/index.js';
import { ConfigError } from './errors.js';

/** The examples of one epoch: sizes for the order and fairseq's collater. */
export interface FairseqEpochData {
  /** Per-example sizes for the order. */
  sizes: TrainSizes;
  /** fairseq's collater: ids (in batch order) → a padded batch. */
  collate(ids: readonly number[]): Batch;
}

/** The training split, ready for ordering and collation. */
export interface FairseqTrainData {
  /** Order arguments of the task (seed, batching limits, size limits). */
  order: TrainOrderArgs;
  /** The examples of epoch `e` (the same every epoch except for the Mega LM's re-drawn blocks). */
  epoch(e: number): FairseqEpochData;
}

/** Train data whose examples do not change between epochs. */
function fixed(order: TrainOrderArgs, d: FairseqEpochData): FairseqTrainData {
  return { order, epoch: () => d };
}

const num = (a: Record<string, unknown>, k: string): number | undefined => (typeof a[k] === 'number' ? (a[k] as number) : undefined);

function padRows(rows: readonly Int32Array[], left: boolean): { data: Int32Array; L: number } {
  const L = Math.max(...rows.map((r) => r.length));
  const data = new Int32Array(rows.length * L).fill(PAD);
  rows.forEach((r, b) => data.set(r, b * L + (left ? L - r.length : 0)));
  return { data, L };
}

/** A boolean fairseq flag that may be stored as a bool or as the string 'True' / 'False'. */
function flag(v: unknown, dflt: boolean): boolean {
  if (v === undefined || v === null) return dflt;
  if (typeof v === 'boolean') return v;
  return String(v).toLowerCase() === 'true';
}

function tokenBatch(ex: readonly TokenExample[], ids: readonly number[]): TokenBatch {
  const rows = ex.map((e) => e.tokens);
  const p = padRows(rows, false);
  const B = ids.length;
  const b: TokenBatch = {
    kind: 'tokens',
    B,
    L: p.L,
    ids: Int32Array.from(ids),
    srcTokens: p.data,
    srcLengths: Int32Array.from(rows, (r) => r.length),
    labels: Int32Array.from(ex, (e) => e.label ?? -1),
    ntokens: rows.reduce((s, r) => s + r.length, 0),
  };
  if (ex[0]?.tokens2) {
    const rows1 = ex.map((e) => e.tokens2!);
    const q = padRows(rows1, false);
    Object.assign(b, { srcTokens2: q.data, L2: q.L, srcLengths2: Int32Array.from(rows1, (r) => r.length) });
  }
  return b;
}

function lraText(dir: string, a: Record<string, unknown>, base: TrainOrderArgs): FairseqTrainData {
  const maxPos = num(a, 'max_positions') ?? Infinity;
  const { examples } = readLraText(dir, 'train', { maxPositions: maxPos, prependCls: a.sen_rep_type === 'cls' });
  return fixed(
    { ...base, max_positions: maxPos },
    {
      sizes: { sizes: examples.map((e) => e.tokens.length) },
      collate: (ids) =>
        tokenBatch(
          ids.map((i) => examples[i]),
          ids,
        ),
    },
  );
}

function lraImage(dir: string, a: Record<string, unknown>, base: TrainOrderArgs): FairseqTrainData {
  const norm = Array.isArray(a.pixel_normalization) ? (a.pixel_normalization as number[]) : [0.5, 0.5];
  const numClasses = num(a, 'sentence_class_num') ?? num(a, 'num_classes') ?? Infinity;
  const images: ValueExample[] = readLraImage(dir, 'train', { mean: norm[0], std: norm[1], maxPositions: num(a, 'max_positions') ?? Infinity, numClasses });
  const L = images[0]?.values.length ?? 0;
  return fixed(base, {
    sizes: { sizes: images.map((x) => x.values.length) },
    collate(ids): ValueBatch {
      const B = ids.length;
      const x = new Float32Array(B * L); // B × L
      ids.forEach((i, r) => x.set(images[i].values, r * L));
      return {
        kind: 'values',
        B,
        L,
        ids: Int32Array.from(ids),
        srcValues: x,
        srcLengths: new Int32Array(B).fill(L),
        labels: Int32Array.from(ids, (i) => images[i].label!),
        ntokens: B * L,
      };
    },
  });
}

function languageModeling(dir: string, a: Record<string, unknown>, base: TrainOrderArgs): FairseqTrainData {
  if (a.sample_break_mode !== 'complete')
    throw new ConfigError(`--sample-break-mode ${String(a.sample_break_mode)}: training continuation supports the Mega LM's complete mode`);
  const C = num(a, 'decoder_chunk_size');
  if (!C || C <= 0) throw new ConfigError('--decoder-chunk-size: training continuation needs the Mega LM chunk size (> 0)');
  const { data: sents } = readLm(dir, 'train');
  const mult = [num(a, 'variant_block_multiple_min') ?? 1, num(a, 'variant_block_multiple_max') ?? 1];
  // fairseq's size limit: min(tokens_per_sample, max_target_positions, max_tokens)
  const limit = Math.min(num(a, 'tokens_per_sample') ?? Infinity, num(a, 'max_target_positions') ?? Infinity, num(a, 'max_tokens') ?? Infinity);
  return {
    order: { ...base, max_positions: limit },
    epoch(e: number): FairseqEpochData {
      const blocks = tokenBlocks(sents, C, 'complete', megaLmBlockDraws(sents.length, C, mult[0], mult[1], base.seed, e));
      return {
        sizes: { sizes: blocks.map((b) => b.target.length) },
        collate(ids): TokenBatch {
          const src = ids.map((i) => blocks[i].source),
            tgt = ids.map((i) => blocks[i].target);
          const s = padRows(src, false),
            t = padRows(tgt, false); // B × L
          return {
            kind: 'tokens',
            B: ids.length,
            L: s.L,
            ids: Int32Array.from(ids),
            srcTokens: s.data,
            srcLengths: Int32Array.from(src, (r) => r.length),
            labels: new Int32Array(ids.length).fill(-1),
            target: t.data,
            T: t.L,
            ntokens: tgt.reduce((n, r) => n + r.length, 0),
          };
        },
      };
    },
  };
}

function translation(dir: string, a: Record<string, unknown>, base: TrainOrderArgs): FairseqTrainData {
  const s = String(a.source_lang ?? ''),
    t = String(a.target_lang ?? '');
  if (!s || !t) throw new ConfigError('translation: --source-lang / --target-lang missing (expected the language pair, e.g. -s en -t de)');
  const { examples } = readTranslation(dir, 'train', s, t);
  const leftSrc = flag(a.left_pad_source, true),
    leftTgt = flag(a.left_pad_target, false);
  const maxPos: [number, number] = [num(a, 'max_source_positions') ?? Infinity, num(a, 'max_target_positions') ?? Infinity];
  const mt = num(a, 'max_tokens');
  if (mt !== undefined) [maxPos[0], maxPos[1]] = [Math.min(maxPos[0], mt), Math.min(maxPos[1], mt)];
  return fixed(
    { ...base, max_positions: maxPos },
    {
      sizes: { sizes: examples.map((e) => e.tokens.length), tgtSizes: examples.map((e) => e.target!.length) },
      collate(ids0): TokenBatch {
        // rows by descending source length (stable)
        const ids = [...ids0].sort((p, q) => examples[q].tokens.length - examples[p].tokens.length);
        const ex = ids.map((i) => examples[i]);
        const ps = padRows(
          ex.map((e) => e.tokens),
          leftSrc,
        ); // B × L
        const targets = ex.map((e) => e.target!);
        const pt = padRows(targets, leftTgt),
          pp = padRows(
            ex.map((e) => e.prevOutputTokens!),
            leftTgt,
          ); // B × T
        return {
          kind: 'tokens',
          B: ids.length,
          L: ps.L,
          ids: Int32Array.from(ids),
          srcTokens: ps.data,
          srcLengths: Int32Array.from(ex, (e) => e.tokens.length),
          labels: new Int32Array(ids.length).fill(-1),
          prevOutputTokens: pp.data,
          target: pt.data,
          T: pt.L,
          ntokens: targets.reduce((n, r) => n + r.length, 0),
        };
      },
    },
  );
}

/**
 * Loads the training split of `dir` for the task of `args` (fairseq names: `task`, `seed`,
 * `max_tokens`, `max_sentences`, `required_batch_size_multiple`, and the task's own fields).
 * @throws DataError for missing or malformed files; ConfigError for an unsupported task / mode
 */
export function loadFairseqTrainData(dir: string, args: Record<string, unknown>): FairseqTrainData {
  const base: TrainOrderArgs = {
    task: args.task as TrainOrderArgs['task'],
    seed: num(args, 'seed') ?? 1,
    max_tokens: num(args, 'max_tokens') ?? null,
    max_sentences: num(args, 'max_sentences') ?? num(args, 'batch_size') ?? null,
    required_batch_size_multiple: num(args, 'required_batch_size_multiple') ?? 8,
    no_shuffle: args.no_shuffle === true,
  };
  switch (args.task) {
    case 'lra-text':
      return lraText(dir, args, base);
    case 'lra-image':
      return lraImage(dir, args, base);
    case 'language_modeling':
      return languageModeling(dir, args, base);
    case 'translation':
      return translation(dir, args, base);
    default:
      throw new ConfigError(`--task ${String(args.task)}: training continuation supports lra-text, lra-image, language_modeling, translation`);
  }
}
