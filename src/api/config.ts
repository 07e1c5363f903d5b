/**
 * The model folder's `config.json`: everything needed to rebuild a model and turn text into its
 * inputs — the arch, every model argument (fairseq names), the task facts (vocabulary size,
 * padding index, classes) and how text becomes token ids.
 */
import { ARCHITECTURES } from '../mega/models/presets.js';
import { ConfigError } from '../nn/errors.js';

/** Format tag of a model folder's config.json. */
export const MODEL_FOLDER_FORMAT = 'mega-ts-model/1';

/** How text becomes token ids (the vocabulary itself is the folder's dict.txt). */
export interface TokenizerConfig {
  /**
   * `bytes`: UTF-8 bytes, byte b ↦ id b + 4 (dict.txt lists the bytes as "0".."255");
   * `words`: whitespace-separated symbols of dict.txt (unknown ones ↦ `<unk>`);
   * `none`: the model reads numbers (pixels, audio samples), not tokens.
   */
  type: 'bytes' | 'words' | 'none';
  /** Append `</s>` to an encoded input, as fairseq's binarizer does (classification and translation sources). */
  append_eos: boolean;
  /** Symbols dropped before lookup (ListOps: the parentheses). */
  ignore?: string[];
}

/** The content of config.json. */
export interface ModelConfig {
  /** {@link MODEL_FOLDER_FORMAT}. */
  format: string;
  /** The arch name the model was trained with (a reference arch or a CPU preset such as `mega_lm_tiny`). */
  arch: string;
  /** Task name (`listops`, `text`, `retrieval`, `image`, `speech`, `lm`, `translation`). */
  task: string;
  /** Complete model namespace; `model_args.arch` is the reference arch that builds it. */
  model_args: Record<string, unknown>;
  /** Dictionary facts (`dictionary_size`, `pad`) and `num_classes` of classification tasks. */
  task_info: Record<string, unknown>;
  /** How text becomes ids. */
  tokenizer: TokenizerConfig;
}

function fail(label: string, msg: string): never {
  throw new ConfigError(`${label}: ${msg}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The reference arch that builds a config's model (`model_args.arch`, else `arch`). */
export function baseArch(c: Pick<ModelConfig, 'arch' | 'model_args'>): string {
  const a = c.model_args.arch;
  return typeof a === 'string' ? a : c.arch;
}

/**
 * Checks a parsed config object (arch known, fields present and typed).
 * @param label the file name for messages (e.g. `models/x/config.json`)
 * @throws ConfigError naming the file and the field
 */
export function checkModelConfig(v: unknown, label: string): ModelConfig {
  if (!isObject(v)) fail(label, `expected a JSON object, got ${Array.isArray(v) ? 'an array' : typeof v}`);
  if (v.format !== MODEL_FOLDER_FORMAT)
    fail(label, `format = ${JSON.stringify(v.format ?? null)} (expected "${MODEL_FOLDER_FORMAT}": a folder written by mega export)`);
  if (typeof v.arch !== 'string' || v.arch === '') fail(label, 'field "arch" missing (expected the arch name, e.g. "mega_lra_listop_tiny")');
  if (typeof v.task !== 'string' || v.task === '') fail(label, 'field "task" missing (expected the task name, e.g. "listops")');
  if (!isObject(v.model_args)) fail(label, 'field "model_args" missing (expected an object of model arguments)');
  if (!isObject(v.task_info)) fail(label, 'field "task_info" missing (expected an object with dictionary_size and pad)');
  const tok = v.tokenizer;
  if (!isObject(tok) || !['bytes', 'words', 'none'].includes(tok.type as string) || typeof tok.append_eos !== 'boolean') {
    fail(label, 'field "tokenizer" missing or malformed (expected {"type": "bytes"|"words"|"none", "append_eos": true|false})');
  }
  if (tok.ignore !== undefined && !(Array.isArray(tok.ignore) && tok.ignore.every((s) => typeof s === 'string')))
    fail(label, 'tokenizer.ignore must be an array of strings');
  const c = v as unknown as ModelConfig;
  const base = baseArch(c);
  if (!ARCHITECTURES[base]) fail(label, `unknown arch '${base}' (expected one of ${Object.keys(ARCHITECTURES).join(', ')})`);
  const ti = c.task_info;
  if (c.tokenizer.type !== 'none' && !(Number.isInteger(ti.dictionary_size) && (ti.dictionary_size as number) > 0 && Number.isInteger(ti.pad))) {
    fail(label, `task_info needs an integer dictionary_size > 0 and pad for a ${c.tokenizer.type} tokenizer`);
  }
  return c;
}

/**
 * Parses config.json text.
 * @throws ConfigError naming the file for malformed JSON or a bad field
 */
export function parseModelConfig(text: string, label: string): ModelConfig {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    fail(label, `not valid JSON (${(e as Error).message})`);
  }
  return checkModelConfig(v, label);
}
