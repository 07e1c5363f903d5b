/**
 * The distributed options of `mega train`, merged into `TRAIN_OPTIONS` by `src/train/args.ts`
 * (this module has no run-time imports, so the option schema stays light).
 */
import type { OptSpec } from '../train/args.js';

/** `--workers`, `--max-restarts`, `--dist-backend`, `--dist-timeout`. */
export const DIST_TRAIN_OPTIONS: Readonly<Record<string, OptSpec>> = {
  workers: { type: 'int', group: 'run', help: 'data-parallel: start N worker processes on this host (the batch is split across them)' },
  max_restarts: { type: 'int', group: 'run', help: 'with --workers: after a failure restart the workers up to N times from checkpoint_last' },
  dist_backend: { type: 'string', group: 'run', help: 'process-group engine of a distributed job', choices: ['tcp', 'mpi'] },
  dist_timeout: { type: 'number', group: 'run', help: 'seconds until a silent rank or a stuck collective fails the job (default 300)' },
};

/** Options that shape one launch only (not replayed by `--resume`). */
export const DIST_RUN_ONLY = ['workers', 'max_restarts', 'dist_backend', 'dist_timeout'] as const;
