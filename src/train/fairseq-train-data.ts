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
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Batch, TokenBatch, ValueBatch } from '../data/batch.js';
import { DataError } from '../data/errors.js';
import { megaLmTrainBlocks, readIdxSizes, type TrainOrderArgs, type TrainSizes } from '../data/fairseq/order.js';
import { ConfigError } from './errors.js';

const PAD = 1;
const EOS = 2;
/** fairseq's dictionaries start with 4 specials: a label's class is its id minus 4. */
const NSPECIAL = 4;

/** Element type of each `.idx` dtype code fairseq writes. */
const DTYPES: Readonly<Record<number, { size: number; read: (b: Buffer, o: number) => number }>> = {
  1: { size: 1, read: (b, o) => b.readUInt8(o) },
  2: { size: 1, read: (b, o) => b.readInt8(o) },
  3: { size: 2, read: (b, o) => b.readInt16LE(o) },
  4: { size: 4, read: (b, o) => b.readInt32LE(o) },
  5: { size: 8, read: (b, o) => Number(b.readBigInt64LE(o)) },
  8: { size: 2, read: (b, o) => b.readUInt16LE(o) },
};

/** Sentences of an indexed dataset `PREFIX.{idx,bin}` as token arrays. */
function readSentences(prefix: string): Int32Array[] {
  const sizes = readIdxSizes(`${prefix}.idx`);
  const code = readFileSync(`${prefix}.idx`).readUInt8(17);
  const dt = DTYPES[code];
  if (!dt) throw new DataError(`${prefix}.idx: dtype code ${code} is not an integer token type (expected 1, 2, 3, 4, 5 or 8)`);
  let bin: Buffer;
  try {
    bin = readFileSync(`${prefix}.bin`);
  } catch (e) {
    throw new DataError(`${prefix}.bin: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
  let total = 0;
  for (const s of sizes) total += s;
  if (bin.length !== total * dt.size) throw new DataError(`${prefix}.bin: ${bin.length} bytes, expected ${total * dt.size} (the sizes in ${prefix}.idx)`);
  const out: Int32Array[] = [];
  let off = 0;
  for (const s of sizes) {
    const t = new Int32Array(s);
    for (let i = 0; i < s; i++, off += dt.size) t[i] = dt.read(bin, off);
    out.push(t);
  }
  return out;
}

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

function lraText(dir: string, a: Record<string, unknown>, base: TrainOrderArgs): FairseqTrainData {
  const maxPos = num(a, 'max_positions') ?? Infinity;
  // `--sen-rep-type cls`: `<CLS>` (appended to src-bin/dict.txt after the 4 specials) is prepended, then the cut
  const cls = a.sen_rep_type === 'cls' ? NSPECIAL + lines(join(dir, 'src-bin', 'dict.txt')).length : -1;
  const cut = (t0: Int32Array): Int32Array => {
    const t = cls >= 0 ? Int32Array.from([cls, ...t0]) : t0;
    return t.length > maxPos ? t.slice(0, maxPos) : t;
  };
  const src = readSentences(join(dir, 'src-bin', 'train')).map(cut);
  const src1 = a.input_type === 'text' && existsPrefix(join(dir, 'src1-bin', 'train')) ? readSentences(join(dir, 'src1-bin', 'train')).map(cut) : null;
  const labels = readSentences(join(dir, 'label-bin', 'train')).map((t, i) => {
    if (t.length !== 2 || t[1] !== EOS || t[0] < NSPECIAL) throw new DataError(`${join(dir, 'label-bin', 'train')}: sentence ${i} is [${Array.from(t).join(', ')}], expected [label id >= 4, 2]`);
    return t[0] - NSPECIAL;
  });
  if (labels.length !== src.length || (src1 && src1.length !== src.length)) throw new DataError(`${dir}: train splits differ in length (src-bin ${src.length}, label-bin ${labels.length}${src1 ? `, src1-bin ${src1.length}` : ''})`);
  return fixed({ ...base, max_positions: maxPos }, {
    sizes: { sizes: src.map((t) => t.length) },
    collate(ids): TokenBatch {
      const rows = ids.map((i) => src[i]);
      const p = padRows(rows, false);
      const B = ids.length;
      const b: TokenBatch = {
        kind: 'tokens', B, L: p.L, ids: Int32Array.from(ids), srcTokens: p.data, srcLengths: Int32Array.from(rows, (r) => r.length),
        labels: Int32Array.from(ids, (i) => labels[i]), ntokens: rows.reduce((s, r) => s + r.length, 0),
      };
      if (src1) {
        const rows1 = ids.map((i) => src1[i]);
        const q = padRows(rows1, false);
        Object.assign(b, { srcTokens2: q.data, L2: q.L, srcLengths2: Int32Array.from(rows1, (r) => r.length) });
      }
      return b;
    },
  });
}

function existsPrefix(prefix: string): boolean {
  try {
    readFileSync(`${prefix}.idx`, { flag: 'r' });
    return true;
  } catch {
    return false;
  }
}

function lines(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new DataError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
  return text.split('\n').filter((l) => l.trim().length > 0);
}

function lraImage(dir: string, a: Record<string, unknown>, base: TrainOrderArgs): FairseqTrainData {
  const norm = Array.isArray(a.pixel_normalization) ? (a.pixel_normalization as number[]) : [0.5, 0.5];
  const [mean, std] = [Math.fround(norm[0]), Math.fround(norm[1])];
  const srcPath = join(dir, 'input', 'train.src');
  const maxPos = num(a, 'max_positions') ?? Infinity;
  const images = lines(srcPath).map((l, i) => {
    const x = Float32Array.from(l.trim().split(/\s+/), (p) => {
      const v = Number(p);
      if (!Number.isInteger(v) || v < 0 || v > 255) throw new DataError(`${srcPath}:${i + 1}: pixel ${JSON.stringify(p)}, expected an integer 0..255`);
      return (Math.fround(v / 255) - mean) / std;
    });
    return x.length > maxPos ? x.slice(0, maxPos) : x;
  });
  const labPath = join(dir, 'label', 'train.label');
  const labels = lines(labPath).map((l, i) => {
    const v = Number(l.trim());
    if (!Number.isInteger(v) || v < 0) throw new DataError(`${labPath}:${i + 1}: label ${JSON.stringify(l.trim())}, expected a class index >= 0`);
    return v;
  });
  if (labels.length !== images.length) throw new DataError(`${labPath}: ${labels.length} labels for ${images.length} images in ${srcPath}`);
  const L = images[0]?.length ?? 0;
  if (images.some((x) => x.length !== L)) throw new DataError(`${srcPath}: images of different lengths (expected all ${L} pixels)`);
  return fixed(base, {
    sizes: { sizes: images.map((x) => x.length) },
    collate(ids): ValueBatch {
      const B = ids.length;
      const x = new Float32Array(B * L);
      ids.forEach((i, r) => x.set(images[i], r * L));
      return { kind: 'values', B, L, ids: Int32Array.from(ids), srcValues: x, srcLengths: new Int32Array(B).fill(L), labels: Int32Array.from(ids, (i) => labels[i]), ntokens: B * L };
    },
  });
}

function languageModeling(dir: string, a: Record<string, unknown>, base: TrainOrderArgs): FairseqTrainData {
  if (a.sample_break_mode !== 'complete') throw new ConfigError(`--sample-break-mode ${String(a.sample_break_mode)}: training continuation supports the Mega LM's complete mode`);
  const C = num(a, 'decoder_chunk_size');
  if (!C || C <= 0) throw new ConfigError('--decoder-chunk-size: training continuation needs the Mega LM chunk size (> 0)');
  const sents = readSentences(join(dir, 'train'));
  const stream = new Int32Array(sents.reduce((s, t) => s + t.length, 0));
  let off = 0;
  for (const t of sents) {
    stream.set(t, off);
    off += t.length;
  }
  const sentSizes = sents.map((t) => t.length);
  const mult = [num(a, 'variant_block_multiple_min') ?? 1, num(a, 'variant_block_multiple_max') ?? 1];
  // fairseq's size limit: min(tokens_per_sample, max_target_positions, max_tokens)
  const limit = Math.min(num(a, 'tokens_per_sample') ?? Infinity, num(a, 'max_target_positions') ?? Infinity, num(a, 'max_tokens') ?? Infinity);
  return {
    order: { ...base, max_positions: limit },
    epoch(e: number): FairseqEpochData {
      const blocks = megaLmTrainBlocks(sentSizes, C, mult[0], mult[1], base.seed, e);
      return {
        sizes: { sizes: blocks.map((b) => b.end - b.start) },
        collate(ids): TokenBatch {
          const tgt = ids.map((i) => stream.slice(blocks[i].start, blocks[i].end));
          const src = ids.map((i) => {
            const { start, end } = blocks[i];
            return start === 0 ? Int32Array.from([EOS, ...stream.subarray(0, end - 1)]) : stream.slice(start - 1, end - 1);
          });
          const s = padRows(src, false), t = padRows(tgt, false);
          return {
            kind: 'tokens', B: ids.length, L: s.L, ids: Int32Array.from(ids), srcTokens: s.data, srcLengths: Int32Array.from(src, (r) => r.length),
            labels: new Int32Array(ids.length).fill(-1), target: t.data, T: t.L, ntokens: tgt.reduce((n, r) => n + r.length, 0),
          };
        },
      };
    },
  };
}

function translation(dir: string, a: Record<string, unknown>, base: TrainOrderArgs): FairseqTrainData {
  const s = String(a.source_lang ?? ''), t = String(a.target_lang ?? '');
  if (!s || !t) throw new ConfigError('translation: --source-lang / --target-lang missing (expected the language pair, e.g. -s en -t de)');
  const src = readSentences(join(dir, `train.${s}-${t}.${s}`));
  const tgt = readSentences(join(dir, `train.${s}-${t}.${t}`));
  if (src.length !== tgt.length) throw new DataError(`${dir}: train.${s}-${t}.${s} has ${src.length} sentences, train.${s}-${t}.${t} ${tgt.length}`);
  const leftSrc = flag(a.left_pad_source, true), leftTgt = flag(a.left_pad_target, false);
  const maxPos: [number, number] = [num(a, 'max_source_positions') ?? Infinity, num(a, 'max_target_positions') ?? Infinity];
  const mt = num(a, 'max_tokens');
  if (mt !== undefined) [maxPos[0], maxPos[1]] = [Math.min(maxPos[0], mt), Math.min(maxPos[1], mt)];
  return fixed({ ...base, max_positions: maxPos }, {
    sizes: { sizes: src.map((x) => x.length), tgtSizes: tgt.map((x) => x.length) },
    collate(ids0): TokenBatch {
      // rows by descending source length (stable)
      const ids = [...ids0].sort((p, q) => src[q].length - src[p].length);
      const ps = padRows(ids.map((i) => src[i]), leftSrc);
      const targets = ids.map((i) => tgt[i]);
      const prev = targets.map((r) => Int32Array.from([EOS, ...r.subarray(0, r.length - 1)]));
      const pt = padRows(targets, leftTgt), pp = padRows(prev, leftTgt);
      return {
        kind: 'tokens', B: ids.length, L: ps.L, ids: Int32Array.from(ids), srcTokens: ps.data, srcLengths: Int32Array.from(ids, (i) => src[i].length),
        labels: new Int32Array(ids.length).fill(-1), prevOutputTokens: pp.data, target: pt.data, T: pt.L, ntokens: targets.reduce((n, r) => n + r.length, 0),
      };
    },
  });
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
