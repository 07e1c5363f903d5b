/**
 * Pixel-sequence image classification (LRA image / Pathfinder style, docs/MEGA.md §8.1) from IDX files
 * (`--data DIR` with `train-images-idx3-ubyte` + `train-labels-idx1-ubyte`, the same for `valid`
 * (or `val`) and `test` (or MNIST's `t10k`); `.gz` accepted). Without a validation pair,
 * `--valid-fraction` of the training images (seeded) are held out. Pixels become
 * `(p/255 − mean)/std` (`--pixel-mean`, `--pixel-std`), flattened row-major.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ValueExample } from '../../data/batch.js';
import { DataError } from '../../data/errors.js';
import { loadIdxDataset } from '../../data/idx.js';
import { maxInputLength } from '../arch.js';
import { ConfigError } from '../errors.js';
import { checkLabels, checkLengths, classificationForward, dataPath, dataset, holdOut, isDir } from './common.js';
import { loadFairseqLayout } from './fairseq-layout.js';
import type { Split, TaskArgs, TaskData, TrainTask } from './types.js';

const NAMES: Readonly<Record<Split, readonly string[]>> = { train: ['train'], valid: ['valid', 'val'], test: ['test', 't10k'] };

function findPair(dir: string, split: Split): { images: string; labels: string } | undefined {
  for (const n of NAMES[split]) {
    for (const gz of ['', '.gz']) {
      const images = join(dir, `${n}-images-idx3-ubyte${gz}`);
      const labels = join(dir, `${n}-labels-idx1-ubyte${gz}`);
      if (existsSync(images) && existsSync(labels)) return { images, labels };
    }
  }
  return undefined;
}

function loadPair(dir: string, split: Split, args: TaskArgs, numClasses: number): ValueExample[] {
  const p = findPair(dir, split);
  if (!p)
    throw new DataError(`${dir}: no ${split} images (expected ${NAMES[split].map((n) => `${n}-images-idx3-ubyte + ${n}-labels-idx1-ubyte`).join(' or ')})`);
  const ds = loadIdxDataset(p.images, p.labels, { mean: args.pixel_mean as number, std: args.pixel_std as number, numClasses });
  return ds.examples;
}

/** The image classification task. */
export const imageTask: TrainTask = {
  name: 'image',
  classification: true,
  numClasses: (args, modelDefault) => (args.num_classes as number | undefined) ?? (modelDefault.sentence_class_num as number),
  load(args: TaskArgs, splits: readonly Split[], modelArgs): TaskData {
    const fairseq = loadFairseqLayout('image', args, splits, modelArgs);
    if (fairseq) return fairseq;
    const numClasses = modelArgs.sentence_class_num as number;
    const dir = dataPath(args, 'image', 'a folder of IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, ...');
    if (!isDir(dir)) throw new DataError(`${dir}: expected a folder of IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, ...)`);
    const maxLen = maxInputLength('lra', modelArgs).source;
    const C = modelArgs.chunk_size as number;
    const out: TaskData['splits'] = {};
    let heldOut: [ValueExample[], ValueExample[]] | undefined;
    const fromTrain = (): [ValueExample[], ValueExample[]] => {
      heldOut ??= findPair(dir, 'valid')
        ? [loadPair(dir, 'train', args, numClasses), []]
        : holdOut(loadPair(dir, 'train', args, numClasses), args.valid_fraction as number, args.seed as number, `${dir} train images`);
      return heldOut;
    };
    for (const s of splits) {
      let ex: ValueExample[];
      if (s === 'train') ex = fromTrain()[0];
      else if (s === 'valid' && !findPair(dir, 'valid')) ex = fromTrain()[1];
      else ex = loadPair(dir, s, args, numClasses);
      checkLabels(ex, numClasses, `${dir} ${s} images`);
      checkLengths(ex, maxLen, `${dir} ${s} images`, args.truncate === true, 'values');
      const L = ex[0]?.values.length ?? 0;
      if (C > 0 && L > C && L % C !== 0) {
        throw new ConfigError(`--chunk-size ${C}: images of ${L} pixels are not a multiple of it (image inputs cannot be padded; the reference rejects this)`);
      }
      out[s] = dataset(ex, `${dir} ${s} images`);
    }
    return { splits: out, taskInfo: null, numClasses, source: dir };
  },
  forward: (model, batch) => classificationForward(model, batch),
};
