/**
 * The release's evaluation numbers from a fairseq checkpoint and its data folder:
 *
 * - `validate` (fairseq_cli.train.validate; every task but the Mega LM): the split in batches of
 *   `--max-sentences-valid` / `--max-tokens-valid`, `lra_cross_entropy` (loss, accuracy) or
 *   `label_smoothed_cross_entropy` (loss, nll_loss, ppl); losses in base 2.
 * - `validate_mega_lm`: `--valid-block` blocks of whole sentences, each fed `decoder_chunk_size`
 *   columns at a time carrying the incremental state (loss, ppl).
 * - `eval_lm` (fairseq-eval-lm, `--sample-break-mode none`, `--valid-block size:100000000` by
 *   default): the split as blocks scored in one forward pass each.
 * - `eval_mega_lm` (`--test-chunk-size T --chunk-nums K`): the model's chunk size set to T, each
 *   block fed T·K tokens at a time carrying the incremental state.
 *
 * The batches are fairseq's: the task's order for the split (lra: numpy's seeded permutation;
 * translation: seeded permutation, then stable sorts by target and source length), cut by
 * `--max-sentences-valid` / `--max-tokens-valid` and `--required-batch-size-multiple`. The translation task rebuilt from stored args
 * pads sources on the right (the stored `left_pad_source` is a boolean that fairseq's `eval_bool`
 * reads as False); the encoder masks padding either way.
 */
import { readFileSync } from 'node:fs';
import { noGrad } from '../autograd/engine.js';
import type { TokenExample, ValueExample } from '../data/batch.js';
import { DataError } from '../data/errors.js';
import { trainBatches } from '../data/fairseq/order.js';
import { PAD, readLm, readLraImage, readLraText, readTranslation, tokenBlocks, validBlockSize, type LmBlock } from '../data/fairseq/index.js';
import { CheckpointError } from '../io/errors.js';
import { decodeFairseqCheckpoint } from '../io/pt.js';
import { IncrementalState } from '../mega/incremental.js';
import { lmCrossEntropy, type MegaLanguageModel } from '../mega/models/lm.js';
import { lraCrossEntropy, type LRAModel } from '../mega/models/lra.js';
import { labelSmoothedCrossEntropy, type MegaModel } from '../mega/models/nmt.js';
import type { FloatDType } from '../tensor/dtype.js';
import { argmax } from '../tensor/kernels.js';
import { fromStorage, type Tensor } from '../tensor/tensor.js';
import { ConfigError } from './errors.js';
import { importFairseq, isZip, type ImportedModel } from './fairseq-import.js';
import { checkImageChunk } from './tasks/fairseq-layout.js';

/** fairseq task names of the release and the mega-ts names they correspond to. */
export const FAIRSEQ_TASKS = ['lra-text', 'lra-image', 'language_modeling', 'translation'] as const;
/** A fairseq task name. */
export type FairseqTask = (typeof FAIRSEQ_TASKS)[number];

/** A fairseq checkpoint: its model (imported) and its stored args. */
export interface FairseqModel {
  imp: ImportedModel;
  /** The stored argparse namespace (with any overrides applied). */
  args: Record<string, unknown>;
  /** The file. */
  path: string;
}

/**
 * Reads a fairseq checkpoint and builds its model; `overrides` replace stored args before the
 * model is built (fairseq's `--model-overrides`).
 * @throws CheckpointError / ConfigError for a missing, corrupt or unsupported file
 */
export function loadFairseqModel(path: string, overrides: Record<string, unknown> = {}, dtype: FloatDType = 'f32'): FairseqModel {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CheckpointError(code === 'ENOENT' ? `${path}: no such file` : `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  if (!isZip(bytes)) throw new CheckpointError(`${path}: not a fairseq checkpoint (expected a torch.save zip file, "PK\\x03\\x04")`);
  const ck = decodeFairseqCheckpoint(bytes, path);
  const args = { ...ck.args, ...overrides };
  return { imp: importFairseq({ ...ck, args }, { dtype, label: path }), args, path };
}

/** The fairseq task of stored args. @throws ConfigError for another task */
export function fairseqTaskOf(args: Record<string, unknown>, label: string): FairseqTask {
  const t = args.task;
  if (typeof t === 'string' && (FAIRSEQ_TASKS as readonly string[]).includes(t)) return t as FairseqTask;
  throw new ConfigError(`${label}: args.task = ${JSON.stringify(t)} (expected one of ${FAIRSEQ_TASKS.join(', ')})`);
}

/** Numbers of one evaluation, under fairseq's names (losses in base 2). */
export interface FairseqEvalResult {
  loss: number;
  accuracy?: number;
  nll_loss?: number;
  ppl?: number;
  /** Examples (LRA / translation) or blocks (LM). */
  nsentences: number;
  /** Tokens scored (LM / translation: non-pad targets; LRA: input tokens). */
  ntokens: number;
  /** Batches (or LM pieces) run. */
  batches: number;
}

const num = (a: Record<string, unknown>, k: string, d: number): number => (typeof a[k] === 'number' ? (a[k] as number) : d);
const LN2 = Math.LN2;

function padRight(rows: readonly Int32Array[], pad: number): { data: Int32Array; L: number } {
  const L = Math.max(...rows.map((r) => r.length));
  const data = new Int32Array(rows.length * L).fill(pad);
  rows.forEach((r, b) => data.set(r, b * L));
  return { data, L };
}

/** fairseq's validation batches: the task's order for the split (seeded as in training), cut by the valid limits. */
export function validBatches(
  args: Record<string, unknown>,
  task: 'lra-text' | 'lra-image' | 'translation',
  sizes: ArrayLike<number>,
  tgtSizes?: ArrayLike<number>,
): number[][] {
  const ms = args.max_sentences_valid ?? args.max_sentences ?? args.batch_size_valid ?? args.batch_size;
  const mt = args.max_tokens_valid ?? args.max_tokens;
  return trainBatches(
    {
      task,
      seed: num(args, 'seed', 1),
      max_sentences: typeof ms === 'number' ? ms : null,
      max_tokens: typeof mt === 'number' ? mt : null,
      required_batch_size_multiple: num(args, 'required_batch_size_multiple', 8),
    },
    { sizes, tgtSizes },
  );
}

function checkDictSize(imp: ImportedModel, size: number, what: string, label: string): void {
  const V = imp.spec.taskInfo.dictionary_size;
  if (typeof V === 'number' && V !== size) {
    throw new DataError(`${what}: dictionary of ${size} entries, but ${label} was trained with ${V} (its embedding has ${V} rows)`);
  }
}

function evalLra(fm: FairseqModel, data: string, split: string): FairseqEvalResult {
  const a = fm.args,
    model = fm.imp.model as LRAModel;
  const numClasses = num(a, 'sentence_class_num', 2);
  const maxPositions = num(a, 'max_positions', Infinity);
  let examples: (TokenExample | ValueExample)[];
  if (a.task === 'lra-image') {
    const norm = Array.isArray(a.pixel_normalization) ? (a.pixel_normalization as number[]) : [0.5, 0.5];
    examples = readLraImage(data, split, { mean: norm[0]!, std: norm[1]!, maxPositions, numClasses });
    checkImageChunk(examples[0] && 'values' in examples[0] ? examples[0].values.length : 0, a.chunk_size, `${data}/input/${split}.src`);
  } else {
    const r = readLraText(data, split, { maxPositions, prependCls: a.sen_rep_type === 'cls' });
    checkDictSize(fm.imp, r.dictionary.size, `${data}/src-bin/dict.txt (+ <CLS>)`, fm.path);
    r.examples.forEach((e, i) => {
      if (e.label! >= numClasses)
        throw new DataError(
          `${data}/label-bin/${split}: example ${i} has class ${e.label} (label-bin/dict.txt line ${e.label! + 1}), but ${fm.path} has ${numClasses} classes`,
        );
    });
    examples = r.examples;
  }
  if (examples.length === 0) throw new DataError(`${data}: the ${split} split has no examples`);
  const lenOf = (e: TokenExample | ValueExample): number => ('values' in e ? e.values.length : e.tokens.length);
  const batches = validBatches(a, a.task === 'lra-image' ? 'lra-image' : 'lra-text', examples.map(lenOf));
  let lossSum = 0,
    correct = 0,
    ntokens = 0;
  noGrad(() => {
    for (const ids of batches) {
      const ex = ids.map((i) => examples[i]!);
      const B = ex.length;
      const labels = Int32Array.from(ex, (e) => e.label!);
      const lengths = Int32Array.from(ex, lenOf);
      ntokens += lengths.reduce((s, x) => s + x, 0);
      let logits: Tensor;
      if ('values' in ex[0]!) {
        const L = ex[0].values.length;
        const x = new Float32Array(B * L);
        (ex as ValueExample[]).forEach((e, b) => x.set(e.values, b * L));
        logits = model.forward(fromStorage(x, [B, L]), fromStorage(lengths, [B]));
      } else {
        const te = ex as TokenExample[];
        const p = padRight(
          te.map((e) => e.tokens),
          PAD,
        );
        const second = te[0]!.tokens2
          ? (() => {
              const q = padRight(
                te.map((e) => e.tokens2!),
                PAD,
              );
              return {
                srcTokens: fromStorage(q.data, [B, q.L]),
                srcLengths: fromStorage(
                  Int32Array.from(te, (e) => e.tokens2!.length),
                  [B],
                ),
              };
            })()
          : undefined;
        logits = model.forward(fromStorage(p.data, [B, p.L]), fromStorage(lengths, [B]), second);
      }
      lossSum += lraCrossEntropy(logits, fromStorage(labels, [B])).item();
      const am = argmax(logits, 1).toTypedArray();
      for (let b = 0; b < B; b++) if (am[b] === labels[b]) correct++;
    }
  });
  const n = examples.length;
  return { loss: lossSum / n / LN2, accuracy: (100 * correct) / n, nsentences: n, ntokens, batches: batches.length };
}

function evalTranslation(fm: FairseqModel, data: string, split: string): FairseqEvalResult {
  const a = fm.args,
    model = fm.imp.model as MegaModel;
  const src = String(a.source_lang ?? ''),
    tgt = String(a.target_lang ?? '');
  if (!src || !tgt) throw new ConfigError(`${fm.path}: args.source_lang / target_lang missing (expected the language pair, e.g. en / de)`);
  const r = readTranslation(data, split, src, tgt);
  checkDictSize(fm.imp, r.sourceDictionary.size, `${data}/dict.${src}.txt`, fm.path);
  checkDictSize(fm.imp, r.targetDictionary.size, `${data}/dict.${tgt}.txt`, fm.path);
  const batches = validBatches(
    a,
    'translation',
    r.examples.map((e) => e.tokens.length),
    r.examples.map((e) => e.target!.length),
  );
  const eps = num(a, 'label_smoothing', 0);
  let loss = 0,
    nll = 0,
    ntokens = 0;
  noGrad(() => {
    for (const ids of batches) {
      const ex = ids.map((i) => r.examples[i]!);
      const B = ex.length;
      const s = padRight(
        ex.map((e) => e.tokens),
        PAD,
      );
      const p = padRight(
        ex.map((e) => e.prevOutputTokens!),
        PAD,
      );
      const t = padRight(
        ex.map((e) => e.target!),
        PAD,
      );
      const { logits } = model.forward(fromStorage(s.data, [B, s.L]), fromStorage(p.data, [B, p.L]));
      const l = labelSmoothedCrossEntropy(logits, fromStorage(t.data, [B, t.L]), eps, PAD);
      loss += l.loss.item();
      nll += l.nllLoss.item();
      for (const e of ex) ntokens += e.target!.length;
    }
  });
  const nllLoss = nll / ntokens / LN2;
  return { loss: loss / ntokens / LN2, nll_loss: nllLoss, ppl: 2 ** nllLoss, nsentences: r.examples.length, ntokens, batches: batches.length };
}

/**
 * Summed −log p of `block` fed in pieces of `piece` columns (incremental state carried), or at once
 * when piece ≥ its length. A model with an adaptive softmax is scored as the reference scores it:
 * `validate` through its criterion (`adaptive_loss`, whose tail pad quirk then applies), the
 * eval scripts through the target log-probabilities (never a `T × V` matrix).
 */
function scoreBlock(model: MegaLanguageModel, block: LmBlock, piece: number, validate: boolean, criterion: unknown): { sum: number; pieces: number } {
  const T = block.target.length;
  const state = piece < T ? new IncrementalState() : null;
  let sum = 0,
    pieces = 0;
  for (let i = 0; i < T; i += piece) {
    const n = Math.min(piece, T - i);
    const src = fromStorage(block.source.slice(i, i + n), [1, n]);
    const tgt = fromStorage(block.target.slice(i, i + n), [1, n]);
    if (!model.adaptive) sum += lmCrossEntropy(model.forward(src, state), tgt, PAD).item();
    else if (validate) sum += model.criterionLoss(src, tgt, criterion === 'cross_entropy' ? 'cross_entropy' : 'adaptive_loss', state).item();
    else {
      const lp = model.targetLogProbs(src, tgt, state).toTypedArray();
      for (let j = 0; j < n; j++) if (block.target[i + j] !== PAD) sum -= lp[j];
    }
    pieces++;
  }
  return { sum, pieces };
}

/** Options of the LM evaluations. */
export interface LmEvalOptions {
  /** `validate` (validate_mega_lm), `eval_lm` or `eval_mega_lm`. */
  mode: 'validate' | 'eval_lm' | 'eval_mega_lm';
  /** `--sample-break-mode` (eval_lm default none; others: the stored one). */
  sampleBreakMode?: 'none' | 'complete';
  /** `--valid-block` (eval_lm default size:100000000; others: the stored one). */
  validBlock?: string;
  /** eval_mega_lm: tokens fed per step = test_chunk_size × chunk_nums. */
  piece?: number;
}

function evalLm(fm: FairseqModel, data: string, split: string, o: LmEvalOptions): FairseqEvalResult {
  const a = fm.args,
    model = fm.imp.model as MegaLanguageModel;
  const { dictionary, data: ds } = readLm(data, split);
  checkDictSize(fm.imp, dictionary.size, `${data}/dict.txt`, fm.path);
  if (ds.length === 0) throw new DataError(`${ds.prefix}.idx: no sentences in the ${split} split`);
  const stored = (k: string, d: string): string => (typeof a[k] === 'string' ? (a[k] as string) : d);
  const mode = o.sampleBreakMode ?? (o.mode === 'eval_lm' ? 'none' : stored('sample_break_mode', 'complete'));
  if (mode !== 'none' && mode !== 'complete') throw new ConfigError(`--sample-break-mode ${mode}: expected none or complete`);
  const vb = o.validBlock ?? (o.mode === 'eval_lm' ? 'size:100000000' : stored('valid_block', 'size:100000000'));
  const blocks = tokenBlocks(ds, validBlockSize(vb, ds), mode);
  const C = num(a, 'decoder_chunk_size', -1);
  const piece = o.mode === 'validate' ? (C > 0 ? C : Infinity) : o.mode === 'eval_mega_lm' ? (o.piece ?? Infinity) : Infinity;
  let sum = 0,
    ntokens = 0,
    pieces = 0;
  noGrad(() => {
    for (const b of blocks) {
      const r = scoreBlock(model, b, piece, o.mode === 'validate', a.criterion);
      sum += r.sum;
      pieces += r.pieces;
      ntokens += b.target.length;
    }
  });
  const loss = sum / ntokens / LN2;
  return { loss, ppl: 2 ** loss, nsentences: blocks.length, ntokens, batches: pieces };
}

/**
 * Evaluates a fairseq checkpoint on a split of a data folder laid out as its task reads it.
 * @throws DataError / ConfigError / CheckpointError for bad data, options or files
 */
export function evaluateFairseq(fm: FairseqModel, data: string, split: string, lm: LmEvalOptions = { mode: 'validate' }): FairseqEvalResult {
  const task = fairseqTaskOf(fm.args, fm.path);
  switch (task) {
    case 'lra-text':
    case 'lra-image':
      return evalLra(fm, data, split);
    case 'translation':
      return evalTranslation(fm, data, split);
    case 'language_modeling':
      return evalLm(fm, data, split, lm);
  }
}
