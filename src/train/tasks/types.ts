/**
 * The task interface of the trainer: how a task loads its splits, what it tells the model builder,
 * and how one batch becomes a summed loss with its sample size (docs/MEGA.md §9.1).
 */
import type { Batch, Dataset, Example } from '../../data/batch.js';
import type { TaskInfo } from '../../mega/models/common.js';
import type { Module } from '../../nn/module.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { TaskName } from '../args.js';

/** A data split. */
export type Split = 'train' | 'valid' | 'test';

/** The splits a task loaded, plus the facts the model needs. */
export interface TaskData {
  /** Datasets by split (those requested). */
  splits: Partial<Record<Split, Dataset<Example>>>;
  /** Dictionary facts for the model (null for real-valued inputs). */
  taskInfo: TaskInfo | null;
  /** Number of classes (classification tasks). */
  numClasses?: number;
  /** Human-readable description of where the data came from. */
  source: string;
}

/** Result of one forward pass on a batch. */
export interface StepOutput {
  /** Summed loss (scalar; differentiable in training). */
  loss: Tensor;
  /** Denominator of the update: sentences (classification) or non-pad target tokens. */
  sampleSize: number;
  /** Sentences in the batch. */
  nSentences: number;
  /** Tokens processed (for tokens/s). */
  ntokens: number;
  /** Summed plain NLL (nats) when the loss is label-smoothed (otherwise the loss itself is the NLL). */
  nll?: number;
  /** Correct argmax predictions (classification). */
  nCorrect?: number;
}

/** Options a task reads when loading (the resolved training options). */
export type TaskArgs = Readonly<Record<string, unknown>>;

/** A task. */
export interface TrainTask {
  /** Name. */
  readonly name: TaskName;
  /** Classification (accuracy, majority baseline) or sequence (perplexity) task. */
  readonly classification: boolean;
  /**
   * Load the requested splits.
   * @param args resolved options (`data`, generation settings, `seed`, ...)
   * @param modelArgs the model namespace (limits such as `max_positions`)
   * @throws DataError / ConfigError for missing, unreadable, empty or inconsistent data
   */
  load(args: TaskArgs, splits: readonly Split[], modelArgs: Readonly<Record<string, unknown>>): TaskData;
  /** Number of classes the task needs before loading (from args / arch); undefined for sequence tasks. */
  numClasses?(args: TaskArgs, modelArgsDefault: Readonly<Record<string, unknown>>): number;
  /** One forward pass: summed loss and statistics. */
  forward(model: Module, batch: Batch, args: TaskArgs): StepOutput;
}
