/**
 * The training loop of `mega train` (docs/MEGA.md §9), as fairseq runs it:
 *
 * - one update = `update_freq` micro-batches; the gradients of their SUMMED losses accumulate,
 *   are multiplied by `1/Σ sample_size`, clipped to `clip_norm` (global L2 norm), then fairseq
 *   Adam steps with `lr(k−1)` for update `k` (§9.2–9.5);
 * - a non-finite loss or gradient norm stops training before the parameters change; the last
 *   checkpoint on disk stays the last good one;
 * - validation every `validate_interval_updates` and at the end; `checkpoint_last` at each
 *   validation / `save_interval_updates`, `checkpoint_best` when the metric improves;
 * - everything random (init, dropout, data order, generated data) derives from `--seed`, and a
 *   checkpoint holds the complete state (weights, Adam moments and steps, RNG state, data
 *   position), so N updates in one run and N/2 + `--resume` + N/2 give bitwise-equal parameters.
 *
 * Metrics go to `SAVE_DIR/metrics.jsonl` (JSON Lines), the curves to `SAVE_DIR/curves.svg`
 * (+ `accuracy.svg` for classification). Losses are reported in base 2 as fairseq logs them.
 * Evaluation lives in `evaluate.ts`; the distributed side is passed in as a {@link StartDist}.
 */
import { existsSync, rmSync } from 'node:fs';
import { MegaError } from '../errors.js';
import { join, resolve as resolvePath } from 'node:path';
import { backward } from '../autograd/engine.js';
import { Batcher, type Dataset, type Example } from '../data/batch.js';
import { writeFileAtomic } from '../io/atomic.js';
import { CheckpointError } from '../io/errors.js';
import type { Module } from '../nn/module.js';
import { getBackend } from '../tensor/backend.js';
import { setNumThreads } from '../tensor/backends/cpu/pool.js';
import { moveToDevice } from '../tensor/backends/gpujs/index.js';
import { residentScope } from '../tensor/backends/cpu/resident.js';
import type { Tensor } from '../tensor/tensor.js';
import { defaultGenerator, manualSeed } from '../tensor/random.js';
import { resolveTrainArgs, type TrainArgs } from './args.js';
import { buildFromModelArgs, resolveModelArgs } from './arch.js';
import { checkpointPaths, loadCheckpoint, loadTrainerState, saveCheckpoint, type LoadedCheckpoint, type ModelSpec, type TrainerState } from './checkpoint.js';
import { evaluate, formatMetrics, majorityBaseline, pct, type EvalMetrics } from './evaluate.js';
import { ConfigError } from './errors.js';
import { MetricsLog, readMetricsLog, type MetricsRecord } from './metrics-log.js';
import { Adam, clipGradNorm, parseBetas } from './optim.js';
import { renderCurvesSvg } from './plot.js';
import { ProgressBar, type ProgressStream } from './progress.js';
import { checkSaveDir, checkUnlocked, lockSaveDir, makeSaveDir, removeStaleTemps } from './save-folder.js';
import { makeScheduleFromArgs, type LRSchedule } from './schedule.js';
import { getTask, type TrainTask } from './tasks/index.js';
import { DIST_RUN_ONLY, type StartDist, type TrainDist } from './distributed.js';

const LN2 = Math.LN2;

/** Options that only shape one invocation's output or mode (not replayed by `--resume`). */
const RUN_ONLY = ['json', 'quiet', 'resume', 'overwrite', 'config', 'help', 'threads', ...DIST_RUN_ONLY] as const;

/** Training stopped on a NaN/Inf loss or gradient norm. */
export class TrainingDivergedError extends MegaError {
  /** Update at which it happened (1-based, not applied). */
  readonly update: number;
  /** Path of the last good checkpoint, if any. */
  readonly checkpoint: string | null;
  constructor(message: string, update: number, checkpoint: string | null) {
    super(message);
    this.update = update;
    this.checkpoint = checkpoint;
  }
}

/** Result of a training run (also the `--json` line of `mega train`). */
export interface TrainResult {
  status: 'completed' | 'diverged';
  task: string;
  arch: string;
  parameters: number;
  /** Updates done in total (including those before a resume). */
  updates: number;
  /** Updates done by this run. */
  updates_this_run: number;
  epochs: number;
  /** Wall time of this run (s). */
  wall_time_s: number;
  /** Mean training loss (base 2) over the last logging interval. */
  train_loss: number | null;
  valid_loss: number | null;
  valid_accuracy: number | null;
  valid_ppl: number | null;
  valid_bpb: number | null;
  majority_baseline: number | null;
  best_valid: { metric: string; value: number; update: number } | null;
  checkpoint: string | null;
  best_checkpoint: string | null;
  /** Null with `--no-save` (nothing is written). */
  metrics_log: string | null;
  plot: string | null;
  message?: string;
}

/** Test / embedding hooks. */
export interface TrainHooks {
  /** Called after each completed update (the parameters already changed). */
  afterUpdate?(update: number, model: Module): void;
}

/** Options of {@link train}. */
export interface TrainOptions {
  /** Stream for the progress bar and info lines (default `process.stderr`). */
  stream?: ProgressStream;
  /** Clock in ms (default `Date.now`). */
  now?: () => number;
  /** Hooks. */
  hooks?: TrainHooks;
  /** Joins the data-parallel job this process was launched into (`startDistributed` of `src/dist`); none: a single process. */
  startDist?: StartDist;
}

/** Everything prepared before the first update (all user errors are raised while preparing). */
interface Prepared {
  args: TrainArgs;
  userArgs: Record<string, unknown>;
  task: TrainTask;
  spec: ModelSpec;
  model: Module;
  train: Dataset<Example>;
  valid: Dataset<Example>;
  dataSource: string;
  resumeFrom: { ckpt: LoadedCheckpoint; statePath: string } | null;
}

function sameJson(ra: Readonly<Record<string, unknown>>, rb: Readonly<Record<string, unknown>>): string | null {
  for (const k of new Set([...Object.keys(ra), ...Object.keys(rb)])) {
    if (JSON.stringify(ra[k]) !== JSON.stringify(rb[k])) return k;
  }
  return null;
}

/**
 * Resolve options, read the resume checkpoint, load the data, build the model. Throws the user's
 * errors (ConfigError, DataError, CheckpointError) before anything is written.
 */
function prepare(user: Readonly<Record<string, unknown>>): Prepared {
  const given: Record<string, unknown> = { ...user };
  // data paths are stored absolute so that eval / resume work from any folder
  if (typeof given.data === 'string' && given.data !== '') given.data = resolvePath(given.data);
  let userArgs = given;
  let args = resolveTrainArgs(userArgs);
  if (!args.no_save) checkSaveDir(args.save_dir); // a file, /proc, "": one clear error before anything else
  let resumeFrom: Prepared['resumeFrom'] = null;
  const last = checkpointPaths(args.save_dir, 'checkpoint_last');
  if (args.resume) {
    if (!existsSync(last.weights)) throw new CheckpointError(`--resume: no checkpoint to resume in ${args.save_dir} (expected ${last.weights})`);
    const ckpt = loadCheckpoint(last.weights);
    const prev = { ...((ckpt.trainArgs.__user ?? {}) as Record<string, unknown>) };
    for (const k of ['task', 'arch'] as const) {
      if (user[k] !== undefined && user[k] !== ckpt.trainArgs[k]) {
        throw new ConfigError(`--resume: --${k} ${String(user[k])} differs from the checkpoint's ${String(ckpt.trainArgs[k])}`);
      }
    }
    for (const k of RUN_ONLY) delete prev[k];
    userArgs = { ...prev, ...given };
    delete userArgs.overwrite;
    args = resolveTrainArgs(userArgs);
    resumeFrom = { ckpt, statePath: last.state };
  } else if (!args.no_save && !args.overwrite && existsSync(last.weights)) {
    throw new ConfigError(
      `${args.save_dir} already holds checkpoint_last.safetensors: pass --resume to continue it, --overwrite to start over, or another --save-dir`,
    );
  }
  if (typeof args.threads === 'number') setNumThreads(args.threads);
  const task = getTask(args.task);
  const defaults = resolveModelArgs(args.arch, args.task, args);
  const numClasses = task.numClasses?.(args, defaults);
  const modelArgs = resolveModelArgs(args.arch, args.task, args, numClasses);
  if (args.task === 'lm' && typeof args.max_tokens === 'number') {
    args.batch_size = Math.max(1, Math.floor(args.max_tokens / args.tokens_per_sample!));
  }
  const data = task.load(args, ['train', 'valid'], modelArgs);
  const spec: ModelSpec = {
    task: args.task,
    arch: args.arch,
    modelArgs,
    taskInfo: { ...(data.taskInfo ?? {}), ...(data.numClasses ? { num_classes: data.numClasses } : {}) },
  };
  if (resumeFrom) {
    const diff = sameJson(spec.modelArgs, resumeFrom.ckpt.spec.modelArgs) ?? sameJson(spec.taskInfo, resumeFrom.ckpt.spec.taskInfo);
    if (diff) throw new ConfigError(`--resume: model setting "${diff}" differs from the checkpoint's (model settings cannot change on resume)`);
  }
  manualSeed(args.seed);
  const model = buildFromModelArgs(modelArgs, data.taskInfo, defaultGenerator);
  return { args, userArgs, task, spec, model, train: data.splits.train!, valid: data.splits.valid!, dataSource: data.source, resumeFrom };
}

/** The records of a metrics log up to update `n` (a resumed run rewrites the log from there). */
function truncateLog(path: string, n: number): void {
  if (!existsSync(path)) return;
  const keep = readMetricsLog(path).filter((r) => typeof r.update !== 'number' || r.update <= n);
  writeFileAtomic(path, keep.map((r) => `${JSON.stringify(r)}\n`).join(''));
}

/** Write `curves.svg` (train/valid loss) and, for classification, `accuracy.svg`. */
export function writePlots(dir: string, records: readonly MetricsRecord[], classification: boolean, baseline: number | null): string {
  const pts = (type: string, key: string): [number, number][] =>
    records.filter((r) => r.type === type && typeof r.update === 'number' && typeof r[key] === 'number').map((r) => [r.update as number, r[key] as number]);
  const curves = join(dir, 'curves.svg');
  writeFileAtomic(
    curves,
    renderCurvesSvg(
      [
        { name: 'train loss', points: pts('train', 'loss') },
        { name: 'valid loss', points: pts('valid', 'loss') },
      ],
      { title: 'Training curves', xLabel: 'update', yLabel: 'loss (base 2)' },
    ),
  );
  if (classification) {
    const acc = pts('valid', 'accuracy').map(([x, y]): [number, number] => [x, 100 * y]);
    const series = [
      { name: 'train accuracy', points: pts('train', 'accuracy').map(([x, y]): [number, number] => [x, 100 * y]) },
      { name: 'valid accuracy', points: acc },
    ];
    if (baseline !== null && acc.length) {
      const xs = [...pts('train', 'accuracy'), ...acc].map((p) => p[0]);
      series.push({
        name: 'majority class',
        points: [
          [Math.min(...xs), 100 * baseline],
          [Math.max(...xs), 100 * baseline],
        ],
      });
    }
    writeFileAtomic(join(dir, 'accuracy.svg'), renderCurvesSvg(series, { title: 'Accuracy', xLabel: 'update', yLabel: 'accuracy (%)' }));
  }
  return curves;
}

/** Sums over one logging interval (reset after each `train` record). */
interface Interval {
  loss: number;
  sample: number;
  correct: number;
  sentences: number;
  tokens: number;
  gnorm: number;
  n: number;
  /** Clock (ms) at the interval's start. */
  t: number;
}

/** Statistics of one update, summed over its micro-batches (and ranks). */
interface UpdateStats {
  /** Summed loss (natural log). */
  sum: number;
  sample: number;
  correct: number;
  sentences: number;
  tokens: number;
  /** Gradient norm before clipping. */
  gnorm: number;
  /** Learning rate of the update. */
  lr: number;
}

const emptyInterval = (t: number): Interval => ({ loss: 0, sample: 0, correct: 0, sentences: 0, tokens: 0, gnorm: 0, n: 0, t });

/**
 * One training run: the state the steps of {@link train} share (model, optimizer, data position,
 * best metric, the last checkpoint written) and the steps themselves, in the order `train()` calls
 * them: {@link TrainRun.restore}, {@link TrainRun.openFiles}, {@link TrainRun.runUpdates},
 * {@link TrainRun.finish}.
 */
/**
 * What outlives a training step's resident scope (src/tensor/backends/cpu/resident.ts): the
 * parameters, their gradients (read by logging and the next `zeroGrad`) and the model's buffers
 * (batch-norm running statistics are replaced by tensors computed in the step).
 */
export function* stepRoots(model: Module, params: readonly Tensor[]): Generator<Tensor | null> {
  for (const p of params) {
    yield p;
    yield p.grad;
  }
  for (const [, b] of model.namedBuffers()) yield b;
}

class TrainRun {
  readonly args: TrainArgs;
  readonly task: TrainTask;
  readonly model: Module;
  readonly params: Tensor[];
  readonly optimizer: Adam;
  readonly schedule: LRSchedule;
  readonly batcher: Batcher<Example>;
  /** Only rank 0 prints and writes files. */
  readonly isMain: boolean;
  readonly metric: string;
  readonly maximize: boolean;
  readonly baseline: { label: number; accuracy: number } | null;
  readonly dir: string;
  readonly lastPaths: ReturnType<typeof checkpointPaths>;
  readonly bestPaths: ReturnType<typeof checkpointPaths>;
  readonly logPath: string;
  numUpdates = 0;
  /** Updates done before this run (resume). */
  startUpdates = 0;
  best: TrainerState['best'] = null;
  /** Wall time of the runs before a resume (s). */
  wallBefore = 0;
  lastTrainLoss: number | null = null;
  log = { write: () => undefined } as unknown as MetricsLog;
  /** The last `checkpoint_last` written (or resumed from) and its update. */
  savedPath: string | null = null;
  savedUpdate = -1;
  lastValid: EvalMetrics | null = null;
  validatedAt = -1;
  /** `--overwrite`: the previous run's `checkpoint_best` goes once this run has saved its `checkpoint_last`. */
  private replacing = false;
  private nParams = 0;

  constructor(
    private readonly p: Prepared,
    private readonly dist: TrainDist | null,
    private readonly opts: TrainOptions,
    private readonly now: () => number,
    private readonly t0: number,
  ) {
    const { args, task, model } = p;
    this.args = args;
    this.task = task;
    this.model = model;
    this.isMain = !dist || dist.isMain;
    this.params = model.parameters();
    this.optimizer = new Adam(this.params, { lr: 0, betas: parseBetas(args.adam_betas), eps: args.adam_eps, weightDecay: args.weight_decay });
    this.schedule = makeScheduleFromArgs(args);
    this.batcher = new Batcher(p.train, { batchSize: args.batch_size, seed: args.seed });
    this.metric = args.best_checkpoint_metric ?? (task.classification ? 'accuracy' : 'loss');
    this.maximize = this.metric === 'accuracy';
    this.baseline = task.classification ? majorityBaseline(p.train, p.valid) : null;
    this.dir = args.save_dir;
    this.lastPaths = checkpointPaths(this.dir, 'checkpoint_last');
    this.bestPaths = checkpointPaths(this.dir, 'checkpoint_best');
    this.logPath = join(this.dir, 'metrics.jsonl');
  }

  /** Print an info line (rank 0, unless `--quiet`). */
  say(s: string): void {
    const stream = this.opts.stream ?? process.stderr;
    if (!this.args.quiet && this.isMain) stream.write(`${stream.isTTY ? '\r\x1b[K' : ''}${s}\n`);
  }

  /**
   * Load the resumed checkpoint's weights, optimizer, data position, RNG and counters (if
   * resuming), then make this rank a replica of rank 0 (data parallel).
   * @throws CheckpointError when the checkpoint does not fit the model or the data
   */
  restore(): void {
    let resumed: TrainerState | null = null;
    if (this.p.resumeFrom) {
      const { ckpt, statePath } = this.p.resumeFrom;
      try {
        this.model.loadStateDict(ckpt.tensors);
      } catch (e) {
        throw new CheckpointError(`${ckpt.path}: weights do not fit the model (${(e as Error).message})`);
      }
      const st = loadTrainerState(statePath, ckpt, this.optimizer);
      try {
        this.batcher.setState(st.data);
      } catch (e) {
        throw new CheckpointError(`${statePath}: data position does not fit the data (${(e as Error).message})`);
      }
      defaultGenerator.setState(st.rng);
      this.numUpdates = st.numUpdates;
      this.best = st.best;
      this.wallBefore = st.wallTime;
      this.lastTrainLoss = st.lastTrainLoss;
      resumed = st;
    }
    this.dist?.attach(this.model, this.args, resumed); // same settings everywhere, replicas = rank 0's, per-rank dropout stream
    // gpujs: the parameters live on the device from here on (Adam and clipping run there; docs/GPU.md)
    if (getBackend() === 'gpujs') moveToDevice(this.params);
    this.startUpdates = this.numUpdates;
    if (this.metric === 'accuracy' && !this.task.classification)
      throw new ConfigError(`--best-checkpoint-metric accuracy: task ${this.task.name} has no accuracy (use loss)`);
  }

  /**
   * Open `metrics.jsonl` (truncated to the resumed update), print the run's header. From here on
   * files are written (none with `--no-save`); the save folder is created and locked by {@link train}.
   */
  openFiles(): void {
    const { args, p, numUpdates } = this;
    const writes = this.isMain && !args.no_save;
    if (writes && p.resumeFrom) truncateLog(this.logPath, numUpdates);
    this.replacing = writes && !p.resumeFrom && args.overwrite;
    if (writes) this.log = new MetricsLog(this.logPath, !p.resumeFrom);
    this.nParams = this.model.numParameters();
    const { baseline, nParams } = this;
    this.log.write({
      type: 'start',
      update: numUpdates,
      task: args.task,
      arch: args.arch,
      parameters: nParams,
      resumed: p.resumeFrom !== null,
      train_examples: p.train.length,
      valid_examples: p.valid.length,
      majority_baseline: baseline?.accuracy ?? null,
      time: new Date().toISOString(),
    });
    this.say(`mega train: task ${args.task}, arch ${args.arch} (${nParams.toLocaleString('en-US')} parameters), data ${p.dataSource}`);
    this.say(
      `train ${p.train.length} examples (${this.batcher.batchesPerEpoch} batches of ${args.batch_size}), ` +
        `valid ${p.valid.length}${baseline ? `, majority-class baseline ${pct(baseline.accuracy)}` : ''}`,
    );
    if (p.resumeFrom) this.say(`resumed from ${p.resumeFrom.ckpt.path} at update ${numUpdates}`);
    this.savedPath = p.resumeFrom ? this.lastPaths.weights : null;
    this.savedUpdate = p.resumeFrom ? numUpdates : -1;
  }

  /** Write a checkpoint (every rank calls it; rank 0 writes); null with `--no-save`. */
  save(name: 'checkpoint_last' | 'checkpoint_best'): string | null {
    const { args, numUpdates } = this;
    if (args.no_save) return null;
    const rankRng = this.dist?.rankRngStates(); // a collective: every rank saves, rank 0 writes
    const state = {
      numUpdates,
      data: this.batcher.state,
      rng: defaultGenerator.getState(),
      schedule: { name: this.schedule.name, nextLr: this.schedule.lr(numUpdates) },
      best: this.best,
      wallTime: this.wallBefore + (this.now() - this.t0) / 1000,
      userArgs: this.p.userArgs,
      lastTrainLoss: this.lastTrainLoss,
      ...(rankRng ? { rankRng } : {}),
    };
    const trainArgsMeta = { ...args, __user: this.p.userArgs };
    const path = this.isMain
      ? saveCheckpoint(this.dir, name, this.model, this.optimizer, this.p.spec, trainArgsMeta, state)
      : checkpointPaths(this.dir, name).weights;
    if (this.replacing && name === 'checkpoint_last') {
      // the previous run's checkpoint_last was replaced just now; its checkpoint_best goes too
      for (const f of Object.values(this.bestPaths)) rmSync(f, { force: true });
      this.replacing = false;
    }
    if (name === 'checkpoint_last') {
      this.savedPath = path;
      this.savedUpdate = numUpdates;
    }
    return path;
  }

  /** Evaluate on the validation split, log it, save `checkpoint_last` (and `checkpoint_best` when the metric improved). */
  validate(): void {
    const { args, metric, maximize, numUpdates } = this;
    const m = evaluate(this.model, this.task, this.p.valid, args, args.batch_size_valid, this.dist);
    this.lastValid = m;
    this.validatedAt = numUpdates;
    const v = maximize ? m.accuracy! : m.loss;
    const improved = this.best === null || (maximize ? v > this.best.value : v < this.best.value);
    if (improved) this.best = { metric, value: v, update: numUpdates };
    const best = this.best!;
    this.log.write({ type: 'valid', update: numUpdates, epoch: this.batcher.state.epoch, ...m, best: best.value });
    this.say(`valid | update ${numUpdates} | ${formatMetrics(m)} | best ${metric} ${maximize ? pct(best.value) : best.value.toFixed(4)}`);
    this.save('checkpoint_last');
    if (improved) this.save('checkpoint_best');
  }

  /**
   * One update `k = numUpdates + 1`: `update_freq` micro-batches with summed losses, gradients
   * summed over ranks and scaled by `1/Σ sample_size`, clipped, then one Adam step with `lr(k−1)`.
   * @throws TrainingDivergedError on a NaN/Inf loss or gradient norm (parameters unchanged)
   */
  update(): UpdateStats {
    // on the CPU the step's tensors live in the wasm memory and are reused by the next step (data
    // parallel too: its hook copies each finished gradient into its own bucket arrays at once)
    if (getBackend() !== 'cpu') return this.step();
    return residentScope(
      this,
      () => this.step(),
      () => stepRoots(this.model, this.params),
    );
  }

  /** The body of {@link update}. */
  private step(): UpdateStats {
    const { args, dist, task, model, params, optimizer } = this;
    const k = this.numUpdates + 1;
    const lr = this.schedule.lr(this.numUpdates);
    optimizer.setLr(lr);
    optimizer.zeroGrad();
    const updateFreq = args.update_freq;
    let sum = 0,
      sample = 0,
      correct = 0,
      sentences = 0,
      tokens = 0;
    for (let f = 0; f < updateFreq; f++) {
      const batch = dist ? dist.shard(this.batcher.next()) : this.batcher.next();
      if (batch.B === 0) continue; // data parallel: a batch smaller than the world leaves some ranks idle
      const out = task.forward(model, batch, args);
      const l = out.loss.item();
      if (!dist && !Number.isFinite(l)) throw this.divergence(k, `the loss is ${l}`);
      dist?.beginBackward(f === updateFreq - 1, out.loss); // no gradient all-reduce on the non-final micro-steps
      backward(out.loss);
      sum += l;
      sample += out.sampleSize;
      correct += out.nCorrect ?? 0;
      sentences += out.nSentences;
      tokens += out.ntokens;
    }
    if (dist) {
      // sum the gradients and the step's statistics over ranks: 1/Σ sample_size is the global one
      [sum, sample, correct, sentences, tokens] = dist.finishStep([sum, sample, correct, sentences, tokens]);
      if (!Number.isFinite(sum)) throw this.divergence(k, `the loss is ${sum}`);
    }
    // gradients × 1 / sample size, then clipped (one fused pass on the CPU)
    const gnorm = clipGradNorm(params, args.clip_norm, sample > 0 ? 1 / sample : 1);
    if (!Number.isFinite(gnorm)) throw this.divergence(k, `the gradient norm is ${gnorm}`);
    optimizer.step();
    // the gradients are spent: dropped inside the step, their wasm blocks are freed with the step's
    // other tensors instead of being copied out to ordinary arrays as roots of the resident scope
    optimizer.zeroGrad();
    this.numUpdates = k;
    this.opts.hooks?.afterUpdate?.(k, model);
    dist?.afterUpdate(k);
    return { sum, sample, correct, sentences, tokens, gnorm, lr };
  }

  /** Add an update to the interval; at the end of an interval write its `train` record. Returns the interval to continue. */
  logUpdate(acc: Interval, u: UpdateStats): Interval {
    acc.loss += u.sum;
    acc.sample += u.sample;
    acc.correct += u.correct;
    acc.sentences += u.sentences;
    acc.tokens += u.tokens;
    acc.gnorm += u.gnorm;
    acc.n++;
    if (acc.n < this.args.log_interval && this.numUpdates !== this.args.max_update) return acc;
    const t = this.now();
    this.lastTrainLoss = acc.sample > 0 ? acc.loss / acc.sample / LN2 : null;
    const rec: MetricsRecord = {
      type: 'train',
      update: this.numUpdates,
      epoch: this.batcher.state.epoch,
      loss: this.lastTrainLoss,
      lr: u.lr,
      gnorm: acc.gnorm / acc.n,
      tokens_per_s: t > acc.t ? (1000 * acc.tokens) / (t - acc.t) : null,
      wall_s: (t - this.t0) / 1000,
    };
    if (this.task.classification) rec.accuracy = acc.correct / Math.max(1, acc.sentences);
    this.log.write(rec);
    return emptyInterval(t);
  }

  /**
   * The loop: updates until `--max-update` (or `--max-epoch`), validating / saving at their
   * intervals. On divergence the log gets a `diverged` record and the plots are redrawn.
   */
  runUpdates(): void {
    const { args, isMain } = this;
    const bar = new ProgressBar({
      total: Math.max(1, args.max_update - this.startUpdates),
      stream: this.opts.stream ?? process.stderr,
      quiet: args.quiet || !isMain,
      label: 'train',
    });
    const maxEpoch = args.max_epoch;
    const valInt = args.validate_interval_updates;
    const saveInt = args.save_interval_updates;
    let acc = emptyInterval(this.now());
    this.model.train();
    try {
      while (this.numUpdates < args.max_update) {
        if (maxEpoch > 0 && this.batcher.endOfEpoch && this.batcher.state.epoch >= maxEpoch) break;
        const u = this.update();
        const n = this.numUpdates;
        bar.update(n - this.startUpdates, { loss: u.sample > 0 ? u.sum / u.sample / LN2 : 0, lr: u.lr, tokens: u.tokens });
        acc = this.logUpdate(acc, u);
        if (valInt > 0 && n % valInt === 0 && n < args.max_update) this.validate();
        else if (saveInt > 0 && n % saveInt === 0 && n < args.max_update) this.save('checkpoint_last');
      }
    } catch (e) {
      bar.finish();
      if (e instanceof TrainingDivergedError && isMain && !args.no_save) {
        this.log.write({ type: 'diverged', update: e.update, message: e.message });
        writePlots(this.dir, readMetricsLog(this.logPath), this.task.classification, this.baseline?.accuracy ?? null);
      }
      throw e;
    }
    bar.finish();
  }

  /** Validate / save at the last update if not done yet, write the `end` record and the plots, leave the job. */
  finish(): TrainResult {
    const { args, numUpdates, baseline } = this;
    if (this.validatedAt !== numUpdates) this.validate();
    else if (this.savedUpdate !== numUpdates) this.save('checkpoint_last');
    const wall = (this.now() - this.t0) / 1000;
    const v = this.lastValid;
    const bestPath = args.no_save || !existsSync(this.bestPaths.weights) ? null : this.bestPaths.weights;
    const result: TrainResult = {
      status: 'completed',
      task: args.task,
      arch: args.arch,
      parameters: this.nParams,
      updates: numUpdates,
      updates_this_run: numUpdates - this.startUpdates,
      epochs: this.batcher.state.epoch,
      wall_time_s: wall,
      train_loss: this.lastTrainLoss,
      valid_loss: v?.loss ?? null,
      valid_accuracy: v?.accuracy ?? null,
      valid_ppl: v?.ppl ?? null,
      valid_bpb: v?.bpb ?? null,
      majority_baseline: baseline?.accuracy ?? null,
      best_valid: this.best,
      checkpoint: args.no_save ? null : this.savedPath,
      best_checkpoint: bestPath,
      metrics_log: args.no_save ? null : this.logPath,
      plot: null,
    };
    this.log.write({ type: 'end', update: numUpdates, ...result, time: new Date().toISOString() });
    result.plot =
      this.isMain && !args.no_save ? writePlots(this.dir, readMetricsLog(this.logPath), this.task.classification, baseline?.accuracy ?? null) : null;
    this.dist?.close();
    return result;
  }

  private divergence(k: number, what: string): TrainingDivergedError {
    const where = this.savedPath ? `the last good checkpoint is ${this.savedPath} (update ${this.savedUpdate})` : 'no checkpoint was written yet';
    return new TrainingDivergedError(`update ${k}: ${what}; training stopped, ${where}`, k, this.savedPath);
  }
}

/**
 * Train as configured by the user's options (config + flags, snake_case; defaults filled here).
 * A data-parallel rank gets its job from `opts.startDist` (the CLI passes `src/dist`'s).
 * @throws ConfigError / DataError / CheckpointError for bad input (nothing written), or
 *   {@link TrainingDivergedError} when a loss or gradient norm becomes NaN/Inf
 */
export function train(user: Readonly<Record<string, unknown>>, opts: TrainOptions = {}): TrainResult {
  const now = opts.now ?? Date.now;
  const t0 = now();
  const p = prepare(user);
  const dist = opts.startDist?.(p.args) ?? null; // null unless launched as one rank of a job
  let release = (): void => undefined;
  if ((!dist || dist.isMain) && !p.args.no_save) {
    // rank 0 owns the save folder for the run: created, locked, cleared of interrupted writes
    makeSaveDir(p.args.save_dir);
    release = lockSaveDir(p.args.save_dir);
    removeStaleTemps(p.args.save_dir);
  }
  try {
    const run = new TrainRun(p, dist, opts, now, t0);
    run.restore();
    run.openFiles();
    run.runUpdates();
    return run.finish();
  } finally {
    release();
  }
}

/**
 * Everything {@link train} checks before it writes (options, resume checkpoint, data, model, save
 * folder and its lock), without training: the `--workers` launcher runs it once before starting
 * workers, so that a user error is reported once.
 * @throws ConfigError / DataError / CheckpointError for bad input
 */
export function checkTrainInput(user: Readonly<Record<string, unknown>>): void {
  const p = prepare(user);
  if (!p.args.no_save) checkUnlocked(p.args.save_dir);
}
