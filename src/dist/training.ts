/**
 * The trainer's view of a distributed job: one object the training loop calls at a handful of
 * points (see `src/train/trainer.ts`). `startDistributed()` returns null for a single process, so a
 * plain `mega train` runs exactly as before.
 *
 * - start: detect the launcher, join the process group (tcp by default, `--dist-backend mpi`).
 * - `attach(model, …)`: configs and models are compared across ranks (a mismatch stops every rank
 *   at start-up), replicas are made equal from rank 0, each rank gets its own dropout stream.
 * - `shard(batch)`: every rank reads the same global batch (same seed, same data order) and keeps
 *   its slice (`shardBatch`), deterministically.
 * - `beginBackward(final)` / `finishStep(values)`: gradient accumulation without communication on
 *   the non-final micro-steps; then gradients and the step's statistics (loss, sample size, …) are
 *   summed over ranks, so `1/Σ sample_size` is the global one.
 * - only rank 0 (`isMain`) writes checkpoints, logs and output; `rankRngStates()` (a collective
 *   every rank calls when saving) lets a resumed job restore each rank's dropout stream.
 */
import { shardBatch, type Batch } from '../data/batch.js';
import { deriveSeed } from '../data/rng.js';
import type { Module } from '../nn/module.js';
import { defaultGenerator } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import { DataParallel } from './ddp.js';
import { detectLauncher, type DistEnv } from './env.js';
import { DistConfigError, DistError } from './errors.js';
import { allGatherJson, LocalGroup, type BackendName, type ProcessGroup } from './group.js';
import { MpiGroup } from './mpi.js';
import { TcpGroup } from './tcp.js';
import type { TrainDist } from '../train/distributed.js';

/** Default `--dist-timeout` (seconds). */
export const DEFAULT_DIST_TIMEOUT_S = 300;

/** Options of {@link initProcessGroup}. */
export interface ProcessGroupOptions {
  /** `tcp` (default) or `mpi`. */
  backend?: 'tcp' | 'mpi';
  /** Rendezvous / silence / progress limit in seconds (default 300). */
  timeoutS?: number;
  /** The launcher's view (default: detected from `process.env`). */
  env?: DistEnv;
}

/**
 * Join the process group of the launched job (a {@link LocalGroup} for a single process).
 * @throws DistConfigError for a bad backend or launch; DistError when the rendezvous fails
 */
export function initProcessGroup(opts: ProcessGroupOptions = {}): ProcessGroup {
  const env = opts.env ?? detectLauncher();
  const backend = opts.backend ?? (process.env.MEGA_DIST_BACKEND as 'tcp' | 'mpi' | undefined) ?? 'tcp';
  if (backend !== 'tcp' && backend !== 'mpi') throw new DistConfigError(`--dist-backend ${String(backend)}: expected tcp or mpi`);
  const timeoutS = opts.timeoutS ?? DEFAULT_DIST_TIMEOUT_S;
  if (!(timeoutS > 0)) throw new DistConfigError(`--dist-timeout ${timeoutS}: expected a number of seconds > 0`);
  if (backend === 'mpi') return new MpiGroup(env.launcher === 'single' ? undefined : { rank: env.rank, worldSize: env.worldSize });
  if (env.worldSize === 1) return new LocalGroup();
  if (!env.masterAddr) throw new DistConfigError(`${env.launcher} job across hosts: set MASTER_ADDR to the host of rank 0 (or use --dist-backend mpi)`);
  return new TcpGroup({ rank: env.rank, worldSize: env.worldSize, masterAddr: env.masterAddr, port: env.rendezvousPort, timeoutMs: timeoutS * 1000 });
}

/** Whether this process was started as one rank of a multi-process job. */
export function launchedWorldSize(env: Readonly<Record<string, string | undefined>> = process.env): number {
  try {
    return detectLauncher(env).worldSize;
  } catch {
    return 1;
  }
}

/** Whether this process is rank 0 (or not part of a job): the one that prints and writes. */
export function isMainProcess(env: Readonly<Record<string, string | undefined>> = process.env): boolean {
  try {
    return detectLauncher(env).rank === 0;
  } catch {
    return true;
  }
}

/**
 * A worker of `mega train --workers` stops when its launcher is gone (killed, even by SIGKILL: the
 * worker is then re-parented, so its parent pid is no longer `MEGA_LAUNCHER_PID`).
 * @throws DistError after update `update` when the launcher is gone
 */
export function checkLauncher(update: number, env: Readonly<Record<string, string | undefined>> = process.env): void {
  const launcher = env.MEGA_LAUNCHER_PID;
  if (launcher === undefined || env.MEGA_LAUNCHER !== 'workers' || process.ppid === Number(launcher)) return;
  throw new DistError(`the --workers launcher (pid ${launcher}) is gone; stopping after update ${update}`);
}

/** Options the trainer reads (fairseq-style names). */
export interface DistTrainArgs {
  dist_backend?: unknown;
  dist_timeout?: unknown;
  seed?: unknown;
}

let current: DistTraining | null = null;

/**
 * Start the distributed side of a training run: null for a single process (no launcher variables,
 * or a world size of 1 with the tcp backend).
 */
export function startDistributed(args: DistTrainArgs): DistTraining | null {
  const env = detectLauncher();
  const backend = (args.dist_backend as 'tcp' | 'mpi' | undefined) ?? (process.env.MEGA_DIST_BACKEND as 'tcp' | 'mpi' | undefined) ?? 'tcp';
  if (env.worldSize === 1 && backend === 'tcp') return null;
  const timeoutS = typeof args.dist_timeout === 'number' ? args.dist_timeout : DEFAULT_DIST_TIMEOUT_S;
  const group = initProcessGroup({ backend, timeoutS, env });
  if (group.worldSize === 1) {
    group.close();
    return null;
  }
  current = new DistTraining(group, env, typeof args.seed === 'number' ? args.seed : 1);
  return current;
}

/** Close the current job's group if one is open (the CLI calls it on every exit path). */
export function closeDistributed(): void {
  current?.close();
  current = null;
}

/** Keys of the training options that may differ across ranks. */
const PER_RANK_KEYS = new Set([
  'json',
  'quiet',
  'threads',
  'config',
  'help',
  'save_dir',
  'data',
  'workers',
  'max_restarts',
  'dist_backend',
  'dist_timeout',
  'overwrite',
  '__user',
]);

/** The trainer's handle on a distributed job (see the file comment). */
export class DistTraining implements TrainDist {
  readonly rank: number;
  readonly worldSize: number;
  /** Rank 0: prints, writes checkpoints and logs. */
  readonly isMain: boolean;
  private ddp: DataParallel | null = null;
  private closed = false;

  constructor(
    readonly group: ProcessGroup,
    readonly env: DistEnv,
    private readonly seed: number,
  ) {
    this.rank = group.rank;
    this.worldSize = group.worldSize;
    this.isMain = group.rank === 0;
  }

  /** The engine in use. */
  get backend(): BackendName {
    return this.group.backend;
  }

  /**
   * Make this rank a replica: compare `describe` (the run's settings; per-rank options such as
   * paths and output flags are ignored) and the model across ranks, broadcast rank 0's parameters
   * and buffers, and set this rank's dropout stream — from the checkpoint's per-rank states when
   * resuming with the same world size, else derived from the seed (rank 0 keeps the plain stream).
   * @throws DistConfigError on every rank when any rank differs
   */
  attach(model: Module, describe: Readonly<Record<string, unknown>>, resumed?: { numUpdates: number; rankRng?: number[][] } | null): void {
    const settings: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(describe)) if (!PER_RANK_KEYS.has(k)) settings[k] = v;
    this.ddp = new DataParallel(model, this.group, {
      describe: { worldSize: this.worldSize, settings, resumedAt: resumed ? resumed.numUpdates : null },
    });
    const states = resumed?.rankRng;
    if (states && states.length === this.worldSize) defaultGenerator.setState(states[this.rank]);
    else if (this.rank > 0) defaultGenerator.seed(deriveSeed(this.seed, 0xd157, this.rank, resumed?.numUpdates ?? 0));
  }

  /** This rank's slice of a global batch (may hold 0 examples when the batch is smaller than the world). */
  shard<T extends Batch>(batch: T): T {
    return shardBatch(batch, this.rank, this.worldSize);
  }

  /** Before each backward of an update; `final` = its last micro-step, `loss` = what backward starts from. */
  beginBackward(final: boolean, loss?: Tensor): void {
    this.need().beginBackward(final, loss);
  }

  /**
   * After the last micro-step: sum the gradients over ranks and return `values` (the step's
   * statistics: loss sum, sample size, …) summed over ranks.
   */
  finishStep(values: readonly number[]): number[] {
    const d = this.need();
    d.finishGradients();
    return d.sum(values);
  }

  /** `values` summed over ranks (validation statistics). */
  sum(values: readonly number[]): number[] {
    const x = Float64Array.from(values);
    this.group.allReduce(x, 'sum');
    return Array.from(x);
  }

  /** Every rank's dropout-generator state, by rank (a collective: call it on every rank when saving). */
  rankRngStates(): number[][] {
    return allGatherJson(this.group, defaultGenerator.getState());
  }

  /**
   * Test aid: `MEGA_DIST_FAULT=kill:R@U` (or `stop:R@U`) makes rank R SIGKILL (SIGSTOP) itself after
   * update U, in the first attempt of a job only (not after a restart).
   */
  afterUpdate(update: number): void {
    checkLauncher(update);
    const f = process.env.MEGA_DIST_FAULT;
    if (!f || this.env.restartCount > 0) return;
    const m = /^(kill|stop):(\d+)@(\d+)$/.exec(f);
    if (!m || Number(m[2]) !== this.rank || Number(m[3]) !== update) return;
    process.stderr.write(`mega dist: MEGA_DIST_FAULT: rank ${this.rank} ${m[1] === 'kill' ? 'kills' : 'stops'} itself after update ${update}\n`);
    process.kill(process.pid, m[1] === 'kill' ? 'SIGKILL' : 'SIGSTOP');
  }

  private need(): DataParallel {
    if (!this.ddp) throw new Error('DistTraining: attach(model) first');
    return this.ddp;
  }

  /** Leave the job (removes hooks, closes the group). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ddp?.close();
    this.group.close();
    if (current === this) current = null;
  }
}
