/**
 * Byte-level translation (docs/MEGA.md §8.4, §9.1 `label_smoothed_cross_entropy`): `--data DIR` with
 * `train.tsv`, `valid.tsv` (or `val`/`dev`), `test.tsv` of `source<TAB>target` lines. Source =
 * bytes + `</s>`, decoder input `[</s>, y…]`, target `[y…, </s>]`; one joined byte vocabulary
 * (260 ids). Loss: label-smoothed (`--label-smoothing`) summed over non-pad targets, sample size =
 * target tokens; the reported perplexity uses the plain NLL.
 */
import { DataError } from '../../data/errors.js';
import { readTranslationTsv } from '../../data/translation.js';
import { BYTE_VOCAB_SIZE, PAD } from '../../data/vocab.js';
import type { MegaModel } from '../../mega/models/nmt.js';
import { fromStorage } from '../../tensor/tensor.js';
import { maxInputLength } from '../arch.js';
import { checkLengths, dataPath, dataset, findSplitFile, ids, isDir } from './common.js';
import { loadFairseqLayout } from './fairseq-layout.js';
import type { Split, TaskArgs, TaskData, TrainTask } from './types.js';

/** The translation task. */
export const translationTask: TrainTask = {
  name: 'translation',
  classification: false,
  load(args: TaskArgs, splits: readonly Split[], modelArgs): TaskData {
    const fairseq = loadFairseqLayout('translation', args, splits, modelArgs);
    if (fairseq) return fairseq;
    const dir = dataPath(args, 'translation', 'a folder with train.tsv, valid.tsv, test.tsv of "source<TAB>target" lines');
    if (!isDir(dir)) throw new DataError(`${dir}: expected a folder with train.tsv, valid.tsv, test.tsv ("source<TAB>target" lines)`);
    const lim = maxInputLength('mega', modelArgs);
    const truncate = args.truncate === true;
    const out: TaskData['splits'] = {};
    for (const s of splits) {
      const f = findSplitFile(dir, s, ['.tsv'])!;
      const ex = readTranslationTsv(f);
      checkLengths(ex, lim.source, `${f} (source)`, truncate);
      if (!truncate) checkLengths(ex, lim.target ?? Infinity, `${f} (target)`, false, 'target');
      else if (Number.isFinite(lim.target)) {
        const T = lim.target!;
        for (const e of ex) {
          if (e.target!.length > T) {
            e.target = e.target!.slice(0, T);
            e.prevOutputTokens = e.prevOutputTokens!.slice(0, T);
          }
        }
      }
      out[s] = dataset(ex, f);
    }
    return { splits: out, taskInfo: { dictionary_size: BYTE_VOCAB_SIZE, pad: PAD }, source: dir };
  },
  forward(model, batch, args) {
    if (batch.kind !== 'tokens' || !batch.target || !batch.prevOutputTokens || batch.T === undefined) throw new DataError('translation batch without targets');
    const m = model as MegaModel;
    const { logits } = m.forward(ids(batch.srcTokens, batch.B, batch.L), ids(batch.prevOutputTokens, batch.B, batch.T));
    const r = m.loss(logits, fromStorage(batch.target, [batch.B, batch.T]), (args.label_smoothing as number) ?? 0);
    return { loss: r.loss, nll: r.nllLoss.item(), sampleSize: batch.ntokens, nSentences: batch.B, ntokens: batch.ntokens };
  },
};
