/**
 * The training loop of `mega train` (spec §9), as fairseq runs it:
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
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { MegaError } from '../errors.js';
import { join, resolve as resolvePath } from 'node:path';
import { backward, noGrad } from '../autograd/engine.js';
import { Batcher, type Dataset, type Example } from '../data/batch.js';
import { writeFileAtomic } from '../io/atomic.js';
import { CheckpointError } from '../io/errors.js';
import type { TaskInfo } from '../mega/models/common.js';
import type { Module } from '../nn/module.js';
import { setNumThreads } from '../tensor/backends/cpu/matmul.js';
import { scalar } from '../tensor/create.js';
import { binary } from '../tensor/kernels.js';
import { defaultGenerator, manualSeed } from '../tensor/random.js';
import { resolveTrainArgs, type TrainArgs } from './args.js';
import { buildFromModelArgs, resolveModelArgs } from './arch.js';
import { checkpointPaths, loadCheckpoint, loadTrainerState, saveCheckpoint, type LoadedCheckpoint, type ModelSpec, type TrainerState } from './checkpoint.js';
import { ConfigError } from './errors.js';
import { MetricsLog, readMetricsLog, type MetricsRecord } from './metrics-log.js';
import { Adam, clipGradNorm, parseBetas } from './optim.js';
import { renderCurvesSvg } from './plot.js';
import { ProgressBar, type ProgressStream } from './progress.js';
import { makeScheduleFromArgs, type LRSchedule } from './schedule.js';
import { getTask, type Split, type TrainTask } from './tasks/index.js';
import { DIST_RUN_ONLY } from '../dist/options.js';
import { startDistributed, type DistTraining } from '../dist/training.js';

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
export function evaluate(model: Module, task: TrainTask, data: Dataset<Example>, args: Readonly<Record<string, unknown>>, batchSize: number, dist: DistTraining | null = null): EvalMetrics {
  const wasTraining = model.training;
  model.eval();
  let loss = 0, nll = 0, sample = 0, correct = 0, sentences = 0, tokens = 0;
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
  let best = -1, bestN = -1;
  for (const [l, n] of [...counts].sort((a, b) => a[0] - b[0])) if (n > bestN) [best, bestN] = [l, n];
  let hit = 0;
  for (let i = 0; i < valid.length; i++) if (valid.get(i).label === best) hit++;
  return { label: best, accuracy: hit / valid.length };
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
  metrics_log: string;
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

function sameJson(a: unknown, b: unknown): string | null {
  const ra = a as Record<string, unknown>, rb = b as Record<string, unknown>;
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
    throw new ConfigError(`${args.save_dir} already holds checkpoint_last.safetensors: pass --resume to continue it, --overwrite to start over, or another --save-dir`);
  }
  if (typeof args.threads === 'number') setNumThreads(args.threads);
  const task = getTask(args.task);
  const defaults = resolveModelArgs(args.arch, args.task, args);
  const numClasses = task.numClasses?.(args, defaults);
  const modelArgs = resolveModelArgs(args.arch, args.task, args, numClasses);
  if (args.task === 'lm' && typeof args.max_tokens === 'number') {
    args.batch_size = Math.max(1, Math.floor(args.max_tokens / (args.tokens_per_sample as number)));
  }
  const data = task.load(args, ['train', 'valid'], modelArgs);
  const spec: ModelSpec = { task: args.task, arch: args.arch, modelArgs, taskInfo: { ...(data.taskInfo ?? {}), ...(data.numClasses ? { num_classes: data.numClasses } : {}) } };
  if (resumeFrom) {
    const diff = sameJson(spec.modelArgs, resumeFrom.ckpt.spec.modelArgs) ?? sameJson(spec.taskInfo, resumeFrom.ckpt.spec.taskInfo);
    if (diff) throw new ConfigError(`--resume: model setting "${diff}" differs from the checkpoint's (model settings cannot change on resume)`);
  }
  manualSeed(args.seed);
  const model = buildFromModelArgs(modelArgs, data.taskInfo as TaskInfo | null, defaultGenerator);
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
  writeFileAtomic(curves, renderCurvesSvg(
    [{ name: 'train loss', points: pts('train', 'loss') }, { name: 'valid loss', points: pts('valid', 'loss') }],
    { title: 'Training curves', xLabel: 'update', yLabel: 'loss (base 2)' },
  ));
  if (classification) {
    const acc = pts('valid', 'accuracy').map(([x, y]): [number, number] => [x, 100 * y]);
    const series = [{ name: 'train accuracy', points: pts('train', 'accuracy').map(([x, y]): [number, number] => [x, 100 * y]) }, { name: 'valid accuracy', points: acc }];
    if (baseline !== null && acc.length) {
      const xs = [...pts('train', 'accuracy'), ...acc].map((p) => p[0]);
      series.push({ name: 'majority class', points: [[Math.min(...xs), 100 * baseline], [Math.max(...xs), 100 * baseline]] });
    }
    writeFileAtomic(join(dir, 'accuracy.svg'), renderCurvesSvg(series, { title: 'Accuracy', xLabel: 'update', yLabel: 'accuracy (%)' }));
  }
  return curves;
}

function pct(x: number): string {
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

/**
 * Train as configured by the user's options (config + flags, snake_case; defaults filled here).
 * @throws ConfigError / DataError / CheckpointError for bad input (nothing written), or
 *   {@link TrainingDivergedError} when a loss or gradient norm becomes NaN/Inf
 */
export function train(user: Readonly<Record<string, unknown>>, opts: TrainOptions = {}): TrainResult {
  const now = opts.now ?? Date.now;
  const t0 = now();
  const p = prepare(user);
  const { args, task, model, spec } = p;
  const dist = startDistributed(args); // null unless launched as one rank of a job (src/dist)
  const isMain = !dist || dist.isMain; // only rank 0 prints and writes files
  const stream = opts.stream ?? process.stderr;
  const say = (s: string): void => {
    if (!args.quiet && isMain) stream.write(`${stream.isTTY ? '\r\x1b[K' : ''}${s}\n`);
  };
  const params = model.parameters();
  const optimizer = new Adam(params, { lr: 0, betas: parseBetas(args.adam_betas as string), eps: args.adam_eps as number, weightDecay: args.weight_decay as number });
  const schedule: LRSchedule = makeScheduleFromArgs(args);
  const batcher = new Batcher(p.train, { batchSize: args.batch_size, seed: args.seed });
  let numUpdates = 0;
  let best: TrainerState['best'] = null;
  let wallBefore = 0;
  let lastTrainLoss: number | null = null;
  let resumed: TrainerState | null = null;
  if (p.resumeFrom) {
    const { ckpt, statePath } = p.resumeFrom;
    try {
      model.loadStateDict(ckpt.tensors);
    } catch (e) {
      throw new CheckpointError(`${ckpt.path}: weights do not fit the model (${(e as Error).message})`);
    }
    const st = loadTrainerState(statePath, ckpt, optimizer);
    try {
      batcher.setState(st.data);
    } catch (e) {
      throw new CheckpointError(`${statePath}: data position does not fit the data (${(e as Error).message})`);
    }
    defaultGenerator.setState(st.rng);
    numUpdates = st.numUpdates;
    best = st.best;
    wallBefore = st.wallTime;
    lastTrainLoss = st.lastTrainLoss;
    resumed = st;
  }
  dist?.attach(model, args, resumed); // same settings everywhere, replicas = rank 0's, per-rank dropout stream
  const startUpdates = numUpdates;
  const metric = (args.best_checkpoint_metric as string | undefined) ?? (task.classification ? 'accuracy' : 'loss');
  const maximize = metric === 'accuracy';
  if (metric === 'accuracy' && !task.classification) throw new ConfigError(`--best-checkpoint-metric accuracy: task ${task.name} has no accuracy (use loss)`);
  const baseline = task.classification ? majorityBaseline(p.train, p.valid) : null;

  // ---- from here on files are written ----
  const dir = args.save_dir;
  mkdirSync(dir, { recursive: true });
  const last = checkpointPaths(dir, 'checkpoint_last');
  const bestPaths = checkpointPaths(dir, 'checkpoint_best');
  const logPath = join(dir, 'metrics.jsonl');
  if (isMain && p.resumeFrom) truncateLog(logPath, numUpdates);
  else if (isMain && args.overwrite) for (const f of [last.weights, last.state, bestPaths.weights, bestPaths.state]) rmSync(f, { force: true });
  const log = isMain ? new MetricsLog(logPath, !p.resumeFrom) : ({ write: () => undefined } as unknown as MetricsLog);
  const trainArgsMeta = { ...args, __user: p.userArgs };
  const nParams = model.numParameters();
  log.write({ type: 'start', update: numUpdates, task: args.task, arch: args.arch, parameters: nParams, resumed: p.resumeFrom !== null, train_examples: p.train.length, valid_examples: p.valid.length, majority_baseline: baseline?.accuracy ?? null, time: new Date().toISOString() });
  say(`mega train: task ${args.task}, arch ${args.arch} (${nParams.toLocaleString('en-US')} parameters), data ${p.dataSource}`);
  say(`train ${p.train.length} examples (${batcher.batchesPerEpoch} batches of ${args.batch_size}), valid ${p.valid.length}${baseline ? `, majority-class baseline ${pct(baseline.accuracy)}` : ''}`);
  if (p.resumeFrom) say(`resumed from ${p.resumeFrom.ckpt.path} at update ${numUpdates}`);

  let savedPath: string | null = p.resumeFrom ? last.weights : null;
  let savedUpdate = p.resumeFrom ? numUpdates : -1;
  const save = (name: 'checkpoint_last' | 'checkpoint_best'): string | null => {
    if (args.no_save) return null;
    const rankRng = dist?.rankRngStates(); // a collective: every rank saves, rank 0 writes
    const state = {
      numUpdates, data: batcher.state, rng: defaultGenerator.getState(), schedule: { name: schedule.name, nextLr: schedule.lr(numUpdates) },
      best, wallTime: wallBefore + (now() - t0) / 1000, userArgs: p.userArgs, lastTrainLoss, ...(rankRng ? { rankRng } : {}),
    };
    const path = isMain ? saveCheckpoint(dir, name, model, optimizer, spec, trainArgsMeta, state) : checkpointPaths(dir, name).weights;
    if (name === 'checkpoint_last') {
      savedPath = path;
      savedUpdate = numUpdates;
    }
    return path;
  };
  let lastValid: EvalMetrics | null = null;
  let validatedAt = -1;
  const validate = (): void => {
    lastValid = evaluate(model, task, p.valid, args, args.batch_size_valid as number, dist);
    validatedAt = numUpdates;
    const v = maximize ? lastValid.accuracy! : lastValid.loss;
    const improved = best === null || (maximize ? v > best.value : v < best.value);
    if (improved) best = { metric, value: v, update: numUpdates };
    log.write({ type: 'valid', update: numUpdates, epoch: batcher.state.epoch, ...lastValid, best: best!.value });
    say(`valid | update ${numUpdates} | ${formatMetrics(lastValid)} | best ${metric} ${maximize ? pct(best!.value) : best!.value.toFixed(4)}`);
    save('checkpoint_last');
    if (improved) save('checkpoint_best');
  };

  const bar = new ProgressBar({ total: Math.max(1, args.max_update - startUpdates), stream, quiet: (args.quiet as boolean) || !isMain, label: 'train' });
  const maxEpoch = args.max_epoch as number;
  const updateFreq = args.update_freq;
  const clip = args.clip_norm as number;
  const valInt = args.validate_interval_updates as number;
  const saveInt = args.save_interval_updates as number;
  const logInt = args.log_interval as number;
  let acc = { loss: 0, sample: 0, correct: 0, sentences: 0, tokens: 0, gnorm: 0, n: 0, t: now() };
  model.train();
  try {
    while (numUpdates < args.max_update) {
      if (maxEpoch > 0 && batcher.endOfEpoch && batcher.state.epoch >= maxEpoch) break;
      const k = numUpdates + 1;
      const lr = schedule.lr(numUpdates);
      optimizer.setLr(lr);
      optimizer.zeroGrad();
      let sum = 0, sample = 0, correct = 0, sentences = 0, tokens = 0;
      for (let f = 0; f < updateFreq; f++) {
        const batch = dist ? dist.shard(batcher.next()) : batcher.next();
        if (batch.B === 0) continue; // data parallel: a batch smaller than the world leaves some ranks idle
        const out = task.forward(model, batch, args);
        const l = out.loss.item();
        if (!dist && !Number.isFinite(l)) throw divergence(k, `the loss is ${l}`);
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
        if (!Number.isFinite(sum)) throw divergence(k, `the loss is ${sum}`);
      }
      if (sample > 0) {
        const s = scalar(1 / sample, 'f32');
        for (const t of params) if (t.grad) t.grad = binary(t.grad, t.grad.dtype === 'f32' ? s : scalar(1 / sample, t.grad.dtype), 'mul');
      }
      const gnorm = clipGradNorm(params, clip);
      if (!Number.isFinite(gnorm)) throw divergence(k, `the gradient norm is ${gnorm}`);
      optimizer.step();
      numUpdates = k;
      opts.hooks?.afterUpdate?.(numUpdates, model);
      dist?.afterUpdate(numUpdates);
      const lossB2 = sample > 0 ? sum / sample / LN2 : 0;
      acc.loss += sum;
      acc.sample += sample;
      acc.correct += correct;
      acc.sentences += sentences;
      acc.tokens += tokens;
      acc.gnorm += gnorm;
      acc.n++;
      bar.update(numUpdates - startUpdates, { loss: lossB2, lr, tokens });
      if (acc.n >= logInt || numUpdates === args.max_update) {
        const t = now();
        lastTrainLoss = acc.sample > 0 ? acc.loss / acc.sample / LN2 : null;
        const rec: MetricsRecord = {
          type: 'train', update: numUpdates, epoch: batcher.state.epoch, loss: lastTrainLoss, lr, gnorm: acc.gnorm / acc.n,
          tokens_per_s: t > acc.t ? (1000 * acc.tokens) / (t - acc.t) : null, wall_s: (t - t0) / 1000,
        };
        if (task.classification) rec.accuracy = acc.correct / Math.max(1, acc.sentences);
        log.write(rec);
        acc = { loss: 0, sample: 0, correct: 0, sentences: 0, tokens: 0, gnorm: 0, n: 0, t };
      }
      if (valInt > 0 && numUpdates % valInt === 0 && numUpdates < args.max_update) validate();
      else if (saveInt > 0 && numUpdates % saveInt === 0 && numUpdates < args.max_update) save('checkpoint_last');
    }
  } catch (e) {
    bar.finish();
    if (e instanceof TrainingDivergedError && isMain) {
      log.write({ type: 'diverged', update: e.update, message: e.message });
      writePlots(dir, readMetricsLog(logPath), task.classification, baseline?.accuracy ?? null);
    }
    throw e;
  }
  bar.finish();
  if (validatedAt !== numUpdates) validate();
  else if (savedUpdate !== numUpdates) save('checkpoint_last');
  const wall = (now() - t0) / 1000;
  const v = lastValid as EvalMetrics | null;
  const bestPath = args.no_save || !existsSync(bestPaths.weights) ? null : bestPaths.weights;
  const result: TrainResult = {
    status: 'completed', task: args.task, arch: args.arch, parameters: nParams, updates: numUpdates, updates_this_run: numUpdates - startUpdates,
    epochs: batcher.state.epoch, wall_time_s: wall, train_loss: lastTrainLoss, valid_loss: v?.loss ?? null, valid_accuracy: v?.accuracy ?? null,
    valid_ppl: v?.ppl ?? null, valid_bpb: v?.bpb ?? null, majority_baseline: baseline?.accuracy ?? null, best_valid: best,
    checkpoint: args.no_save ? null : savedPath, best_checkpoint: bestPath, metrics_log: logPath, plot: null,
  };
  log.write({ type: 'end', update: numUpdates, ...result, time: new Date().toISOString() });
  result.plot = isMain ? writePlots(dir, readMetricsLog(logPath), task.classification, baseline?.accuracy ?? null) : null;
  dist?.close();
  return result;

  function divergence(k: number, what: string): TrainingDivergedError {
    const where = savedPath ? `the last good checkpoint is ${savedPath} (update ${savedUpdate})` : 'no checkpoint was written yet';
    return new TrainingDivergedError(`update ${k}: ${what}; training stopped, ${where}`, k, savedPath);
  }
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
export function evaluateCheckpoint(req: EvalRequest): EvalMetrics & { task: string; arch: string; update: number; split: Split; checkpoint: string; data: string } {
  const ckpt = loadCheckpoint(req.checkpoint);
  const args: Record<string, unknown> = { ...ckpt.trainArgs, ...(req.overrides ?? {}) };
  delete args.__user;
  if (typeof args.threads === 'number') setNumThreads(args.threads);
  const task = getTask(ckpt.spec.task as TrainArgs['task']);
  const data = task.load(args, [req.split], ckpt.spec.modelArgs);
  const ti = ckpt.spec.taskInfo;
  if (data.taskInfo && data.taskInfo.dictionary_size !== ti.dictionary_size) {
    throw new ConfigError(`${req.checkpoint}: the data's vocabulary (${data.taskInfo.dictionary_size}) differs from the checkpoint's (${String(ti.dictionary_size)})`);
  }
  const model = loadModelForEval(ckpt);
  const bs = (req.overrides?.batch_size_valid as number | undefined) ?? (args.batch_size_valid as number | undefined) ?? (args.batch_size as number);
  const m = evaluate(model, task, data.splits[req.split]!, args, bs);
  return { task: ckpt.spec.task, arch: ckpt.spec.arch, update: ckpt.update, split: req.split, checkpoint: req.checkpoint, data: data.source, ...m };
}

/** Read a file as text if it exists (helper for tests and the CLI). */
export function readTextIfExists(path: string): string | null {
  return existsSync(path) ? readFileSync(path, 'utf8') : null;
}
