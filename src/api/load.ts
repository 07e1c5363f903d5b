/**
 * `loadModel`: one call from a model folder (local path, URL, or its files as bytes), a mega-ts
 * checkpoint (any preset, the CPU presets included) or a fairseq `.pt` (Node) to a typed model
 * with its tokenizer.
 *
 * Everything is read and checked before the model is built, and the model is returned only once
 * its weights are in: a bad input (missing or malformed config.json, a vocabulary that does not
 * match the embedding, an unknown arch, a failed URL) throws one error naming the file and what
 * was expected, and leaves nothing half-loaded.
 */
import { Dictionary } from '../data/vocab.js';
import { CheckpointError } from '../io/errors.js';
import type { RawTensor } from '../io/raw.js';
import { decodeSafetensors } from '../io/safetensors-codec.js';
import { LRAModel } from '../mega/models/lra.js';
import { MegaLanguageModel } from '../mega/models/lm.js';
import { MegaModel } from '../mega/models/nmt.js';
import { ARCHITECTURES, buildModel, type MegaAnyModel } from '../mega/models/presets.js';
import { SCRawModel } from '../mega/models/speech.js';
import type { TaskInfo } from '../mega/models/common.js';
import { ConfigError } from '../nn/errors.js';
import type { FloatDType } from '../tensor/dtype.js';
import { cast } from '../tensor/kernels.js';
import { fromStorage, type Tensor } from '../tensor/tensor.js';
import { baseArch, checkModelConfig, MODEL_FOLDER_FORMAT, parseModelConfig, type ModelConfig } from './config.js';
import { host } from './host/node.js';
import { placeOnDevice } from './memory.js';
import { AudioClassifier, LanguageModel, SequenceClassifier, Translator, type Pretrained } from './models.js';
import { Tokenizer } from './tokenizer.js';

/** The files of a model folder, as bytes or text (e.g. from a browser's file input). */
export interface ModelFiles {
  'config.json': string | Uint8Array;
  'model.safetensors': Uint8Array | ArrayBuffer;
  /** The vocabulary (required unless the model reads numbers). */
  'dict.txt'?: string | Uint8Array;
}

/** What `loadModel` accepts. */
export type ModelSource = string | URL | Uint8Array | ArrayBuffer | ModelFiles;

/** Options of `loadModel`. */
export interface LoadOptions {
  /** Computation precision (default `f32`). */
  dtype?: FloatDType;
  /** Backend to start first: `cpu` (default: leave as is), `gpujs` or `auto` (Node: needs the optional gpu.js and webgpu packages). */
  backend?: 'cpu' | 'gpujs' | 'auto';
  /** The fetch function for URLs (default `globalThis.fetch`). */
  fetch?: typeof fetch;
}

/** Names of the model folder's files. */
export const MODEL_FOLDER_FILES = { config: 'config.json', weights: 'model.safetensors', dict: 'dict.txt' } as const;

/** The mega-ts training checkpoint format tag (`train/checkpoint.ts`). */
const CHECKPOINT_FORMAT = 'mega-ts/1';

const text = (b: string | Uint8Array): string => (typeof b === 'string' ? b : new TextDecoder().decode(b));
const bytesOf = (b: Uint8Array | ArrayBuffer): Uint8Array => (b instanceof Uint8Array ? b : new Uint8Array(b));

function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

/**
 * Loads a model for inference (eval mode).
 * @param source a model folder (path or URL, written by `mega export`), a weights file (path, URL
 *   or bytes: a mega-ts checkpoint or a fairseq `.pt`), or the folder's files as {@link ModelFiles}
 * @throws ConfigError / CheckpointError / DataError naming the file and what was expected
 */
export async function loadModel(source: ModelSource, opts: LoadOptions = {}): Promise<Pretrained> {
  const dtype = opts.dtype ?? 'f32';
  if (dtype !== 'f32' && dtype !== 'f64') throw new ConfigError(`dtype '${String(dtype)}': expected f32 or f64`);
  if (opts.backend) await host.useBackend(opts.backend);
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) return fromBytes(bytesOf(source), 'bytes', dtype);
  if (source instanceof URL && !(source.protocol === 'file:' && host.name === 'node')) return fromUrl(source, dtype, opts.fetch);
  if (source instanceof URL) source = decodeURIComponent(source.pathname); // a file: URL in Node is a path
  if (typeof source === 'string') {
    if (source.startsWith('file:') && host.name === 'node') source = decodeURIComponent(new URL(source).pathname);
    const url = asUrl(source);
    if (url) return fromUrl(url, dtype, opts.fetch);
    if (await host.isFolder(source)) return fromLocalFolder(source, dtype);
    return fromBytes(await host.readFile(source), source, dtype);
  }
  if (typeof source === 'object' && source !== null && MODEL_FOLDER_FILES.config in source) {
    const f = source as ModelFiles;
    return fromFolder(
      text(f['config.json']),
      bytesOf(f['model.safetensors']),
      f['dict.txt'] === undefined ? null : text(f['dict.txt']),
      { config: 'config.json', weights: 'model.safetensors', dict: 'dict.txt' },
      dtype,
    );
  }
  throw new ConfigError('loadModel: expected a path, a URL, bytes, or {"config.json", "model.safetensors", "dict.txt"}');
}

/** A URL for `s` when it is one (or, in a browser, any string: relative to the page). */
function asUrl(s: string): URL | null {
  if (/^(https?|blob|data|file):/i.test(s)) return new URL(s);
  if (host.name === 'browser') return new URL(s, (globalThis as { location?: { href: string } }).location?.href);
  return null;
}

async function fetchBytes(url: URL, what: string, f: typeof fetch | undefined, optional = false): Promise<Uint8Array | null> {
  const get = f ?? globalThis.fetch;
  let res: Response;
  try {
    res = await get(url.href);
  } catch (e) {
    throw new CheckpointError(`${url.href}: request failed (${(e as Error).message}); expected ${what}`, { cause: e });
  }
  if (res.status === 404 && optional) return null;
  if (!res.ok) throw new CheckpointError(`${url.href}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}; expected ${what}`);
  return new Uint8Array(await res.arrayBuffer());
}

async function fromUrl(url: URL, dtype: FloatDType, f: typeof fetch | undefined): Promise<Pretrained> {
  if (/\.(safetensors|pt)$/i.test(url.pathname)) {
    return fromBytes((await fetchBytes(url, 'a mega-ts checkpoint or a fairseq .pt', f))!, url.href, dtype);
  }
  const base = new URL(url.href.endsWith('/') ? url.href : `${url.href}/`);
  const u = (name: string) => new URL(name, base);
  const cfg = (await fetchBytes(u(MODEL_FOLDER_FILES.config), "the model folder's config.json", f))!;
  const weights = (await fetchBytes(u(MODEL_FOLDER_FILES.weights), "the model folder's model.safetensors", f))!;
  const dict = await fetchBytes(u(MODEL_FOLDER_FILES.dict), "the model folder's dict.txt", f, true);
  const labels = { config: u(MODEL_FOLDER_FILES.config).href, weights: u(MODEL_FOLDER_FILES.weights).href, dict: u(MODEL_FOLDER_FILES.dict).href };
  return fromFolder(text(cfg), weights, dict && text(dict), labels, dtype);
}

async function fromLocalFolder(dir: string, dtype: FloatDType): Promise<Pretrained> {
  const labels = {
    config: host.join(dir, MODEL_FOLDER_FILES.config),
    weights: host.join(dir, MODEL_FOLDER_FILES.weights),
    dict: host.join(dir, MODEL_FOLDER_FILES.dict),
  };
  if (!(await host.exists(labels.config)))
    throw new ConfigError(`${labels.config}: no such file (a model folder holds config.json, model.safetensors and dict.txt, as written by mega export)`);
  const cfg = text(await host.readFile(labels.config));
  const weights = await host.readFile(labels.weights);
  const dict = (await host.exists(labels.dict)) ? text(await host.readFile(labels.dict)) : null;
  return fromFolder(cfg, weights, dict, labels, dtype);
}

async function fromFolder(
  cfgText: string,
  weights: Uint8Array,
  dictText: string | null,
  labels: { config: string; weights: string; dict: string },
  dtype: FloatDType,
): Promise<Pretrained> {
  const config = parseModelConfig(cfgText, labels.config);
  const content = decodeSafetensors(weights, labels.weights);
  let tokenizer: Tokenizer | null = null;
  if (config.tokenizer.type !== 'none') {
    if (dictText === null)
      throw new ConfigError(`${labels.dict}: no such file (the ${config.tokenizer.type} tokenizer of ${labels.config} needs the vocabulary)`);
    const dict = Dictionary.parse(dictText, labels.dict);
    const V = config.task_info.dictionary_size as number;
    const rows = embeddingRows(content.tensors);
    if (rows !== null && rows !== dict.size) {
      throw new ConfigError(
        `${labels.dict}: ${dict.size} symbols (specials included) but the embedding in ` +
          `${labels.weights} has ${rows} rows; expected the vocabulary the model was trained with`,
      );
    }
    if (dict.size !== V)
      throw new ConfigError(`${labels.dict}: ${dict.size} symbols (specials included) but ${labels.config} says dictionary_size ${V}; expected equal sizes`);
    tokenizer = new Tokenizer(dict, config.tokenizer, labels.dict);
  }
  const model = build(config, labels.config, dtype);
  loadWeights(model, content.tensors, labels.weights, baseArch(config), dtype);
  return wrap(model, config, tokenizer, dtype);
}

/** Rows of the token embedding in a state dict (null when the model has none). */
function embeddingRows(tensors: Record<string, RawTensor>): number | null {
  const k = Object.keys(tensors).find((n) => /(^|\.)embed_tokens(\.embed)?\.weight$/.test(n));
  return k === undefined ? null : tensors[k].shape[0];
}

async function fromBytes(bytes: Uint8Array, label: string, dtype: FloatDType): Promise<Pretrained> {
  if (isZip(bytes)) {
    const imp = await host.importFairseq(bytes, label, dtype);
    const vocab = host.taskVocabulary(imp.task, imp.taskInfo.dictionary_size as number);
    const config: ModelConfig = {
      format: MODEL_FOLDER_FORMAT,
      arch: imp.arch,
      task: imp.task,
      model_args: imp.modelArgs,
      task_info: imp.taskInfo,
      tokenizer: vocab?.tokenizer ?? { type: 'none', append_eos: true },
    };
    return wrap(imp.model, config, vocab ? new Tokenizer(vocab.dict, vocab.tokenizer, `${label} (task ${imp.task})`) : null, dtype);
  }
  const { tensors, metadata } = decodeSafetensors(bytes, label);
  if (metadata.format !== CHECKPOINT_FORMAT) {
    throw new CheckpointError(
      `${label}: metadata format = ${JSON.stringify(metadata.format ?? null)} (expected "${CHECKPOINT_FORMAT}", ` +
        `a checkpoint of mega train / mega import-fairseq; a model folder's weights load with its folder)`,
    );
  }
  const json = (key: string): Record<string, unknown> => {
    try {
      const v = JSON.parse(metadata[key] ?? 'null') as unknown;
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      // reported below
    }
    throw new CheckpointError(`${label}: metadata "${key}" missing or not a JSON object`);
  };
  const task = metadata.task ?? '';
  const taskInfo = json('task_info');
  const vocab = typeof taskInfo.dictionary_size === 'number' ? host.taskVocabulary(task, taskInfo.dictionary_size) : null;
  const config = checkModelConfig(
    {
      format: MODEL_FOLDER_FORMAT,
      arch: metadata.arch,
      task,
      model_args: json('model_args'),
      task_info: taskInfo,
      tokenizer: vocab?.tokenizer ?? { type: 'none', append_eos: true },
    },
    label,
  );
  const model = build(config, label, dtype);
  loadWeights(model, tensors, label, baseArch(config), dtype);
  return wrap(model, config, vocab ? new Tokenizer(vocab.dict, vocab.tokenizer, `${label} (task ${task})`) : null, dtype);
}

function build(config: ModelConfig, label: string, dtype: FloatDType): MegaAnyModel {
  const arch = baseArch(config);
  const ti = config.task_info;
  const task: TaskInfo | null = typeof ti.dictionary_size === 'number' ? (ti as unknown as TaskInfo) : null;
  try {
    return buildModel(arch, config.model_args, task, { dtype });
  } catch (e) {
    throw new ConfigError(`${label}: cannot build arch ${arch} from its model arguments: ${(e as Error).message}`, { cause: e });
  }
}

function loadWeights(model: MegaAnyModel, tensors: Record<string, RawTensor>, label: string, arch: string, dtype: FloatDType): void {
  const sd: Record<string, Tensor> = {};
  for (const [k, r] of Object.entries(tensors)) {
    const t = fromStorage(r.data, r.shape);
    sd[k] = t.dtype === 'f32' || t.dtype === 'f64' ? cast(t, dtype) : t;
  }
  try {
    model.loadStateDict(sd);
  } catch (e) {
    throw new CheckpointError(`${label}: weights do not fit arch ${arch}: ${(e as Error).message}`, { cause: e });
  }
  model.eval();
}

function wrap(model: MegaAnyModel, config: ModelConfig, tokenizer: Tokenizer | null, dtype: FloatDType): Pretrained {
  placeOnDevice(model.parameters()); // GPU: the weights are uploaded once, not per kernel launch
  const kind = ARCHITECTURES[baseArch(config)].model;
  if (model instanceof LRAModel && kind === 'lra') return new SequenceClassifier(model, config, tokenizer, dtype);
  if (model instanceof MegaLanguageModel) return new LanguageModel(model, config, tokenizer, dtype);
  if (model instanceof MegaModel) return new Translator(model, config, tokenizer, dtype);
  if (model instanceof SCRawModel) return new AudioClassifier(model, config, tokenizer, dtype);
  throw new ConfigError(`arch ${config.arch}: no model class for it`);
}
