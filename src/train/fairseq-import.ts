/**
 * fairseq Mega checkpoint → mega-ts model (docs/MEGA.md §8.7).
 *
 * A released checkpoint (`torch.save` zip + pickle, read without running code by `io/pt.ts`)
 * holds `args` (the argparse namespace of the training run: `arch`, every model field) and
 * `model` (the state dict under the reference's parameter names, which are the mega-ts names).
 * The mapping:
 *
 * 1. `args.arch` must be a registered architecture (`mega/models/presets.ts`); missing fields get
 *    the arch defaults, as fairseq's `register_model_architecture` functions do.
 * 2. The dictionary is not in the checkpoint: its size is the row count of the token embedding
 *    (`decoder.embed_tokens.weight`, `encoder.embed_tokens.weight`,
 *    `encoder.encoder.embed_tokens.embed.weight`), or with adaptive input the rows of all bands
 *    (`decoder.embed_tokens.embeddings.i.0.weight`); the special symbols are fairseq's
 *    (`<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3).
 * 3. Entries that are not model state are ignored: `*.version` (fairseq's state-dict upgrade
 *    counter) and `*._float_tensor` (the rotary bias's dtype marker, uninitialised memory).
 * 4. Every other entry must be a state-dict name of the built model with its shape, and every
 *    model tensor must be present (strict); tensors the model shares (tied / shared embeddings)
 *    must hold equal values under all their names.
 *
 * The result is saved as a mega-ts weights file (`train/checkpoint.ts`: safetensors + the model
 * namespace in the metadata) that `mega eval` / `mega generate` load; `loadModelFile` loads
 * either kind of file.
 */
import { resolve } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { CheckpointError } from '../io/errors.js';
import { decodeFairseqCheckpoint, type FairseqCheckpoint } from '../io/pt.js';
import { readFileBounded } from '../io/read.js';
import { isRawTensor, type RawTensor } from '../io/raw.js';
import type { TaskInfo } from '../mega/models/common.js';
import { ARCHITECTURES, archArgs, archNames, buildModel, type MegaAnyModel, type ModelKind } from '../mega/models/presets.js';
import { ConfigError } from '../nn/errors.js';
import type { FloatDType } from '../tensor/dtype.js';
import { cast } from '../tensor/kernels.js';
import { fromStorage, type Tensor } from '../tensor/tensor.js';
import { allArchNames, CPU_PRESETS } from './arch.js';
import { encodeWeights, loadCheckpoint, newCheckpointId, type ModelSpec } from './checkpoint.js';
import { checkModelArgs } from './model-args-check.js';

/** fairseq's dictionary specials (every Mega task uses `fairseq.data.Dictionary`). */
export const FAIRSEQ_SPECIALS = { bos: 0, pad: 1, eos: 2, unk: 3 } as const;

/** Reference model class of each kind (golden `module` names). */
export const MODEL_CLASS: Readonly<Record<ModelKind, string>> = { mega: 'MegaModel', mega_lm: 'MegaLanguageModel', lra: 'LRAModel', sc_raw: 'SCRawModel' };

/** A model rebuilt from a fairseq checkpoint. */
export interface ImportedModel {
  /** The model, in eval mode, with the checkpoint's weights. */
  model: MegaAnyModel;
  /** Which model family. */
  kind: ModelKind;
  /** Reference class name (`MegaLanguageModel`, ...). */
  className: string;
  /** What a mega-ts checkpoint stores to rebuild it. */
  spec: ModelSpec;
  /** Checkpoint entries deliberately not loaded (`*.version`, `*._float_tensor`). */
  ignored: string[];
  /** Number of state-dict entries loaded. */
  loaded: number;
  /** Optimizer updates of the fairseq run (`optimizer_history[-1].num_updates`), 0 if absent. */
  numUpdates: number;
}

/** Whether a checkpoint entry is bookkeeping rather than model state. */
export function isIgnoredEntry(name: string): boolean {
  return name === 'version' || name.endsWith('.version') || name.endsWith('._float_tensor');
}

/** The mega-ts task name of a fairseq arch (for `mega eval`). */
export function taskNameOf(arch: string, kind: ModelKind, args: Record<string, unknown>): string {
  switch (kind) {
    case 'mega_lm':
      return 'lm';
    case 'mega':
      return 'translation';
    case 'sc_raw':
      return 'speech';
    case 'lra':
      if (args.input_type === 'image') return 'image';
      if (arch === 'mega_lra_aan') return 'retrieval';
      if (arch === 'mega_lra_imdb') return 'text';
      return 'listops';
  }
}

function rowsOf(model: Record<string, RawTensor>, name: string, label: string): number {
  const t = model[name];
  if (!t) throw new CheckpointError(`${label}: state dict has no '${name}' (needed for the vocabulary size)`);
  if (t.shape.length !== 2) throw new CheckpointError(`${label}: '${name}' has shape [${t.shape.join(', ')}], expected [V, D]`);
  return t.shape[0];
}

/** Vocabulary size of an adaptive input: the rows of its bands `decoder.embed_tokens.embeddings.i.0.weight`. */
function adaptiveRows(model: Record<string, RawTensor>, label: string): number {
  let V = 0;
  for (let i = 0; `decoder.embed_tokens.embeddings.${i}.0.weight` in model; i++) V += rowsOf(model, `decoder.embed_tokens.embeddings.${i}.0.weight`, label);
  return V;
}

/** The dictionary facts of the checkpoint (`null` for models without a token vocabulary). */
export function inferTask(kind: ModelKind, args: Record<string, unknown>, model: Record<string, RawTensor>, label: string): TaskInfo | null {
  let V: number;
  switch (kind) {
    case 'mega_lm':
      V =
        'decoder.embed_tokens.weight' in model || !('decoder.embed_tokens.embeddings.0.0.weight' in model)
          ? rowsOf(model, 'decoder.embed_tokens.weight', label)
          : adaptiveRows(model, label);
      break;
    case 'mega': {
      V = rowsOf(model, 'encoder.embed_tokens.weight', label);
      const Vt = rowsOf(model, 'decoder.embed_tokens.weight', label);
      if (Vt !== V)
        throw new ConfigError(`${label}: source and target dictionaries differ in size (${V} vs ${Vt}); mega-ts MegaModel uses one dictionary for both sides`);
      break;
    }
    case 'lra':
      if (args.input_type === 'image') return null;
      V = rowsOf(model, 'encoder.encoder.embed_tokens.embed.weight', label);
      break;
    case 'sc_raw':
      return null;
  }
  return { dictionary_size: V, ...FAIRSEQ_SPECIALS };
}

/** JSON-safe copy of an args namespace (non-finite numbers become strings, tensors are dropped). */
function jsonSafe(v: unknown): unknown {
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(jsonSafe);
  if (v && typeof v === 'object') {
    if (ArrayBuffer.isView(v) || isRawTensor(v)) return null;
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) Object.defineProperty(o, k, { value: jsonSafe(x), enumerable: true, writable: true, configurable: true });
    return o;
  }
  return v;
}

function numUpdatesOf(raw: unknown): number {
  if (!(raw instanceof Map)) return 0;
  const hist = raw.get('optimizer_history');
  if (!Array.isArray(hist) || hist.length === 0) return 0;
  const last = hist[hist.length - 1];
  const n = last instanceof Map ? last.get('num_updates') : undefined;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

function toTensor(r: RawTensor, dtype: FloatDType): Tensor {
  const t = fromStorage(r.data, r.shape);
  return r.dtype === 'f32' || r.dtype === 'f64' ? cast(t, dtype) : t;
}

/** Whether two raw tensors have equal shapes and values (NaN equal to NaN). */
function sameValues(a: RawTensor, b: RawTensor): boolean {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i]) || a.data.length !== b.data.length) return false;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i] && !(Number.isNaN(a.data[i]) && Number.isNaN(b.data[i]))) return false;
  return true;
}

/**
 * Builds the mega-ts model of a decoded fairseq checkpoint and loads its weights.
 * @param label name used in error messages (the file path)
 * @throws CheckpointError when the checkpoint has no args / arch, lacks or has extra / misshapen
 *   tensors, or has tied tensors that differ; ConfigError when the arch is not supported
 */
export function importFairseq(ck: FairseqCheckpoint, { dtype = 'f32', label = 'checkpoint' }: { dtype?: FloatDType; label?: string } = {}): ImportedModel {
  const args = ck.args;
  if (Object.keys(args).length === 0) {
    const hasCfg = ck.raw instanceof Map && ck.raw.has('cfg');
    throw new CheckpointError(
      `${label}: no 'args' namespace${hasCfg ? " (a fairseq >= 0.10 'cfg' checkpoint; only the Mega release's args checkpoints are supported)" : ''}; ` +
        `cannot tell which model it holds`,
    );
  }
  const arch = args.arch;
  if (typeof arch !== 'string')
    throw new CheckpointError(`${label}: args.arch is ${arch === undefined ? 'missing' : JSON.stringify(arch)}; expected an architecture name`);
  const spec0 = ARCHITECTURES[arch];
  if (!spec0) throw new ConfigError(`${label}: unsupported model: args.arch = '${arch}' (supported: ${archNames().join(', ')})`);
  const kind = spec0.model;
  checkModelArgs(kind, archArgs(arch, args), ck.model, label);
  const task = inferTask(kind, args, ck.model, label);
  let model: MegaAnyModel;
  try {
    model = buildModel(arch, args, task, { dtype });
  } catch (e) {
    const err = e as Error;
    if (err instanceof ConfigError) throw new ConfigError(`${label}: unsupported model (arch ${arch}): ${err.message}`, { cause: e });
    throw new CheckpointError(`${label}: cannot build arch ${arch} from the checkpoint's args: ${err.message}`, { cause: e });
  }

  const ignored: string[] = [];
  const entries: Record<string, RawTensor> = {};
  for (const [k, r] of Object.entries(ck.model)) {
    if (isIgnoredEntry(k)) ignored.push(k);
    else Object.defineProperty(entries, k, { value: r, enumerable: true, writable: true, configurable: true });
  }
  const own = new Map([...model.namedParameters(), ...model.namedBuffers()]);
  const missing = [...own.keys()].filter((k) => !(k in entries));
  const unexpected = Object.keys(entries).filter((k) => !own.has(k));
  if (missing.length || unexpected.length) {
    const list = (xs: string[]) => (xs.length > 4 ? `${xs.slice(0, 4).join(', ')}, ... (${xs.length})` : xs.join(', '));
    throw new CheckpointError(
      `${label}: state dict does not match arch ` +
        `${arch}${missing.length ? `; missing: ${list(missing)}` : ''}${unexpected.length ? `; unexpected: ${list(unexpected)}` : ''}`,
    );
  }
  // tied tensors: one model tensor under several names must get one value
  const byTensor = new Map<Tensor, string[]>();
  for (const [k, t] of own) byTensor.set(t, [...(byTensor.get(t) ?? []), k]);
  for (const names of byTensor.values()) {
    for (const k of names.slice(1)) {
      if (!sameValues(entries[names[0]], entries[k]))
        throw new CheckpointError(`${label}: '${names[0]}' and '${k}' are one shared tensor in arch ${arch} but differ in the checkpoint`);
    }
  }
  const sd: Record<string, Tensor> = {};
  for (const [k, t] of own) {
    const r = entries[k];
    if (r.shape.length !== t.shape.length || r.shape.some((d, i) => d !== t.shape[i])) {
      throw new CheckpointError(`${label}: '${k}' has shape [${r.shape.join(', ')}] in the checkpoint but [${t.shape.join(', ')}] in arch ${arch}`);
    }
    const floatRaw = r.dtype === 'f32' || r.dtype === 'f64';
    const floatModel = t.dtype === 'f32' || t.dtype === 'f64';
    if (floatRaw !== floatModel) throw new CheckpointError(`${label}: '${k}' is ${r.dtype} in the checkpoint but ${t.dtype} in the model`);
    Object.defineProperty(sd, k, { value: toTensor(r, dtype), enumerable: true, writable: true, configurable: true });
  }
  model.loadStateDict(sd);
  model.eval();

  const modelArgs = jsonSafe(archArgs(arch, args)) as Record<string, unknown>;
  const taskInfo: Record<string, unknown> = task ? { ...task } : {};
  if (kind === 'lra' || kind === 'sc_raw') taskInfo.num_classes = modelArgs.sentence_class_num;
  return {
    model,
    kind,
    className: MODEL_CLASS[kind],
    ignored,
    loaded: own.size,
    numUpdates: numUpdatesOf(ck.raw),
    spec: { task: taskNameOf(arch, kind, args), arch, modelArgs, taskInfo },
  };
}

/**
 * Reads a fairseq `.pt` file and imports it (see `importFairseq`).
 * @throws CheckpointError for a missing / unreadable / corrupt file; see `importFairseq`
 */
export function importFairseqFile(path: string, opts: { dtype?: FloatDType } = {}): ImportedModel {
  let bytes: Uint8Array;
  try {
    bytes = readFileBounded(path, CheckpointError);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new CheckpointError(code === 'ENOENT' ? `${path}: no such file` : `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  if (!isZip(bytes)) {
    throw new CheckpointError(
      `${path}: not a PyTorch zip checkpoint (starts with ${describeMagic(bytes)}, expected "PK\\x03\\x04"; legacy non-zip torch.save files are not supported)`,
    );
  }
  return importFairseq(decodeFairseqCheckpoint(bytes, path), { ...opts, label: path });
}

/** Whether bytes start with a zip local-file header. */
export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

function describeMagic(bytes: Uint8Array): string {
  if (bytes.length === 0) return 'nothing (empty file)';
  return JSON.stringify(
    Array.from(bytes.subarray(0, 4), (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join(''),
  );
}

/**
 * Saves an imported model as a mega-ts weights file (atomic: the old file survives any error).
 * @param source the fairseq file it came from (recorded in the metadata's `train_args`)
 * @throws CheckpointError if the file cannot be written
 */
export function saveImported(out: string, imp: ImportedModel, source: string): void {
  const bytes = encodeWeights(imp.model, imp.spec, { imported_from: source, format: 'fairseq' }, imp.numUpdates, newCheckpointId());
  try {
    writeFileAtomic(out, bytes);
  } catch (e) {
    throw new CheckpointError(`cannot write ${out}: ${(e as Error).message}`, { cause: e });
  }
}

/** A model loaded from a file of either kind. */
export interface LoadedModel {
  model: MegaAnyModel;
  kind: ModelKind;
  className: string;
  spec: ModelSpec;
  /** `fairseq` (.pt imported on the fly) or `mega-ts` (safetensors weights file). */
  source: 'fairseq' | 'mega-ts';
}

/**
 * Loads a model for inference (eval mode) from a mega-ts weights file or a fairseq `.pt` (told
 * apart by the zip magic).
 * @throws CheckpointError / ConfigError for a missing, corrupt or unsupported file
 */
export function loadModelFile(path: string, { dtype = 'f32' }: { dtype?: FloatDType } = {}): LoadedModel {
  let head: Uint8Array;
  try {
    head = readFileBounded(path, CheckpointError);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new CheckpointError(code === 'ENOENT' ? `${path}: no such file` : `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  if (isZip(head)) {
    const imp = importFairseq(decodeFairseqCheckpoint(head, path), { dtype, label: path });
    return { model: imp.model, kind: imp.kind, className: imp.className, spec: imp.spec, source: 'fairseq' };
  }
  const ck = loadCheckpoint(path);
  const arch = ck.spec.arch;
  // a CPU preset (`mega_lm_tiny`, ...) is built by its reference arch with the stored fields
  const base = CPU_PRESETS[arch]?.base ?? arch;
  const spec0 = ARCHITECTURES[base];
  if (!spec0) throw new ConfigError(`${path}: unsupported model: arch '${arch}' (expected one of ${allArchNames().join(', ')})`);
  const ti = ck.spec.taskInfo;
  const task: TaskInfo | null = typeof ti.dictionary_size === 'number' ? (ti as unknown as TaskInfo) : null;
  let model: MegaAnyModel;
  try {
    model = buildModel(base, ck.spec.modelArgs, task, { dtype });
  } catch (e) {
    throw new CheckpointError(`${path}: cannot rebuild arch ${arch} from the stored model args: ${(e as Error).message}`, { cause: e });
  }
  const sd: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(ck.tensors)) sd[k] = t.dtype === 'f32' || t.dtype === 'f64' ? cast(t, dtype) : t;
  try {
    model.loadStateDict(sd);
  } catch (e) {
    throw new CheckpointError(`${path}: weights do not fit arch ${arch}: ${(e as Error).message}`, { cause: e });
  }
  model.eval();
  return { model, kind: spec0.model, className: MODEL_CLASS[spec0.model], spec: ck.spec, source: 'mega-ts' };
}

/** Whether two paths name the same file location. */
export function samePath(a: string, b: string): boolean {
  return resolve(a) === resolve(b);
}
