/**
 * Training checkpoints: two safetensors files per checkpoint, each written atomically.
 *
 * - `<name>.safetensors` — the model's state dict (parameters and buffers under their PyTorch
 *   names, readable by any safetensors tool) with `__metadata__`: `format` = `mega-ts/1`, `task`,
 *   `arch`, `model_args` (the complete fairseq-style model namespace, JSON), `task_info` (JSON),
 *   `train_args` (JSON), `update`, `id`.
 * - `<name>.state.safetensors` — the trainer state: Adam moments `optimizer.<i>.exp_avg` /
 *   `optimizer.<i>.exp_avg_sq` (parameter `i` in `model.parameters()` order) and, in the metadata
 *   key `trainer` (JSON), the update count, per-parameter Adam steps, the schedule, the RNG state,
 *   the data iterator position, the best validation value and the wall time so far.
 *
 * Both also store per-tensor data checksums (`tensor_sha256`, see io/safetensors.ts), checked on
 * load; the stored model args, task and dictionary facts are checked against the tensors before
 * anything is built from them, and the RNG state before a resume uses it (train/checkpoint-checks.ts).
 *
 * Both carry the same random `id`; a pair whose ids differ (a save interrupted between the two
 * renames) is refused on load. The state file is written first, so the weights file (what `eval`
 * reads) only ever changes after its state is in place.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointError } from '../io/errors.js';
import type { RawTensor } from '../io/raw.js';
import { encodeSafetensors, readSafetensors } from '../io/safetensors.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { Module } from '../nn/module.js';
import { fromStorage, type Tensor } from '../tensor/tensor.js';
import { checkRngStates, checkStoredSpec, noteUnverified } from './checkpoint-checks.js';
import type { Adam } from './optim.js';

/** Format tag of the weights file metadata. */
export const CHECKPOINT_FORMAT = 'mega-ts/1';

/** Everything needed to rebuild the model of a checkpoint. */
export interface ModelSpec {
  /** Task name. */
  task: string;
  /** Arch preset name. */
  arch: string;
  /** Complete model namespace (fairseq names). */
  modelArgs: Record<string, unknown>;
  /** Dictionary facts / classes of the task (`dictionary_size`, `pad`, `num_classes`, ...). */
  taskInfo: Record<string, unknown>;
}

/** The trainer part of a checkpoint (JSON in the state file). */
export interface TrainerState {
  /** Optimizer updates done. */
  numUpdates: number;
  /** Data iterator position after the last update. */
  data: { epoch: number; position: number };
  /** State of the default generator (dropout) after the last update. */
  rng: number[];
  /** Adam step count per parameter index (absent: no update yet). */
  adamSteps: Record<string, number>;
  /** Adam hyper-parameters (for information; the run's args rule). */
  adam: { lr: number; betas: [number, number]; eps: number; weightDecay: number };
  /** Schedule name and the LR of the next update. */
  schedule: { name: string; nextLr: number };
  /** Best validation metric so far. */
  best: { metric: string; value: number; update: number } | null;
  /** Training wall time of all runs so far (s). */
  wallTime: number;
  /** Options the user gave (config + flags) to the runs so far (resume replays them). */
  userArgs: Record<string, unknown>;
  /** Last training loss (base 2) seen. */
  lastTrainLoss: number | null;
  /** Data-parallel jobs: every rank's dropout-generator state, by rank (restored on resume with the same world size). */
  rankRng?: number[][];
}

/** A loaded checkpoint. */
export interface LoadedCheckpoint {
  /** Weights file. */
  path: string;
  /** Model rebuild information. */
  spec: ModelSpec;
  /** Options of the training run (resolved). */
  trainArgs: Record<string, unknown>;
  /** Update count of the weights. */
  update: number;
  /** State dict tensors. */
  tensors: Record<string, Tensor>;
  /** Pair id. */
  id: string;
}

/** Paths of checkpoint `name` (e.g. `checkpoint_last`) in `dir`. */
export function checkpointPaths(dir: string, name: string): { weights: string; state: string } {
  return { weights: join(dir, `${name}.safetensors`), state: join(dir, `${name}.state.safetensors`) };
}

function toRaw(t: Tensor): RawTensor {
  const data = t.toTypedArray();
  const dtype = t.dtype;
  return { dtype, shape: [...t.shape], data: dtype === 'bool' ? new Uint8Array(data) : data } as RawTensor;
}

function fromRaw(r: RawTensor): Tensor {
  return fromStorage(r.data, r.shape);
}

/** Encode the weights file of a model. */
export function encodeWeights(model: Module, spec: ModelSpec, trainArgs: Record<string, unknown>, update: number, id: string): Uint8Array {
  const tensors: Record<string, RawTensor> = {};
  for (const [k, t] of Object.entries(model.stateDict())) tensors[k] = toRaw(t);
  return encodeSafetensors(tensors, {
    format: CHECKPOINT_FORMAT,
    task: spec.task,
    arch: spec.arch,
    model_args: JSON.stringify(spec.modelArgs),
    task_info: JSON.stringify(spec.taskInfo),
    train_args: JSON.stringify(trainArgs),
    update: String(update),
    id,
  }, { checksums: true });
}

/** Encode the trainer-state file. */
export function encodeTrainerState(optimizer: Adam, state: Omit<TrainerState, 'adamSteps' | 'adam'>, id: string): Uint8Array {
  const tensors: Record<string, RawTensor> = {};
  const steps: Record<string, number> = {};
  const sd = optimizer.stateDict();
  for (const [i, s] of Object.entries(sd.state)) {
    tensors[`optimizer.${i}.exp_avg`] = toRaw(s.exp_avg);
    tensors[`optimizer.${i}.exp_avg_sq`] = toRaw(s.exp_avg_sq);
    steps[i] = s.step;
  }
  const full: TrainerState = {
    ...state,
    adamSteps: steps,
    adam: { lr: optimizer.lr, betas: [...optimizer.betas], eps: optimizer.eps, weightDecay: optimizer.weightDecay },
  };
  return encodeSafetensors(tensors, { format: `${CHECKPOINT_FORMAT}-state`, trainer: JSON.stringify(full), id }, { checksums: true });
}

/** A fresh random pair id. */
export function newCheckpointId(): string {
  return randomBytes(8).toString('hex');
}

/**
 * Write checkpoint `name` in `dir`: trainer state first, then weights, each atomically.
 * @returns the weights path
 */
export function saveCheckpoint(
  dir: string, name: string, model: Module, optimizer: Adam, spec: ModelSpec, trainArgs: Record<string, unknown>,
  state: Omit<TrainerState, 'adamSteps' | 'adam'>,
): string {
  const p = checkpointPaths(dir, name);
  const id = newCheckpointId();
  const weights = encodeWeights(model, spec, trainArgs, state.numUpdates, id);
  const st = encodeTrainerState(optimizer, state, id);
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(p.state, st);
  writeFileAtomic(p.weights, weights);
  return p.weights;
}

function parseJsonMeta(path: string, meta: Record<string, string>, key: string): Record<string, unknown> {
  const s = meta[key];
  if (s === undefined) throw new CheckpointError(`${path}: metadata "${key}" missing (not a mega-ts training checkpoint)`);
  try {
    const v = JSON.parse(s) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new CheckpointError(`${path}: metadata "${key}" is not a JSON object (${(e as Error).message})`);
  }
}

/**
 * Read a weights file written by {@link saveCheckpoint}.
 * @throws CheckpointError for a missing, unreadable, corrupt or foreign file
 */
export function loadCheckpoint(path: string): LoadedCheckpoint {
  if (!existsSync(path)) throw new CheckpointError(`${path}: no such checkpoint file`);
  const content = readSafetensors(path);
  const { tensors, metadata } = content;
  if (metadata.format !== CHECKPOINT_FORMAT) {
    throw new CheckpointError(`${path}: metadata format = ${JSON.stringify(metadata.format ?? null)} (expected "${CHECKPOINT_FORMAT}": a checkpoint written by mega train)`);
  }
  const modelArgs = parseJsonMeta(path, metadata, 'model_args');
  const taskInfo = parseJsonMeta(path, metadata, 'task_info');
  const trainArgs = parseJsonMeta(path, metadata, 'train_args');
  const update = Number(metadata.update);
  if (!Number.isInteger(update) || update < 0) throw new CheckpointError(`${path}: metadata update = ${JSON.stringify(metadata.update)} (expected an integer >= 0)`);
  if (!metadata.task || !metadata.arch) throw new CheckpointError(`${path}: metadata task/arch missing`);
  checkStoredSpec(path, metadata.task, metadata.arch, modelArgs, taskInfo, tensors);
  noteUnverified(path, content);
  const out: Record<string, Tensor> = {};
  for (const [k, r] of Object.entries(tensors)) out[k] = fromRaw(r);
  return { path, spec: { task: metadata.task, arch: metadata.arch, modelArgs, taskInfo }, trainArgs, update, tensors: out, id: metadata.id ?? '' };
}

/**
 * Read the trainer state belonging to a loaded weights file and restore the optimizer from it.
 * @returns the trainer state
 * @throws CheckpointError for a missing/corrupt state file, a different pair id or a parameter mismatch
 */
export function loadTrainerState(statePath: string, ckpt: LoadedCheckpoint, optimizer: Adam): TrainerState {
  if (!existsSync(statePath)) throw new CheckpointError(`${statePath}: trainer state missing (needed by --resume; it is written next to the weights)`);
  const content = readSafetensors(statePath);
  const { tensors, metadata } = content;
  if (metadata.format !== `${CHECKPOINT_FORMAT}-state`) throw new CheckpointError(`${statePath}: not a mega-ts trainer state (metadata format ${JSON.stringify(metadata.format ?? null)})`);
  if (metadata.id !== ckpt.id) {
    throw new CheckpointError(`${statePath}: belongs to a different save than ${ckpt.path} (ids ${metadata.id} vs ${ckpt.id}; an interrupted save?)`);
  }
  const st = parseJsonMeta(statePath, metadata, 'trainer') as unknown as TrainerState;
  if (st.numUpdates !== ckpt.update || !Array.isArray(st.rng) || typeof st.data?.epoch !== 'number') {
    throw new CheckpointError(`${statePath}: trainer state is incomplete or disagrees with the weights (update ${st.numUpdates} vs ${ckpt.update})`);
  }
  checkRngStates(statePath, st);
  noteUnverified(statePath, content);
  const state: Record<string, { step: number; exp_avg: Tensor; exp_avg_sq: Tensor }> = {};
  for (const [i, step] of Object.entries(st.adamSteps ?? {})) {
    const m = tensors[`optimizer.${i}.exp_avg`];
    const v = tensors[`optimizer.${i}.exp_avg_sq`];
    if (!m || !v) throw new CheckpointError(`${statePath}: Adam moments of parameter ${i} missing`);
    state[i] = { step, exp_avg: fromRaw(m), exp_avg_sq: fromRaw(v) };
  }
  try {
    optimizer.loadStateDict({ state, param_groups: [{ params: optimizer.params.map((_, i) => i) }] });
  } catch (e) {
    throw new CheckpointError(`${statePath}: optimizer state does not fit the model (${(e as Error).message})`);
  }
  return st;
}
