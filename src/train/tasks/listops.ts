/**
 * ListOps (LRA): the LRA TSV files (`--data DIR` with `basic_{train,val,test}.tsv` or
 * `{train,valid,test}.tsv`), or — without `--data` — expressions generated with the seeded LRA
 * algorithm (`--listops-*` sizes and shape limits). Tokens use the ListOps symbol dictionary with
 * `</s>` appended (fairseq's binarizer); the model's vocabulary also counts the `<CLS>` symbol the
 * LRA task appends. 10 classes.
 */
import type { Example } from '../../data/batch.js';
import { DataError } from '../../data/errors.js';
import { deriveSeed } from '../../data/rng.js';
import { encodeListOps, generateListOps, listOpsDictionary, readListOpsTsv, type ListOpsExample } from '../../data/listops.js';
import { maxInputLength } from '../arch.js';
import { checkLabels, checkLengths, classificationForward, dataPath, dataset, findSplitFile, isDir } from './common.js';
import { loadFairseqLayout } from './fairseq-layout.js';
import type { Split, TaskArgs, TaskData, TrainTask } from './types.js';

/** Number of ListOps classes (digits 0–9). */
export const LISTOPS_CLASSES = 10;

/** The generated splits of `args` (deterministic in the seed and the `--listops-*` options). */
export function generatedListOps(args: TaskArgs): Record<Split, ListOpsExample[]> {
  const n = { train: args.listops_train as number, valid: args.listops_valid as number, test: (args.listops_test as number) ?? 0 };
  const all = generateListOps(n.train + n.valid + n.test, deriveSeed(args.seed as number, 0x115705), {
    maxDepth: args.listops_max_depth as number,
    maxArgs: args.listops_max_args as number,
    minLength: args.listops_min_length as number,
    maxLength: args.listops_max_length as number,
  });
  return { train: all.slice(0, n.train), valid: all.slice(n.train, n.train + n.valid), test: all.slice(n.train + n.valid) };
}

/** The ListOps task. */
export const listopsTask: TrainTask = {
  name: 'listops',
  classification: true,
  numClasses: () => LISTOPS_CLASSES,
  load(args: TaskArgs, splits: readonly Split[], modelArgs): TaskData {
    const fairseq = loadFairseqLayout('listops', args, splits, modelArgs);
    if (fairseq) return fairseq;
    const dict = listOpsDictionary();
    const maxLen = maxInputLength('lra', modelArgs).source;
    const truncate = args.truncate === true;
    const out: TaskData['splits'] = {};
    let source: string;
    if (args.data === undefined) {
      const gen = generatedListOps(args);
      for (const s of splits) {
        if (gen[s].length === 0) throw new DataError(`generated ListOps ${s} split: no examples (set --listops-${s} >= 1)`);
        const ex = encodeListOps(gen[s], dict);
        out[s] = dataset(checkLengths(ex, maxLen, `generated ListOps ${s}`, truncate), `generated ListOps ${s}`);
      }
      source =
        `generated ListOps (seed ${String(args.seed)}, ${String(args.listops_train)}/${String(args.listops_valid)}/${String(args.listops_test)} ` +
        `examples, depth <= ${String(args.listops_max_depth)}, ${String(args.listops_min_length)}..${String(args.listops_max_length)} tokens)`;
    } else {
      const dir = dataPath(args, 'listops', 'a folder with train.tsv, valid.tsv, test.tsv or the LRA basic_*.tsv files');
      if (!isDir(dir)) throw new DataError(`${dir}: expected a folder with train.tsv/valid.tsv/test.tsv (or LRA basic_train.tsv/basic_val.tsv/basic_test.tsv)`);
      for (const s of splits) {
        const f = findSplitFile(dir, s, ['.tsv'], ['basic_', ''])!;
        const ex: Example[] = encodeListOps(readListOpsTsv(f), dict);
        checkLabels(ex, LISTOPS_CLASSES, f);
        out[s] = dataset(checkLengths(ex, maxLen, f, truncate), f);
      }
      source = dir;
    }
    return { splits: out, taskInfo: { dictionary_size: dict.size + 1, pad: dict.pad }, numClasses: LISTOPS_CLASSES, source };
  },
  forward: (model, batch) => classificationForward(model, batch),
};
