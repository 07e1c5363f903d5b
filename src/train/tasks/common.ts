/**
 * Helpers shared by the tasks: locating split files, length checks against the model's limit,
 * seeded hold-out splits, and the classification forward pass (`lra_cross_entropy`, docs/MEGA.md §9.1).
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Batch, Dataset, Example, TokenExample } from '../../data/batch.js';
import { ArrayDataset } from '../../data/batch.js';
import { DataError } from '../../data/errors.js';
import { deriveSeed, Rng } from '../../data/rng.js';
import { lraCrossEntropy, type LRAModel } from '../../mega/models/lra.js';
import { SCRawModel } from '../../mega/models/speech.js';
import type { Module } from '../../nn/module.js';
import { noGrad } from '../../autograd/engine.js';
import * as K from '../../tensor/kernels.js';
import { fromStorage, type Tensor } from '../../tensor/tensor.js';
import { ConfigError } from '../errors.js';
import type { Split, StepOutput, TaskArgs } from './types.js';

/** The `--data` option as a path, or a DataError naming the task that needs it. */
export function dataPath(args: TaskArgs, task: string, what: string): string {
  const p = args.data;
  if (typeof p !== 'string' || p === '') throw new ConfigError(`--task ${task} needs --data (${what})`);
  if (!existsSync(p)) throw new DataError(`${p}: no such file or folder (--data)`);
  return p;
}

/** Whether a path is a folder. */
export function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Alternative file names of each split (first existing wins; `.gz` variants are tried too). */
export const SPLIT_NAMES: Readonly<Record<Split, readonly string[]>> = {
  train: ['train'],
  valid: ['valid', 'val', 'dev'],
  test: ['test'],
};

/**
 * The file of `split` in folder `dir`: `<prefix><name><suffix>` (and `.gz`) for the split's names.
 * @param required throw when absent (default true)
 * @throws DataError listing the names tried
 */
export function findSplitFile(dir: string, split: Split, suffixes: readonly string[], prefixes: readonly string[] = [''], required = true): string | undefined {
  const tried: string[] = [];
  for (const pre of prefixes) {
    for (const name of SPLIT_NAMES[split]) {
      for (const suf of suffixes) {
        for (const gz of ['', '.gz']) {
          const f = join(dir, `${pre}${name}${suf}${gz}`);
          tried.push(`${pre}${name}${suf}${gz}`);
          if (existsSync(f)) return f;
        }
      }
    }
  }
  if (required) throw new DataError(`${dir}: no ${split} file (expected one of ${tried.filter((t) => !t.endsWith('.gz')).join(', ')})`);
  return undefined;
}

/**
 * Check (or, with `truncate`, enforce) the model's input-length limit on token / value examples.
 * @throws DataError naming the first example that is too long
 */
export function checkLengths<E extends Example>(
  examples: E[],
  maxLen: number,
  name: string,
  truncate: boolean,
  field: 'tokens' | 'tokens2' | 'values' | 'target' = 'tokens',
): E[] {
  if (!Number.isFinite(maxLen)) return examples;
  for (let i = 0; i < examples.length; i++) {
    const e = examples[i] as unknown as Record<string, Int32Array | Float32Array | undefined>;
    const seq = e[field];
    if (!seq || seq.length <= maxLen) continue;
    if (!truncate) {
      throw new DataError(
        `${name}: example ${i + 1} has ${seq.length} ${field === 'values' ? 'values' : 'tokens'}, ` +
          `longer than the model allows (${maxLen}); raise --max-positions or pass --truncate`,
      );
    }
    e[field] = seq.slice(0, maxLen);
  }
  return examples;
}

/** A dataset over examples (DataError naming `name` when empty). */
export function dataset<E extends Example>(examples: E[], name: string): Dataset<E> {
  return new ArrayDataset(examples, name);
}

/**
 * Split examples into (kept, held out) with a seeded permutation; the held-out part has
 * `round(n·fraction)` examples (at least 1, at most n − 1).
 * @throws DataError when there are fewer than 2 examples
 */
export function holdOut<E>(examples: readonly E[], fraction: number, seed: number, name: string): [E[], E[]] {
  const n = examples.length;
  if (n < 2) throw new DataError(`${name}: ${n} example(s), too few to hold out a validation split (expected >= 2)`);
  const k = Math.min(n - 1, Math.max(1, Math.round(n * fraction)));
  const perm = new Rng(deriveSeed(seed, 0x5eed)).permutation(n);
  const held = new Set(Array.from(perm.subarray(0, k)));
  const a: E[] = [];
  const b: E[] = [];
  examples.forEach((e, i) => (held.has(i) ? b : a).push(e));
  return [a, b];
}

/** Check labels against the class count. @throws DataError */
export function checkLabels(examples: readonly Example[], numClasses: number, name: string): void {
  for (let i = 0; i < examples.length; i++) {
    const l = examples[i]!.label;
    if (l === undefined || !Number.isInteger(l) || l < 0 || l >= numClasses) {
      throw new DataError(`${name}: example ${i + 1} has label ${String(l)}, out of range (expected 0..${numClasses - 1}; set --num-classes)`);
    }
  }
}

/** i32 `B × L` tensor over a batch array. */
export function ids(data: Int32Array, B: number, L: number): Tensor {
  return fromStorage(data, [B, L]);
}

/** Argmax matches of `B × C` logits against labels. */
export function countCorrect(logits: Tensor, labels: Int32Array): number {
  return noGrad(() => {
    const am = K.argmax(logits, 1).toTypedArray();
    let c = 0;
    for (let i = 0; i < labels.length; i++) if (am[i] === labels[i]) c++;
    return c;
  });
}

/**
 * `lra_cross_entropy` with `--sentence-avg`: summed NLL of the batch, sample size = sentences.
 * Works for LRA text/image models (with the second document of retrieval) and the speech model.
 */
export function classificationForward(model: Module, batch: Batch): StepOutput {
  const B = batch.B;
  const lengths = fromStorage(batch.srcLengths, [B]);
  let logits: Tensor;
  if (batch.kind === 'values') {
    const x = fromStorage(batch.srcValues, [B, batch.L]);
    logits = model instanceof SCRawModel ? model.forward(x) : (model as LRAModel).forward(x, lengths);
  } else {
    const second =
      batch.srcTokens2 && batch.srcLengths2 && batch.L2 !== undefined
        ? { srcTokens: ids(batch.srcTokens2, B, batch.L2), srcLengths: fromStorage(batch.srcLengths2, [B]) }
        : undefined;
    logits = (model as LRAModel).forward(ids(batch.srcTokens, B, batch.L), lengths, second);
  }
  const labels = batch.labels;
  const loss = lraCrossEntropy(logits, fromStorage(labels, [B]));
  return { loss, sampleSize: B, nSentences: B, ntokens: batch.ntokens, nCorrect: countCorrect(logits, labels) };
}

/** Token examples as a typed list (for readers returning `TokenExample[]`). */
export type Tokens = TokenExample[];
