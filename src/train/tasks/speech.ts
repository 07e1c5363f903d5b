/**
 * Raw-waveform keyword classification (Speech Commands, docs/MEGA.md §8.2). `--data DIR` is either a
 * Speech-Commands folder (`DIR/<label>/*.wav`, split 70/15/15 per class with the seed) or a folder
 * with `train/`, `valid/` (or `val/`), `test/` sub-folders in that layout. Labels: the 10-word
 * subset of the recipe when all ten folders exist, else every label folder (sorted). Clips are
 * `--max-positions` samples (16 000 by default; shorter ones are dropped, longer ones cut) divided
 * by 2^15 and standardised with the training split's mean and unbiased std.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ValueExample } from '../../data/batch.js';
import { DataError } from '../../data/errors.js';
import { deriveSeed, Rng } from '../../data/rng.js';
import { meanStd, readSpeechCommands, SPEECH_COMMANDS_10, standardize } from '../../data/wav.js';
import { checkLabels, classificationForward, dataPath, dataset, isDir, SPLIT_NAMES } from './common.js';
import type { Split, TaskArgs, TaskData, TrainTask } from './types.js';

function subdir(dir: string, split: Split): string | undefined {
  for (const n of SPLIT_NAMES[split]) if (isDir(join(dir, n))) return join(dir, n);
  return undefined;
}

function labelsOf(root: string): string[] {
  let names: string[];
  try {
    names = readdirSync(root)
      .filter((d) => !d.startsWith('_') && isDir(join(root, d)))
      .sort();
  } catch (e) {
    throw new DataError(`${root}: cannot read folder (${(e as Error).message.split('\n')[0]})`);
  }
  if (SPEECH_COMMANDS_10.every((w) => names.includes(w))) return [...SPEECH_COMMANDS_10];
  if (names.length === 0) throw new DataError(`${root}: no label folders (expected ${root}/<label>/*.wav)`);
  return names;
}

function layout(args: TaskArgs): { dir: string; perSplit: boolean; labels: string[] } {
  const dir = dataPath(args, 'speech', 'a Speech Commands folder <label>/*.wav, or train/ valid/ test/ folders of that layout');
  if (!isDir(dir)) throw new DataError(`${dir}: expected a folder of <label>/*.wav (or train/, valid/, test/ folders of that layout)`);
  const tr = subdir(dir, 'train');
  return tr ? { dir, perSplit: true, labels: labelsOf(tr) } : { dir, perSplit: false, labels: labelsOf(dir) };
}

/** Stratified seeded 70/15/15 split of one folder's clips. */
function stratified(examples: ValueExample[], numClasses: number, seed: number): Record<Split, ValueExample[]> {
  const out: Record<Split, ValueExample[]> = { train: [], valid: [], test: [] };
  for (let c = 0; c < numClasses; c++) {
    const cls = examples.filter((e) => e.label === c);
    const perm = new Rng(deriveSeed(seed, 0x5c, c)).permutation(cls.length);
    const nv = Math.round(cls.length * 0.15),
      nt = Math.round(cls.length * 0.15);
    perm.forEach((j, i) => (i < nv ? out.valid : i < nv + nt ? out.test : out.train).push(cls[j]!));
  }
  return out;
}

/** The speech classification task. */
export const speechTask: TrainTask = {
  name: 'speech',
  classification: true,
  numClasses: (args) => (args.num_classes as number | undefined) ?? layout(args).labels.length,
  load(args: TaskArgs, splits: readonly Split[], modelArgs): TaskData {
    const { dir, perSplit, labels } = layout(args);
    const length = modelArgs.max_positions as number;
    const numClasses = modelArgs.sentence_class_num as number;
    const read = (root: string): ValueExample[] => readSpeechCommands(root, { labels, length }).examples;
    let all: Record<Split, ValueExample[]>;
    if (perSplit) {
      all = { train: read(subdir(dir, 'train')!), valid: [], test: [] };
      for (const s of ['valid', 'test'] as const) {
        if (!splits.includes(s)) continue;
        const d = subdir(dir, s);
        if (!d) throw new DataError(`${dir}: no ${s} folder (expected ${SPLIT_NAMES[s].join(' or ')})`);
        all[s] = read(d);
      }
    } else {
      all = stratified(read(dir), labels.length, args.seed as number);
    }
    if (all.train.length < 2) throw new DataError(`${dir}: ${all.train.length} training clip(s) of >= ${length} samples (expected at least 2)`);
    const { mean, std } = meanStd(all.train);
    const out: TaskData['splits'] = {};
    for (const s of splits) {
      const ex = all[s].map((e) => ({ values: Float32Array.from(e.values), label: e.label }));
      standardize(ex, mean, std);
      checkLabels(ex, numClasses, `${dir} ${s} clips`);
      out[s] = dataset(ex, `${dir} ${s} clips`);
    }
    return { splits: out, taskInfo: null, numClasses, source: dir };
  },
  forward: (model, batch) => classificationForward(model, batch),
};
