/**
 * Byte-level language modelling (docs/MEGA.md §8.3, §9.1 `cross_entropy`). `--data FILE` (any text; the
 * last `--valid-fraction` of the stream is the validation split) or `--data DIR` with `train.txt`,
 * `valid.txt` (or `val`/`dev`), `test.txt`. Each line's bytes (`b ↦ b + 4`) are followed by `</s>`;
 * the stream is cut into blocks of `--tokens-per-sample`, input `[</s>, t0, …]`, target the block.
 * Loss: summed NLL of the non-pad targets (`cross_entropy`), or for a model with an adaptive
 * softmax its `adaptive_loss` (the default there; `--criterion cross_entropy` scores the full
 * log-probabilities instead); sample size = target tokens; reported in base 2 (bits per byte)
 * with perplexity `2^loss`.
 */
import { DataError } from '../../data/errors.js';
import { readBytes } from '../../data/files.js';
import { bytesToLmStream, makeLmBlocks, readLmText } from '../../data/lmtext.js';
import { BYTE_VOCAB_SIZE, PAD } from '../../data/vocab.js';
import type { LmCriterion, MegaLanguageModel } from '../../mega/models/lm.js';
import { fromStorage } from '../../tensor/tensor.js';
import { maxInputLength } from '../arch.js';
import { ConfigError } from '../errors.js';
import { dataPath, dataset, findSplitFile, ids, isDir } from './common.js';
import { loadFairseqLayout } from './fairseq-layout.js';
import type { Split, TaskArgs, TaskData, TrainTask } from './types.js';

/** The LM criterion named by `--criterion` (fairseq names); undefined = the model's default. */
export function lmCriterion(v: unknown): LmCriterion | undefined {
  if (v === undefined || v === null) return undefined;
  if (v === 'cross_entropy' || v === 'adaptive_loss') return v;
  throw new ConfigError(`--criterion ${String(v)}: the language-modelling task takes cross_entropy or adaptive_loss`);
}

/** The language-modelling task. */
export const lmTask: TrainTask = {
  name: 'lm',
  classification: false,
  load(args: TaskArgs, splits: readonly Split[], modelArgs): TaskData {
    const fairseq = loadFairseqLayout('lm', args, splits, modelArgs);
    if (fairseq) return fairseq;
    const block = args.tokens_per_sample as number;
    const maxLen = maxInputLength('mega_lm', modelArgs).source;
    if (block > maxLen) {
      throw new ConfigError(
        `--tokens-per-sample ${block} is longer than the model allows (max_target_positions ${maxLen} without chunking); lower it or raise --max-positions`,
      );
    }
    const path = dataPath(args, 'lm', 'a text file, or a folder with train.txt, valid.txt, test.txt');
    const out: TaskData['splits'] = {};
    if (isDir(path)) {
      for (const s of splits) {
        const f = findSplitFile(path, s, ['.txt', '.raw', ''])!;
        const stream = bytesToLmStream(readBytes(f));
        if (stream.length === 0) throw new DataError(`${f}: empty file (expected text)`);
        out[s] = dataset(makeLmBlocks(stream, block), f);
      }
    } else {
      const d = readLmText(path, { blockSize: block, validFraction: args.valid_fraction as number });
      for (const s of splits) {
        if (s === 'test') throw new DataError(`${path}: a single text file has no test split (use a folder with train.txt, valid.txt, test.txt)`);
        out[s] = dataset(s === 'train' ? d.train : d.valid, `${path} (${s})`);
      }
    }
    return { splits: out, taskInfo: { dictionary_size: BYTE_VOCAB_SIZE, pad: PAD }, source: path };
  },
  forward(model, batch, args) {
    if (batch.kind !== 'tokens' || !batch.target || batch.T === undefined) throw new DataError('lm batch without targets');
    const m = model as MegaLanguageModel;
    const loss = m.criterionLoss(ids(batch.srcTokens, batch.B, batch.L), fromStorage(batch.target, [batch.B, batch.T]), lmCriterion(args.criterion));
    return { loss, sampleSize: batch.ntokens, nSentences: batch.B, ntokens: batch.ntokens };
  },
};
