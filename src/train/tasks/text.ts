/**
 * Byte-level LRA text tasks from TSV folders (`--data DIR` with `train.tsv`, `valid.tsv` (or
 * `val`/`dev`), `test.tsv`):
 * - `text` (IMDB-style classification): `label<TAB>text`;
 * - `retrieval` (AAN-style, dual input): `label<TAB>text1<TAB>text2` (or LRA's 5 columns).
 *
 * Bytes `b ↦ b + 4`, `</s>` appended; vocabulary 260 ids + the `<CLS>` the LRA task appends.
 */
import { readClassificationTsv, readRetrievalTsv } from '../../data/tsv.js';
import { BYTE_VOCAB_SIZE, PAD } from '../../data/vocab.js';
import { DataError } from '../../data/errors.js';
import { maxInputLength } from '../arch.js';
import type { TaskName } from '../args.js';
import { checkLabels, checkLengths, classificationForward, dataPath, dataset, findSplitFile, isDir } from './common.js';
import { loadFairseqLayout } from './fairseq-layout.js';
import type { Split, TaskArgs, TaskData, TrainTask } from './types.js';

function classes(args: TaskArgs, modelDefault: Readonly<Record<string, unknown>>): number {
  return (args.num_classes as number | undefined) ?? (modelDefault.sentence_class_num as number);
}

function makeTextTask(name: TaskName, dual: boolean): TrainTask {
  return {
    name,
    classification: true,
    numClasses: classes,
    load(args: TaskArgs, splits: readonly Split[], modelArgs): TaskData {
      const fairseq = loadFairseqLayout(name, args, splits, modelArgs);
      if (fairseq) return fairseq;
      const numClasses = modelArgs.sentence_class_num as number;
      const layout = dual ? '"label<TAB>text1<TAB>text2"' : '"label<TAB>text"';
      const dir = dataPath(args, name, `a folder with train.tsv, valid.tsv, test.tsv of ${layout} lines`);
      if (!isDir(dir)) throw new DataError(`${dir}: expected a folder with train.tsv, valid.tsv, test.tsv (${layout} lines)`);
      const maxLen = maxInputLength('lra', modelArgs).source;
      const truncate = args.truncate === true;
      const out: TaskData['splits'] = {};
      for (const s of splits) {
        const f = findSplitFile(dir, s, ['.tsv'])!;
        const ex = dual ? readRetrievalTsv(f) : readClassificationTsv(f);
        checkLabels(ex, numClasses, f);
        checkLengths(ex, maxLen, f, truncate);
        if (dual) checkLengths(ex, maxLen, f, truncate, 'tokens2');
        out[s] = dataset(ex, f);
      }
      return { splits: out, taskInfo: { dictionary_size: BYTE_VOCAB_SIZE + 1, pad: PAD }, numClasses, source: dir };
    },
    forward: (model, batch) => classificationForward(model, batch),
  };
}

/** Byte-level text classification (IMDB-style). */
export const textTask = makeTextTask('text', false);
/** Byte-level document-pair retrieval (AAN-style). */
export const retrievalTask = makeTextTask('retrieval', true);
