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
 * Both also store per-tensor data checksums (`tensor_sha256`, see io/safetensors-codec.ts), checked
 * on load; the stored model args, task and dictionary facts are checked against the tensors before
 * anything is built from them, and the RNG state before a resume uses it (train/checkpoint-checks.ts).
 *
 * Both carry the same random `id`. A save replaces the pair in three atomic steps, so that a kill
 * at any moment leaves a weights file whose state is on disk:
 *
 * 1. the current state file (the one matching the current weights) is renamed to
 *    `<name>.prev-state.safetensors`;
 * 2. the new state file is written (atomically);
 * 3. the new weights file is written (atomically) — the commit point; then the previous state is
 *    removed.
 *
 * On load the state is the file, of `<name>.state.safetensors` and `<name>.prev-state.safetensors`,
 * whose id equals the weights' id: before step 3 the previous pair, after it the new one.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readSync, renameSync, rmSync } from 'node:fs';
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

/** Paths of checkpoint `name` (e.g. `checkpoint_last`) in `dir`; `prevState` exists only while a save is under way. */
export function checkpointPaths(dir: string, name: string): { weights: string; state: string; prevState: string } {
  return { weights: join(dir, `${name}.safetensors`), state: join(dir, `${name}.state.safetensors`), prevState: join(dir, `${name}.prev-state.safetensors`) };
}

/** The previous-state path belonging to a state path (`X.state.safetensors` → `X.prev-state.safetensors`). */
function prevStatePath(statePath: string): string {
  return statePath.replace(/\.state\.safetensors$/, '.prev-state.safetensors');
}

/**
 * The pair id in a checkpoint file's metadata, reading only its header; null when the file is
 * missing or not readable as safetensors (the full readers report those).
 */
export function readPairId(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    const len = Buffer.alloc(8);
    if (readSync(fd, len, 0, 8, 0) !== 8) return null;
    const n = len.readBigUInt64LE(0);
    if (n > 100_000_000n) return null;
    const head = Buffer.alloc(Number(n));
    if (readSync(fd, head, 0, head.length, 8) !== head.length) return null;
    const meta = (JSON.parse(head.toString('utf8')) as { __metadata__?: { id?: unknown } }).__metadata__;
    return typeof meta?.id === 'string' ? meta.id : null;
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/** The steps of a save, in order (see the file comment); names of `MEGA_SAVE_FAULT`. */
export type SaveStep = 'prev' | 'state' | 'weights';

/**
 * Test aid: `MEGA_SAVE_FAULT=kill:STEP@U` SIGKILLs this process right after step STEP of the save of
 * update U (a kill at the worst moments of a save).
 */
function faultAfter(step: SaveStep, update: number): void {
  const m = /^kill:(prev|state|weights)@(\d+)$/.exec(process.env.MEGA_SAVE_FAULT ?? '');
  if (!m || m[1] !== step || Number(m[2]) !== update) return;
  process.stderr.write(`mega: MEGA_SAVE_FAULT: killed after the "${step}" step of the save of update ${update}\n`);
  process.kill(process.pid, 'SIGKILL');
}

/**
 * Replace the pair of checkpoint `name` in `dir` by the encoded `state` and `weights` (same id) so
 * that a kill at any moment leaves a loadable pair (see the file comment).
 */
export function commitCheckpointPair(dir: string, name: string, state: Uint8Array, weights: Uint8Array, update: number): void {
  const p = checkpointPaths(dir, name);
  const current = readPairId(p.weights);
  // keep the state of the current weights aside until the new weights are in place; when a
  // previous save was interrupted after its state step, the matching state is already there
  if (current !== null && readPairId(p.state) === current) renameSync(p.state, p.prevState);
  faultAfter('prev', update);
  writeFileAtomic(p.state, state);
  faultAfter('state', update);
  writeFileAtomic(p.weights, weights);
  faultAfter('weights', update);
  rmSync(p.prevState, { force: true });
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
  return encodeSafetensors(
    tensors,
    {
      format: CHECKPOINT_FORMAT,
      task: spec.task,
      arch: spec.arch,
      model_args: JSON.stringify(spec.modelArgs),
      task_info: JSON.stringify(spec.taskInfo),
      train_args: JSON.stringify(trainArgs),
      update: String(update),
      id,
    },
    { checksums: true },
  );
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
 * Write checkpoint `name` in `dir` with {@link commitCheckpointPair}.
 * @returns the weights path
 */
export function saveCheckpoint(
  dir: string,
  name: string,
  model: Module,
  optimizer: Adam,
  spec: ModelSpec,
  trainArgs: Record<string, unknown>,
  state: Omit<TrainerState, 'adamSteps' | 'adam'>,
): string {
  const p = checkpointPaths(dir, name);
  const id = newCheckpointId();
  const weights = encodeWeights(model, spec, trainArgs, state.numUpdates, id);
  const st = encodeTrainerState(optimizer, state, id);
  mkdirSync(dir, { recursive: true });
  commitCheckpointPair(dir, name, st, weights, state.numUpdates);
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
    throw new CheckpointError(
      `${path}: metadata format = ${JSON.stringify(metadata.format ?? null)} (expected "${CHECKPOINT_FORMAT}": a checkpoint written by mega train)`,
    );
  }
  const modelArgs = parseJsonMeta(path, metadata, 'model_args');
  const taskInfo = parseJsonMeta(path, metadata, 'task_info');
  const trainArgs = parseJsonMeta(path, metadata, 'train_args');
  const update = Number(metadata.update);
  if (!Number.isInteger(update) || update < 0)
    throw new CheckpointError(`${path}: metadata update = ${JSON.stringify(metadata.update)} (expected an integer >= 0)`);
  if (!metadata.task || !metadata.arch) throw new CheckpointError(`${path}: metadata task/arch missing`);
  checkStoredSpec(path, metadata.task, metadata.arch, modelArgs, tensors, taskInfo);
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
  // a save interrupted before its weights step: the weights' state is the one kept aside
  const prev = prevStatePath(statePath);
  if (readPairId(statePath) !== ckpt.id && readPairId(prev) === ckpt.id) statePath = prev;
  if (!existsSync(statePath)) throw new CheckpointError(`${statePath}: trainer state missing (needed by --resume; it is written next to the weights)`);
  const content = readSafetensors(statePath);
  const { tensors, metadata } = content;
  if (metadata.format !== `${CHECKPOINT_FORMAT}-state`)
    throw new CheckpointError(`${statePath}: not a mega-ts trainer state (metadata format ${JSON.stringify(metadata.format ?? null)})`);
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
