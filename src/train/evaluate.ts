/**
 * Evaluation of a model on a split: the loss (base 2, as fairseq logs it), accuracy, perplexity or
 * bits per byte, summed over ranks in a data-parallel job; and `mega eval`'s checkpoint evaluation.
 */
import { noGrad } from '../autograd/engine.js';
import { Batcher, type Dataset, type Example } from '../data/batch.js';
import { CheckpointError } from '../io/errors.js';
import type { Module } from '../nn/module.js';
import { setNumThreads } from '../tensor/backends/cpu/pool.js';
import { resolveTrainArgs, type TrainArgs } from './args.js';
import { buildFromModelArgs } from './arch.js';
import { loadCheckpoint, type LoadedCheckpoint } from './checkpoint.js';
import type { TrainDist } from './distributed.js';
import { ConfigError } from './errors.js';
import { getTask, type Split, type TrainTask } from './tasks/index.js';

const LN2 = Math.LN2;

/** Metrics of an evaluation pass. */
export interface EvalMetrics {
  /** Mean loss in base 2 (per sentence for classification, per target token otherwise). */
  loss: number;
  /** Mean plain NLL in base 2 (translation; equal to `loss` elsewhere). */
  nll_loss: number;
  /** Accuracy in [0, 1] (classification). */
  accuracy?: number;
  /** Perplexity `2^nll_loss` (lm, translation). */
  ppl?: number;
  /** Bits per byte (byte-level lm; = `nll_loss`). */
  bpb?: number;
  /** Examples evaluated. */
  examples: number;
  /** Tokens (targets) evaluated. */
  tokens: number;
}

/** Evaluate a model on a dataset (eval mode, no gradients; restores the previous mode). */
export function evaluate(
  model: Module,
  task: TrainTask,
  data: Dataset<Example>,
  args: Readonly<Record<string, unknown>>,
  batchSize: number,
  dist: TrainDist | null = null,
): EvalMetrics {
  const wasTraining = model.training;
  model.eval();
  let loss = 0,
    nll = 0,
    sample = 0,
    correct = 0,
    sentences = 0,
    tokens = 0;
  try {
    noGrad(() => {
      const b = new Batcher(data, { batchSize, shuffle: false });
      for (const whole of b.remaining()) {
        const batch = dist ? dist.shard(whole) : whole; // data parallel: this rank's slice
        if (batch.B === 0) continue;
        const o = task.forward(model, batch, args);
        const l = o.loss.item();
        loss += l;
        nll += o.nll ?? l;
        sample += o.sampleSize;
        sentences += o.nSentences;
        tokens += o.ntokens;
        correct += o.nCorrect ?? 0;
      }
    });
  } finally {
    model.train(wasTraining);
  }
  if (dist) [loss, nll, sample, correct, sentences, tokens] = dist.sum([loss, nll, sample, correct, sentences, tokens]);
  const m: EvalMetrics = { loss: loss / sample / LN2, nll_loss: nll / sample / LN2, examples: sentences, tokens };
  if (task.classification) m.accuracy = correct / sentences;
  else {
    m.ppl = 2 ** m.nll_loss;
    if (task.name === 'lm') m.bpb = m.nll_loss;
  }
  return m;
}

/** Fraction of `valid` whose label is the most frequent label of `train` (null without labels). */
export function majorityBaseline(train: Dataset<Example>, valid: Dataset<Example>): { label: number; accuracy: number } | null {
  const counts = new Map<number, number>();
  for (let i = 0; i < train.length; i++) {
    const l = train.get(i).label;
    if (l === undefined) return null;
    counts.set(l, (counts.get(l) ?? 0) + 1);
  }
  let best = -1,
    bestN = -1;
  for (const [l, n] of [...counts].sort((a, b) => a[0] - b[0])) if (n > bestN) [best, bestN] = [l, n];
  let hit = 0;
  for (let i = 0; i < valid.length; i++) if (valid.get(i).label === best) hit++;
  return { label: best, accuracy: hit / valid.length };
}

/** `x` in [0, 1] as a percentage with one decimal. */
export function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

/** One-line summary of evaluation metrics. */
export function formatMetrics(m: EvalMetrics): string {
  const parts = [`loss ${m.loss.toFixed(4)}`];
  if (m.nll_loss !== m.loss) parts.push(`nll_loss ${m.nll_loss.toFixed(4)}`);
  if (m.accuracy !== undefined) parts.push(`accuracy ${pct(m.accuracy)}`);
  if (m.ppl !== undefined) parts.push(`ppl ${m.ppl.toFixed(2)}`);
  if (m.bpb !== undefined) parts.push(`bpb ${m.bpb.toFixed(4)}`);
  return parts.join(' | ');
}

/** Load a checkpoint's model for evaluation: rebuild it from the stored settings and load the weights. */
export function loadModelForEval(ckpt: LoadedCheckpoint): Module {
  const taskInfo = ckpt.spec.taskInfo;
  const ti = typeof taskInfo.dictionary_size === 'number' ? { dictionary_size: taskInfo.dictionary_size, pad: taskInfo.pad as number } : null;
  const model = buildFromModelArgs(ckpt.spec.modelArgs, ti);
  try {
    model.loadStateDict(ckpt.tensors);
  } catch (e) {
    throw new CheckpointError(`${ckpt.path}: weights do not fit the model they describe (${(e as Error).message})`);
  }
  return model.eval();
}

/** Options of {@link evaluateCheckpoint}. */
export interface EvalRequest {
  /** Weights file. */
  checkpoint: string;
  /** Split to evaluate. */
  split: Split;
  /** Overrides of the training options (`data`, `batch_size_valid`, `truncate`, `threads`). */
  overrides?: Readonly<Record<string, unknown>>;
}

/** Evaluate a checkpoint on a split of its task's data (or of `overrides.data`). */
export function evaluateCheckpoint(
  req: EvalRequest,
): EvalMetrics & { task: string; arch: string; update: number; split: Split; checkpoint: string; data: string } {
  const ckpt = loadCheckpoint(req.checkpoint);
  // a checkpoint made by import-fairseq stores no training options: the task's defaults fill them
  const defaults: Record<string, unknown> = { ...resolveTrainArgs({ task: ckpt.spec.task }) };
  const args: Record<string, unknown> = { ...defaults, ...ckpt.trainArgs, ...(req.overrides ?? {}) };
  delete args.__user;
  if (typeof args.threads === 'number') setNumThreads(args.threads);
  const task = getTask(ckpt.spec.task as TrainArgs['task']);
  const data = task.load(args, [req.split], ckpt.spec.modelArgs);
  const ti = ckpt.spec.taskInfo;
  if (data.taskInfo && data.taskInfo.dictionary_size !== ti.dictionary_size) {
    throw new ConfigError(
      `${req.checkpoint}: the data's vocabulary (${data.taskInfo.dictionary_size}) differs from the checkpoint's (${String(ti.dictionary_size)})`,
    );
  }
  const model = loadModelForEval(ckpt);
  const bs = (req.overrides?.batch_size_valid as number | undefined) ?? (args.batch_size_valid as number | undefined) ?? (args.batch_size as number);
  const m = evaluate(model, task, data.splits[req.split]!, args, bs);
  return { task: ckpt.spec.task, arch: ckpt.spec.arch, update: ckpt.update, split: req.split, checkpoint: req.checkpoint, data: data.source, ...m };
}
