/**
 * Resuming a fairseq training run from its `checkpoint_last.pt`: the model, fairseq Adam's
 * per-parameter state, the LR schedule position, the train iterator's position and the best
 * metric, so that mega-ts continues where fairseq stopped.
 *
 * What a fairseq (Mega release) checkpoint holds besides `args` and `model`:
 *
 * - `last_optimizer_state`: torch's `Optimizer.state_dict()` of fairseq Adam: `state[i] =
 *   {step, exp_avg, exp_avg_sq}` and one param group `{lr, betas, eps, weight_decay, params: [0..n-1]}`.
 *   Index i is the i-th tensor of `model.parameters()` (parameters trained, shared tensors once):
 *   module registration order, which is also the order of the parameter names in `model` (the
 *   state dict lists a module's own parameters, then its buffers, then its children).
 * - `optimizer_history[-1]`: `{criterion_name, optimizer_name, lr_scheduler_state: {lr}, num_updates}`.
 * - `extra_state`: `train_iterator = {epoch, iterations_in_epoch, shuffle}` (the epoch to run next and
 *   how many of its batches are done), `best` (best validation metric so far), `val_loss`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointError } from '../io/errors.js';
import { pyToPlain, readFairseqCheckpoint, type FairseqCheckpoint } from '../io/pt.js';
import { isRawTensor, type RawTensor } from '../io/raw.js';
import type { FloatDType } from '../tensor/dtype.js';
import { fromStorage, type Tensor } from '../tensor/tensor.js';
import { importFairseq, isIgnoredEntry, type ImportedModel } from './fairseq-import.js';
import { Adam, parseBetas } from './optim.js';

/** Where the train iterator stands (`extra_state.train_iterator`). */
export interface FairseqIteratorState {
  /** The epoch to run next (1-based). */
  epoch: number;
  /** Batches of that epoch already consumed. */
  iterationsInEpoch: number;
  /** Whether batches are shuffled per epoch. */
  shuffle: boolean;
}

/** Everything needed to continue a fairseq run. */
export interface FairseqResume {
  /** The checkpoint file. */
  path: string;
  /** The model with the checkpoint's weights (eval mode: the caller switches to train). */
  imported: ImportedModel;
  /** The stored training namespace (`args`). */
  args: Record<string, unknown>;
  /** Trained parameters in fairseq's optimizer order (index i ↔ `last_optimizer_state.state[i]`). */
  params: Tensor[];
  /** The state-dict name of each of `params`. */
  paramNames: string[];
  /** Optimizer updates done. */
  numUpdates: number;
  /** The stored scheduler LR (`lr_scheduler_state.lr`). */
  schedulerLr: number | null;
  /** Train iterator position. */
  iterator: FairseqIteratorState;
  /** Best validation metric so far (`extra_state.best`), null if absent. */
  best: number | null;
  /** `last_optimizer_state` as plain records (tensors as RawTensor). */
  optimizerState: { state: Record<string, { step: number; exp_avg: RawTensor; exp_avg_sq: RawTensor }>; paramGroup: Record<string, unknown> };
}

function rec(v: unknown, what: string, label: string): Record<string, unknown> {
  if (!v || typeof v !== 'object' || Array.isArray(v))
    throw new CheckpointError(`${label}: ${what} is missing or not a dict (expected a fairseq training checkpoint)`);
  return v as Record<string, unknown>;
}

function int(v: unknown, what: string, label: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new CheckpointError(`${label}: ${what} is ${JSON.stringify(v)}, expected a non-negative integer`);
  return v;
}

/**
 * The trained parameters of `imported` in fairseq's optimizer order: the checkpoint's state-dict
 * names in file order, parameters only (buffers and bookkeeping entries skipped), each tensor once.
 */
export function fairseqParamOrder(ck: FairseqCheckpoint, imported: ImportedModel): { params: Tensor[]; names: string[] } {
  const own = new Map(imported.model.namedParameters());
  const seen = new Set<Tensor>();
  const params: Tensor[] = [];
  const names: string[] = [];
  for (const k of Object.keys(ck.model)) {
    if (isIgnoredEntry(k)) continue;
    const t = own.get(k);
    if (!t || seen.has(t)) continue;
    seen.add(t);
    params.push(t);
    names.push(k);
  }
  return { params, names };
}

/**
 * Reads a fairseq training checkpoint for continuation.
 * @throws CheckpointError when the file is not a fairseq training checkpoint or its optimizer state
 *   does not fit the model (count or shapes)
 */
export function readFairseqResume(path: string, { dtype = 'f32' }: { dtype?: FloatDType } = {}): FairseqResume {
  const ck = readFairseqCheckpoint(path);
  const imported = importFairseq(ck, { dtype, label: path });
  const raw = pyToPlain(ck.raw) as Record<string, unknown>;
  const los = rec(raw.last_optimizer_state, "'last_optimizer_state'", path);
  const hist = raw.optimizer_history;
  if (!Array.isArray(hist) || hist.length === 0)
    throw new CheckpointError(`${path}: 'optimizer_history' is missing or empty (expected a fairseq training checkpoint)`);
  const last = rec(hist[hist.length - 1], 'optimizer_history[-1]', path);
  if (last.optimizer_name !== undefined && last.optimizer_name !== 'FairseqAdam') {
    throw new CheckpointError(`${path}: optimizer ${JSON.stringify(last.optimizer_name)}; only fairseq Adam state can be continued`);
  }
  const numUpdates = int(last.num_updates, 'optimizer_history[-1].num_updates', path);
  const sched = last.lr_scheduler_state as Record<string, unknown> | undefined;
  const schedulerLr = typeof sched?.lr === 'number' ? sched.lr : null;
  const extra = rec(raw.extra_state, "'extra_state'", path);
  const ti = rec(extra.train_iterator, 'extra_state.train_iterator', path);
  const iterator: FairseqIteratorState = {
    epoch: int(ti.epoch, 'train_iterator.epoch', path),
    iterationsInEpoch: int(ti.iterations_in_epoch ?? 0, 'train_iterator.iterations_in_epoch', path),
    shuffle: ti.shuffle !== false,
  };
  if (iterator.epoch < 1) throw new CheckpointError(`${path}: train_iterator.epoch is 0, expected >= 1`);
  const best = typeof extra.best === 'number' ? extra.best : null;

  const { params, names } = fairseqParamOrder(ck, imported);
  const state = rec(los.state, 'last_optimizer_state.state', path);
  const groups = los.param_groups;
  if (!Array.isArray(groups) || groups.length !== 1)
    throw new CheckpointError(`${path}: last_optimizer_state has ${Array.isArray(groups) ? groups.length : 'no'} param groups, expected 1`);
  const group = rec(groups[0], 'param_groups[0]', path);
  const gp = group.params;
  if (!Array.isArray(gp) || gp.length !== params.length) {
    throw new CheckpointError(`${path}: the optimizer holds ${Array.isArray(gp) ? gp.length : 0} parameters, the model ${params.length}`);
  }
  const out: FairseqResume['optimizerState']['state'] = {};
  for (const [k, v] of Object.entries(state)) {
    const i = Number(k);
    const s = rec(v, `optimizer state ${k}`, path);
    const p = params[i];
    if (!p) throw new CheckpointError(`${path}: optimizer state for parameter ${k}, but the model has ${params.length}`);
    for (const f of ['exp_avg', 'exp_avg_sq'] as const) {
      const t = s[f];
      if (!isRawTensor(t) || t.shape.join(',') !== p.shape.join(',')) {
        throw new CheckpointError(
          `${path}: optimizer state ${k}.${f} has shape [${isRawTensor(t) ? t.shape.join(', ') : '?'}], parameter ${names[i]} has [${p.shape.join(', ')}]`,
        );
      }
    }
    out[k] = { step: int(s.step, `optimizer state ${k}.step`, path), exp_avg: s.exp_avg as RawTensor, exp_avg_sq: s.exp_avg_sq as RawTensor };
  }
  return {
    path,
    imported,
    args: ck.args,
    params,
    paramNames: names,
    numUpdates,
    schedulerLr,
    iterator,
    best,
    optimizerState: { state: out, paramGroup: group },
  };
}

/**
 * fairseq Adam over `r.params` with the checkpoint's moments and steps. Hyper-parameters come from
 * `args` (the continuing run's `--adam-betas`, `--adam-eps`, `--weight-decay`), as fairseq rebuilds
 * the optimizer from the command line and loads only the state.
 */
export function resumeAdam(r: FairseqResume, args: Record<string, unknown>): Adam {
  const g = r.optimizerState.paramGroup;
  const betas = args.adam_betas !== undefined ? parseBetas(args.adam_betas as string) : parseBetas(g.betas as number[]);
  const opt = new Adam(r.params, {
    lr: 0,
    betas,
    eps: typeof args.adam_eps === 'number' ? args.adam_eps : (g.eps as number),
    weightDecay: typeof args.weight_decay === 'number' ? args.weight_decay : (g.weight_decay as number),
  });
  const state: Record<string, { step: number; exp_avg: Tensor; exp_avg_sq: Tensor }> = {};
  for (const [k, s] of Object.entries(r.optimizerState.state)) {
    state[k] = { step: s.step, exp_avg: fromStorage(s.exp_avg.data, s.exp_avg.shape), exp_avg_sq: fromStorage(s.exp_avg_sq.data, s.exp_avg_sq.shape) };
  }
  opt.loadStateDict({ state });
  return opt;
}

/**
 * The checkpoint a fairseq run resumes from (`checkpoint_utils.load_checkpoint`): `--restore-file`
 * when it is not the default name `checkpoint_last.pt`, else `SAVE/checkpoint_last.pt`
 * (`--save-dir`, default `checkpoints`). Returns null when that file does not exist: fairseq then
 * starts a fresh run.
 */
export function fairseqRestorePath(args: Readonly<Record<string, unknown>>): string | null {
  const rf = typeof args.restore_file === 'string' && args.restore_file !== '' ? args.restore_file : 'checkpoint_last.pt';
  const save = typeof args.save_dir === 'string' && args.save_dir !== '' ? args.save_dir : 'checkpoints';
  const p = rf === 'checkpoint_last.pt' ? join(save, 'checkpoint_last.pt') : rf;
  return existsSync(p) ? p : null;
}
