/**
 * Continuing a fairseq training run exactly: from the run's `checkpoint_last.pt` and its data
 * folder, the remaining updates with fairseq's batches in fairseq's order, fairseq's criterion,
 * gradient normalisation and clipping, fairseq Adam and the LR schedule.
 *
 * One update (fairseq's `Trainer.train_step`), for the group of `--update-freq` batches:
 *
 * 1. lr = schedule(num_updates) (update u + 1 uses lr(u));
 * 2. per batch: the summed loss (nats: `lra_cross_entropy`, `cross_entropy` or
 *    `label_smoothed_cross_entropy`) is back-propagated; sample sizes are summed (examples with
 *    `--sentence-avg`, target tokens otherwise);
 * 3. gradients × 1/sample_size; gnorm = their total 2-norm; gradients × min(1, clip/(gnorm + 1e-6));
 * 4. Adam step (decoupled weight decay); the logged loss is Σloss / sample_size / ln 2.
 *
 * The position in the data comes from the checkpoint's train iterator (epoch to run next, batches
 * of it already done); epochs run until `--max-epoch` / `--max-update`. With `validate`, the valid
 * split is evaluated (`fairseq-eval.ts`) after the updates where fairseq's `validate_and_save`
 * validates.
 */
import { join } from 'node:path';
import { backward } from '../autograd/engine.js';
import type { Batch } from '../data/batch.js';
import { epochBatches, groupUpdates, trainBatches } from '../data/fairseq/order.js';
import { CheckpointError } from '../io/errors.js';
import { lraCrossEntropy, type LRAModel } from '../mega/models/lra.js';
import type { Module } from '../nn/module.js';
import type { FloatDType } from '../tensor/dtype.js';
import { cast } from '../tensor/kernels.js';
import { fromStorage, type Tensor } from '../tensor/tensor.js';
import { ConfigError } from './errors.js';
import { fairseqRestorePath, readFairseqResume, resumeAdam, type FairseqResume } from './fairseq-resume.js';
import { evaluateFairseq } from './fairseq-eval.js';
import { loadFairseqTrainData } from './fairseq-train-data.js';
import { MetricsLog } from './metrics-log.js';
import { Adam, clipGradNorm, parseBetas } from './optim.js';
import { makeScheduleFromArgs } from './schedule.js';
import { classificationForward, countCorrect } from './tasks/common.js';
import { lmTask } from './tasks/lm.js';
import { translationTask } from './tasks/translation.js';
import type { StepOutput } from './tasks/types.js';

/** One update as fairseq logs it with `--log-interval 1`. */
export interface ContinueRecord {
  type: 'train';
  /** Update number (1-based, counting the updates before the checkpoint). */
  update: number;
  /** Epoch of the update. */
  epoch: number;
  /** Base-2 loss of the update (Σloss / sample size / ln 2). */
  loss: number;
  /** Total gradient norm before clipping. */
  gnorm: number;
  /** Learning rate used by the update. */
  lr: number;
  /** Classification: percent of examples whose argmax class is the target. */
  accuracy?: number;
  /** Label-smoothed translation: the plain NLL in base 2 per target token. */
  nll_loss?: number;
  /** Sequence tasks: 2^nll_loss (2^loss without label smoothing). */
  ppl?: number;
  /** Example ids of each batch of the update (fairseq order within the batch). */
  batches: number[][];
}

/** One validation, at the points where fairseq validates (losses in base 2). */
export interface ValidRecord {
  type: 'valid';
  /** Updates done when it ran. */
  update: number;
  epoch: number;
  loss: number;
  accuracy?: number;
  nll_loss?: number;
  ppl?: number;
}

/** Options of `continueFairseq`. */
export interface ContinueOptions {
  /** The data folder (fairseq's positional DATA). */
  data: string;
  /** The checkpoint to resume (`SAVE/checkpoint_last.pt` or `--restore-file`), or an already read one. */
  checkpoint: string | FairseqResume;
  /**
   * The run's fairseq namespace (snake_case names, as the command line gives them); missing names
   * take the checkpoint's stored args.
   */
  args?: Record<string, unknown>;
  /** Called after every update. */
  onUpdate?: (r: ContinueRecord) => void;
  /** Called before clipping with the normalised gradients (parameters in fairseq's order) and their norm. */
  onGradients?: (params: readonly Tensor[], gnorm: number) => void;
  /** Stop after this many updates of this run (tests), besides `--max-update` / `--max-epoch`. */
  limit?: number;
  /** Validate the `valid` split where fairseq does (see `validatesAfter`). */
  validate?: boolean;
  /** Called after every validation. */
  onValid?: (v: ValidRecord) => void;
}

/** Result of `continueFairseq`. */
export interface ContinueResult {
  records: ContinueRecord[];
  /** Validations run (with `validate`). */
  valid: ValidRecord[];
  /** The model after the last update (train mode). */
  model: Module;
  /** The optimizer after the last update (parameters in fairseq's order). */
  optimizer: Adam;
  /** Updates done in total. */
  numUpdates: number;
  /** Where the train iterator stands after the run. */
  iterator: { epoch: number; iterationsInEpoch: number };
}

const LN2 = Math.LN2;

/** lra-image's forward: the f32 pixels cast to the model's dtype. */
function imageForward(model: Module, b: Batch, dtype: FloatDType): StepOutput {
  if (b.kind !== 'values') throw new ConfigError('lra-image: expected a batch of pixel values');
  const x = cast(fromStorage(b.srcValues, [b.B, b.L]), dtype); // B × L
  const logits = (model as LRAModel).forward(x, fromStorage(b.srcLengths, [b.B]));
  return {
    loss: lraCrossEntropy(logits, fromStorage(b.labels, [b.B])),
    sampleSize: b.B,
    nSentences: b.B,
    ntokens: b.ntokens,
    nCorrect: countCorrect(logits, b.labels),
  };
}

/** The criterion each task's continuation computes (fairseq's names). */
const CRITERIA: Readonly<Record<string, readonly string[]>> = {
  'lra-text': ['lra_cross_entropy'],
  'lra-image': ['lra_cross_entropy'],
  language_modeling: ['cross_entropy', 'adaptive_loss'],
  translation: ['label_smoothed_cross_entropy', 'cross_entropy'],
};

function forwardOf(task: string, args: Record<string, unknown>, dtype: FloatDType): (model: Module, batch: Batch) => StepOutput {
  const crit = args.criterion;
  if (CRITERIA[task] && typeof crit === 'string' && !CRITERIA[task].includes(crit)) {
    throw new ConfigError(`--criterion ${crit}: training continuation of --task ${task} supports ${CRITERIA[task].join(', ')}`);
  }
  if (crit === 'cross_entropy' && task === 'translation') args = { ...args, label_smoothing: 0 };
  switch (task) {
    case 'lra-text':
      return (m, b) => classificationForward(m, b);
    case 'lra-image':
      return (m, b) => imageForward(m, b, dtype);
    case 'language_modeling':
      return (m, b) => lmTask.forward(m, b, args);
    case 'translation':
      return (m, b) => translationTask.forward(m, b, args);
    default:
      throw new ConfigError(`--task ${task}: training continuation supports lra-text, lra-image, language_modeling, translation`);
  }
}

const intArg = (a: Record<string, unknown>, k: string, d: number): number => (typeof a[k] === 'number' ? (a[k] as number) : d);

/**
 * Whether fairseq validates after update `numUpdates` (`validate_and_save`): at a save point
 * (`--save-interval-updates`, or an epoch end every `--save-interval` epochs), at an epoch end
 * every `--validate-interval` epochs, or every `--validate-interval-updates`; never with
 * `--disable-validation`.
 */
export function validatesAfter(args: Record<string, unknown>, numUpdates: number, epoch: number, endOfEpoch: boolean): boolean {
  if (args.disable_validation === true) return false;
  const saveUpd = intArg(args, 'save_interval_updates', 0),
    validUpd = intArg(args, 'validate_interval_updates', 0);
  const doSave =
    (saveUpd > 0 && numUpdates > 0 && numUpdates % saveUpd === 0 && numUpdates >= intArg(args, 'validate_after_updates', 0)) ||
    (endOfEpoch && epoch % intArg(args, 'save_interval', 1) === 0);
  return (!endOfEpoch && doSave) || (endOfEpoch && epoch % intArg(args, 'validate_interval', 1) === 0) || (validUpd > 0 && numUpdates % validUpd === 0);
}

/**
 * Runs the remaining updates of a fairseq training run (see the module comment).
 * @throws CheckpointError / DataError / ConfigError for a bad checkpoint, data folder or options
 */
export function continueFairseq(o: ContinueOptions): ContinueResult {
  const r = typeof o.checkpoint === 'string' ? readFairseqResume(o.checkpoint) : o.checkpoint;
  const args: Record<string, unknown> = { ...r.args, ...(o.args ?? {}) };
  const task = String(args.task);
  const forward = forwardOf(task, args, r.params[0]?.dtype === 'f64' ? 'f64' : 'f32');
  if (args.criterion === 'lra_cross_entropy' && args.sentence_avg === false)
    throw new ConfigError('--criterion lra_cross_entropy without --sentence-avg is not supported (the release always sets it)');
  const data = loadFairseqTrainData(o.data, args);
  const schedule = makeScheduleFromArgs(args);
  // --reset-optimizer: fresh Adam and update count; --reset-dataloader: the iterator from epoch 1
  const resetOpt = args.reset_optimizer === true;
  const optimizer = resetOpt
    ? new Adam(r.params, {
        lr: 0,
        betas: parseBetas((args.adam_betas as string) ?? '(0.9, 0.999)'),
        eps: (args.adam_eps as number) ?? 1e-8,
        weightDecay: (args.weight_decay as number) ?? 0,
      })
    : resumeAdam(r, args);
  const startIter = args.reset_dataloader === true ? { epoch: 1, iterationsInEpoch: 0, shuffle: true } : r.iterator;
  const model = r.imported.model;
  model.train();
  const params = r.params;
  const clip = typeof args.clip_norm === 'number' ? args.clip_norm : 0;
  const maxUpdate = typeof args.max_update === 'number' && args.max_update > 0 ? args.max_update : Infinity;
  const maxEpoch = typeof args.max_epoch === 'number' && args.max_epoch > 0 ? args.max_epoch : Infinity;
  const freqs = Array.isArray(args.update_freq) ? (args.update_freq as number[]) : [typeof args.update_freq === 'number' ? args.update_freq : 1];
  const seed = data.order.seed;
  // --curriculum N: the first N epochs keep the batches in order
  const curriculum = typeof args.curriculum === 'number' ? args.curriculum : 0;

  let numUpdates = resetOpt ? 0 : r.numUpdates;
  let epoch = startIter.epoch;
  let offset = startIter.iterationsInEpoch;
  const records: ContinueRecord[] = [];
  const valid: ValidRecord[] = [];
  const limit = o.limit ?? Infinity;
  const validate = (ep: number): void => {
    model.eval();
    const v = evaluateFairseq({ imp: r.imported, args, path: r.path }, o.data, 'valid');
    model.train();
    const rec: ValidRecord = { type: 'valid', update: numUpdates, epoch: ep, loss: v.loss };
    if (v.accuracy !== undefined) rec.accuracy = v.accuracy;
    if (v.nll_loss !== undefined) rec.nll_loss = v.nll_loss;
    if (v.ppl !== undefined) rec.ppl = v.ppl;
    valid.push(rec);
    o.onValid?.(rec);
  };
  let stop = numUpdates >= maxUpdate;
  while (!stop && epoch <= maxEpoch) {
    const freq = freqs[Math.min(epoch, freqs.length) - 1];
    const ep = data.epoch(epoch);
    const batches = epochBatches(trainBatches(data.order, ep.sizes), seed, epoch, startIter.shuffle && epoch > curriculum).slice(offset);
    const groups = groupUpdates(batches, freq);
    let done = offset;
    for (const [gi, group] of groups.entries()) {
      const lr = schedule.lr(numUpdates);
      optimizer.setLr(lr);
      optimizer.zeroGrad();
      let sum = 0,
        sample = 0,
        nll = 0,
        correct = 0,
        sentences = 0;
      for (const ids of group) {
        const out = forward(model, ep.collate(ids));
        backward(out.loss);
        const l = out.loss.item();
        sum += l;
        nll += out.nll ?? l;
        correct += out.nCorrect ?? 0;
        sentences += out.nSentences;
        sample += out.sampleSize;
      }
      const scale = sample > 0 ? 1 / sample : 1;
      let gnorm: number;
      if (o.onGradients) {
        o.onGradients(params, clipGradNorm(params, 0, scale));
        gnorm = clipGradNorm(params, clip);
      } else gnorm = clipGradNorm(params, clip, scale);
      optimizer.step();
      numUpdates++;
      done += group.length;
      const rec: ContinueRecord = { type: 'train', update: numUpdates, epoch, loss: sample > 0 ? sum / sample / LN2 : 0, gnorm, lr, batches: group };
      if (task.startsWith('lra-')) rec.accuracy = (100 * correct) / Math.max(1, sentences);
      else {
        const nllB2 = sample > 0 ? nll / sample / LN2 : 0;
        if (task === 'translation') rec.nll_loss = nllB2;
        rec.ppl = 2 ** nllB2;
      }
      records.push(rec);
      o.onUpdate?.(rec);
      if (o.validate && validatesAfter(args, numUpdates, epoch, gi === groups.length - 1)) validate(epoch);
      if (numUpdates >= maxUpdate || records.length >= limit) {
        stop = true;
        break;
      }
    }
    if (stop && done < offset + batches.length) {
      offset = done;
      break;
    }
    epoch++;
    offset = 0;
  }
  return { records, valid, model, optimizer, numUpdates, iterator: { epoch, iterationsInEpoch: offset } };
}

/** Result of `runFairseqContinuation`. */
export interface ContinuationRun extends ContinueResult {
  /** The checkpoint resumed. */
  checkpoint: string;
  /** The metrics file written. */
  metricsPath: string;
}

/**
 * `mega train DATA ...` on a save folder holding a fairseq checkpoint: resumes from
 * `fairseqRestorePath(args)` and appends one `{"type":"train","update","epoch","loss","gnorm","lr"}`
 * record (plus `accuracy`, or `nll_loss` / `ppl`, as fairseq logs them) per update, and a
 * `{"type":"valid",...}` record for every validation fairseq would run to `SAVE/metrics.jsonl` (fairseq's `--log-interval 1` numbers, loss in base 2).
 * @param args the run's fairseq namespace (`data`, `save_dir`, `restore_file`, stopping and
 *   optimisation options); names it lacks take the checkpoint's stored values
 * @throws CheckpointError when there is no checkpoint to resume; see `continueFairseq`
 */
export function runFairseqContinuation(
  args: Record<string, unknown>,
  onUpdate?: (r: ContinueRecord) => void,
  onValid?: (v: ValidRecord) => void,
): ContinuationRun {
  const ck = fairseqRestorePath(args);
  if (!ck) {
    const save = typeof args.save_dir === 'string' ? args.save_dir : 'checkpoints';
    throw new CheckpointError(
      `no fairseq checkpoint to resume: ` +
        `${typeof args.restore_file === 'string' && args.restore_file !== 'checkpoint_last.pt' ? args.restore_file : join(save, 'checkpoint_last.pt')} ` +
        `does not exist`,
    );
  }
  if (typeof args.data !== 'string') throw new ConfigError('mega train: the data folder (DATA) is missing');
  const save = typeof args.save_dir === 'string' && args.save_dir !== '' ? args.save_dir : 'checkpoints';
  const metricsPath = join(save, 'metrics.jsonl');
  let log: MetricsLog | null = null; // opened at the first update: bad input writes nothing
  const res = continueFairseq({
    data: args.data,
    checkpoint: ck,
    args,
    validate: true,
    onValid: (v) => {
      log ??= new MetricsLog(metricsPath);
      log.write({ ...v });
      onValid?.(v);
    },
    onUpdate: (r) => {
      log ??= new MetricsLog(metricsPath);
      const { batches: _ids, ...rec } = r;
      log.write(rec);
      onUpdate?.(r);
    },
  });
  return { ...res, checkpoint: ck, metricsPath };
}
