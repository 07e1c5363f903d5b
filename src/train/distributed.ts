/**
 * What the training loop needs from a data-parallel job, defined on this floor so that the trainer
 * never imports `src/dist` (a higher floor). `src/dist/training.ts` implements {@link TrainDist}
 * (`DistTraining`) and `startDistributed` (a {@link StartDist}); the CLI passes it to `train()`.
 * Without one, `train()` runs a single process.
 *
 * Also here: the distributed options of `mega train` (merged into `TRAIN_OPTIONS` by `args.ts`),
 * since the option table lives on this floor.
 */
import type { Batch } from '../data/batch.js';
import type { Module } from '../nn/module.js';
import type { Tensor } from '../tensor/tensor.js';
import type { OptSpec } from './args.js';

/** The trainer's handle on a distributed job (one rank's view). */
export interface TrainDist {
  /** Rank 0: prints, writes checkpoints and logs. */
  readonly isMain: boolean;
  /**
   * Make this rank a replica of rank 0 (settings in `describe` compared across ranks, parameters
   * broadcast, per-rank dropout stream; restored from `resumed` when it holds per-rank states).
   */
  attach(model: Module, describe: Readonly<Record<string, unknown>>, resumed?: { numUpdates: number; rankRng?: number[][] } | null): void;
  /** This rank's slice of a global batch (may hold 0 examples). */
  shard<T extends Batch>(batch: T): T;
  /** Before each backward of an update; `final` = its last micro-step. */
  beginBackward(final: boolean, loss?: Tensor): void;
  /** After the last micro-step: sum gradients over ranks; returns `values` summed over ranks. */
  finishStep(values: readonly number[]): number[];
  /** `values` summed over ranks. */
  sum(values: readonly number[]): number[];
  /** Every rank's dropout-generator state, by rank (a collective). */
  rankRngStates(): number[][];
  /** Called after each completed update (fault injection for tests). */
  afterUpdate(update: number): void;
  /** Leave the job. */
  close(): void;
}

/** Joins the job this process was launched into, from the run's options; null for a single process. */
export type StartDist = (args: Readonly<Record<string, unknown>>) => TrainDist | null;

/** `--workers`, `--max-restarts`, `--dist-backend`, `--dist-timeout` (implemented by `src/dist`). */
export const DIST_TRAIN_OPTIONS: Readonly<Record<string, OptSpec>> = {
  workers: { type: 'int', group: 'run', help: 'data-parallel: start N worker processes on this host (the batch is split across them)' },
  max_restarts: { type: 'int', group: 'run', help: 'with --workers: after a failure restart the workers up to N times from checkpoint_last' },
  dist_backend: { type: 'string', group: 'run', help: 'process-group engine of a distributed job', choices: ['tcp', 'mpi'] },
  dist_timeout: { type: 'number', group: 'run', help: 'seconds until a silent rank or a stuck collective fails the job (default 300)' },
};

/** Distributed options that shape one launch only (not replayed by `--resume`). */
export const DIST_RUN_ONLY = ['workers', 'max_restarts', 'dist_backend', 'dist_timeout'] as const;
