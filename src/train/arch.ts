/**
 * Architecture presets for training: the reference's registered archs (`src/mega/models/presets.ts`)
 * plus small CPU presets (`*_tiny`) defined here as overrides of a reference arch, the mapping of
 * the generic training flags (`--layers`, `--embed-dim`, `--chunk-size`, ...) onto each model
 * family's fairseq field names, and the consistency checks the reference would enforce.
 */
import { ConfigError } from './errors.js';
import type { Generator } from '../tensor/random.js';
import { archArgs, ARCHITECTURES, buildModelFromArgs, type MegaAnyModel, type ModelKind } from '../mega/models/presets.js';
import type { TaskInfo } from '../mega/models/common.js';
import { ARCH_TASKS, TRAIN_OPTIONS, type TaskName } from './args.js';

/** A CPU preset: a reference arch with overridden fields. */
export interface CpuPreset {
  /** The reference arch it is built from. */
  base: string;
  /** Task it is meant for. */
  task: TaskName;
  /** Fields overriding the base arch's defaults (the user's flags override these in turn). */
  overrides: Record<string, unknown>;
  /** One line for the help text. */
  description: string;
}

const LRA_TINY = {
  encoder_layers: 2,
  encoder_embed_dim: 32,
  encoder_hidden_dim: 64,
  encoder_ffn_embed_dim: 64,
  z_dim: 16,
  n_dim: 8,
  classifier_out_dim: 64,
  dropout: 0.1,
  attention_dropout: 0,
  act_dropout: 0,
  attention_activation_fn: 'softmax',
  norm_type: 'layernorm',
  encoder_normalize_before: false,
  chunk_size: -1,
};

/** Small presets that train in minutes on a laptop CPU. */
export const CPU_PRESETS: Readonly<Record<string, CpuPreset>> = {
  mega_lra_listop_tiny: {
    base: 'mega_lra_listop',
    task: 'listops',
    description: 'ListOps, 2 layers, D 32 (the main job)',
    overrides: { ...LRA_TINY, max_positions: 512, truncation_length: 512 },
  },
  mega_lra_imdb_tiny: {
    base: 'mega_lra_imdb',
    task: 'text',
    description: 'byte-level text classification, 2 layers, D 32',
    overrides: { ...LRA_TINY, norm_type: 'scalenorm', max_positions: 1024, truncation_length: 1024 },
  },
  mega_lra_aan_tiny: {
    base: 'mega_lra_aan',
    task: 'retrieval',
    description: 'byte-level retrieval (dual input), 2 layers, D 32',
    overrides: { ...LRA_TINY, norm_type: 'scalenorm', max_positions: 1024, truncation_length: 1024 },
  },
  mega_lra_image_tiny: {
    base: 'mega_lra_cifar10',
    task: 'image',
    description: 'pixel-sequence image classification, 2 layers, D 32, prenorm batchnorm',
    overrides: {
      ...LRA_TINY,
      dropout: 0,
      norm_type: 'batchnorm',
      encoder_normalize_before: true,
      attention_activation_fn: 'laplace',
      max_positions: 1024,
      truncation_length: 1024,
    },
  },
  mega_sc_raw_tiny: {
    base: 'mega_sc_raw_base',
    task: 'speech',
    description: 'raw-audio classification, 2 layers, D 16, chunk 64',
    // chunk 64 (the reference: 1000): attention costs B·L·C; with the task's batches of 4 one-second clips ≈ 1.5 GB instead of ≈ 10 GB
    overrides: {
      encoder_layers: 2,
      encoder_embed_dim: 16,
      encoder_hidden_dim: 32,
      encoder_ffn_embed_dim: 32,
      z_dim: 8,
      n_dim: 8,
      classifier_in_dim: 16,
      classifier_out_dim: 32,
      chunk_size: 64,
    },
  },
  mega_lm_tiny: {
    base: 'mega_lm',
    task: 'lm',
    description: 'byte-level language model, 2 layers, D 64, prenorm',
    overrides: {
      decoder_layers: 2,
      decoder_embed_dim: 64,
      decoder_hidden_dim: 128,
      decoder_ffn_embed_dim: 128,
      decoder_z_dim: 32,
      decoder_n_dim: 8,
      activation_dropout: 0,
      normalize_before: true,
      no_affine_final_norm: true,
      share_decoder_input_output_embed: true,
      max_target_positions: 1024,
      truncation_length: 1024,
    },
  },
  mega_lm_adaptive_tiny: {
    base: 'mega_lm_adaptive_big',
    task: 'lm',
    description: 'language model with tied adaptive input + adaptive softmax (cutoffs 64,112, factor 2), 2 layers, D 64',
    overrides: {
      decoder_layers: 2,
      decoder_embed_dim: 64,
      decoder_hidden_dim: 128,
      decoder_ffn_embed_dim: 128,
      decoder_z_dim: 32,
      decoder_n_dim: 8,
      dropout: 0.1,
      attention_dropout: 0,
      hidden_dropout: 0,
      activation_dropout: 0,
      adaptive_softmax_dropout: 0.1,
      adaptive_input_cutoff: '64,112',
      adaptive_softmax_cutoff: '64,112',
      adaptive_input_factor: 2,
      adaptive_softmax_factor: 2,
      normalize_before: true,
      no_affine_final_norm: true,
      max_target_positions: 1024,
      truncation_length: 1024,
    },
  },
  mega_nmt_tiny: {
    base: 'mega',
    task: 'translation',
    description: 'byte-level translation, 2+2 layers, D 64, shared embeddings',
    overrides: {
      encoder_layers: 2,
      decoder_layers: 2,
      encoder_embed_dim: 64,
      encoder_hidden_dim: 128,
      encoder_ffn_embed_dim: 128,
      encoder_z_dim: 32,
      encoder_n_dim: 8,
      share_all_embeddings: true,
      max_source_positions: 1024,
      max_target_positions: 1024,
      truncation_length: 1024,
    },
  },
};

/** Every arch name `mega train --arch` accepts (reference archs, then the CPU presets). */
export function allArchNames(): string[] {
  return [...Object.keys(ARCHITECTURES), ...Object.keys(CPU_PRESETS)];
}

/** The reference arch a name resolves to and the preset overrides. */
export function resolveArchName(name: string): { base: string; overrides: Record<string, unknown>; kind: ModelKind } {
  const p = CPU_PRESETS[name];
  const base = p ? p.base : name;
  const spec = ARCHITECTURES[base];
  if (!spec) throw new ConfigError(`--arch = ${JSON.stringify(name)}: unknown architecture (expected one of ${allArchNames().join(', ')})`);
  return { base, overrides: p ? { ...p.overrides } : {}, kind: spec.model };
}

/** The task an arch is meant for. */
export function archTask(name: string): TaskName {
  const p = CPU_PRESETS[name];
  if (p) return p.task;
  const { kind } = resolveArchName(name);
  return ARCH_TASKS[name] ?? (kind === 'mega' ? 'translation' : kind === 'mega_lm' ? 'lm' : kind === 'sc_raw' ? 'speech' : 'text');
}

/** Model families of the tasks. */
export function taskModelKind(task: TaskName): ModelKind {
  return task === 'lm' ? 'mega_lm' : task === 'translation' ? 'mega' : task === 'speech' ? 'sc_raw' : 'lra';
}

/** Generic training flag → fairseq field(s) of each model family. */
const GENERIC_MAP: Readonly<Record<ModelKind, Readonly<Record<string, readonly string[]>>>> = {
  lra: {
    layers: ['encoder_layers'],
    embed_dim: ['encoder_embed_dim'],
    hidden_dim: ['encoder_hidden_dim'],
    ffn_embed_dim: ['encoder_ffn_embed_dim'],
    z_dim: ['z_dim'],
    n_dim: ['n_dim'],
    chunk_size: ['chunk_size'],
    norm_type: ['norm_type'],
    normalize_before: ['encoder_normalize_before'],
    hidden_dropout: ['act_dropout'],
    activation_dropout: ['act_dropout'],
    max_positions: ['max_positions'],
  },
  sc_raw: {
    layers: ['encoder_layers'],
    embed_dim: ['encoder_embed_dim'],
    hidden_dim: ['encoder_hidden_dim'],
    ffn_embed_dim: ['encoder_ffn_embed_dim'],
    z_dim: ['z_dim'],
    n_dim: ['n_dim'],
    chunk_size: ['chunk_size'],
    norm_type: ['norm_type'],
    normalize_before: ['encoder_normalize_before'],
    hidden_dropout: ['act_dropout'],
    activation_dropout: ['act_dropout'],
    max_positions: ['max_positions'],
  },
  mega_lm: {
    layers: ['decoder_layers'],
    embed_dim: ['decoder_embed_dim'],
    hidden_dim: ['decoder_hidden_dim'],
    ffn_embed_dim: ['decoder_ffn_embed_dim'],
    z_dim: ['decoder_z_dim'],
    n_dim: ['decoder_n_dim'],
    chunk_size: ['decoder_chunk_size'],
    norm_type: ['normalization_type'],
    normalize_before: ['normalize_before'],
    max_positions: ['max_target_positions'],
  },
  mega: {
    layers: ['encoder_layers', 'decoder_layers'],
    embed_dim: ['encoder_embed_dim', 'decoder_embed_dim'],
    hidden_dim: ['encoder_hidden_dim', 'decoder_hidden_dim'],
    ffn_embed_dim: ['encoder_ffn_embed_dim', 'decoder_ffn_embed_dim'],
    z_dim: ['encoder_z_dim', 'decoder_z_dim'],
    n_dim: ['encoder_n_dim', 'decoder_n_dim'],
    chunk_size: ['encoder_chunk_size', 'decoder_chunk_size'],
    norm_type: ['normalization_type'],
    normalize_before: ['normalize_before'],
    max_positions: ['max_source_positions', 'max_target_positions'],
  },
};

/** Fields the reference derives from other fields; re-derived when the user changes their source. */
const DERIVED: Readonly<Record<ModelKind, Readonly<Record<string, string>>>> = {
  lra: { encoder_ffn_embed_dim: 'encoder_hidden_dim' },
  sc_raw: { encoder_ffn_embed_dim: 'encoder_hidden_dim', classifier_in_dim: 'encoder_embed_dim' },
  mega_lm: { decoder_ffn_embed_dim: 'decoder_hidden_dim', decoder_input_dim: 'decoder_embed_dim' },
  mega: {
    encoder_ffn_embed_dim: 'encoder_hidden_dim',
    decoder_embed_dim: 'encoder_embed_dim',
    decoder_hidden_dim: 'encoder_hidden_dim',
    decoder_ffn_embed_dim: 'encoder_ffn_embed_dim',
    decoder_z_dim: 'encoder_z_dim',
    decoder_n_dim: 'encoder_n_dim',
    decoder_chunk_size: 'encoder_chunk_size',
    decoder_input_dim: 'decoder_embed_dim',
  },
};

/**
 * The complete model namespace for a training run: reference arch defaults ← CPU preset overrides
 * ← the user's model settings (generic flags mapped to the family's fields, raw fields as given)
 * ← task facts (`sentence_class_num`).
 * @param user the user-given options only (config + flags), snake_case
 * @param numClasses classes of a classification task (sets `sentence_class_num`)
 * @throws ConfigError for an unknown arch, an arch of another task, or inconsistent settings
 */
export function resolveModelArgs(arch: string, task: TaskName, user: Readonly<Record<string, unknown>>, numClasses?: number): Record<string, unknown> {
  const { base, overrides, kind } = resolveArchName(arch);
  const want = taskModelKind(task);
  if (kind !== want || (kind === 'lra' && ARCH_TASKS[base] === 'image') !== (task === 'image')) {
    throw new ConfigError(`--arch ${arch} (${archTask(arch)} architecture) does not fit --task ${task}`);
  }
  const given: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(user)) {
    if (v === undefined) continue;
    const targets = GENERIC_MAP[kind][k];
    if (targets) for (const t of targets) given[t] = v;
    else if (TRAIN_OPTIONS[k]?.model) given[k] = v;
  }
  if (kind === 'sc_raw' && user.speech_length !== undefined && given.max_positions === undefined) given.max_positions = user.speech_length;
  // a field derived from another one follows the user's change of its source unless given itself
  const merged: Record<string, unknown> = { ...overrides, ...given };
  for (const [dst, src] of Object.entries(DERIVED[kind])) {
    if (given[src] !== undefined && given[dst] === undefined) merged[dst] = merged[src];
  }
  // LRA: classifier_in_dim is D (AAN: 2D), derived by the arch function from the final D
  if (kind === 'lra' && given.classifier_in_dim === undefined) delete merged.classifier_in_dim;
  if (numClasses !== undefined && (kind === 'lra' || kind === 'sc_raw')) merged.sentence_class_num = numClasses;
  const a = archArgs(base, merged);
  checkModelArgs(kind, a);
  return a;
}

function posInt(a: Record<string, unknown>, k: string): void {
  const v = a[k];
  if (v === undefined || v === null) return;
  if (!(typeof v === 'number' && Number.isInteger(v) && v >= 1)) throw new ConfigError(`${k} = ${String(v)}: expected an integer >= 1`);
}

/**
 * The checks the reference makes when it builds the model, as one-line errors before anything runs.
 * @throws ConfigError
 */
export function checkModelArgs(kind: ModelKind, a: Record<string, unknown>): void {
  for (const k of [
    'encoder_layers',
    'decoder_layers',
    'encoder_embed_dim',
    'decoder_embed_dim',
    'encoder_hidden_dim',
    'decoder_hidden_dim',
    'z_dim',
    'encoder_z_dim',
    'decoder_z_dim',
    'n_dim',
    'encoder_n_dim',
    'decoder_n_dim',
    'max_positions',
    'max_source_positions',
    'max_target_positions',
    'classifier_out_dim',
  ])
    posInt(a, k);
  for (const k of ['chunk_size', 'encoder_chunk_size', 'decoder_chunk_size']) {
    const c = a[k];
    if (c !== undefined && c !== null && !(typeof c === 'number' && Number.isInteger(c) && (c === -1 || c > 0))) {
      throw new ConfigError(`${k} = ${String(c)}: expected -1 (unchunked) or a positive integer`);
    }
  }
  const pre = kind === 'lra' || kind === 'sc_raw' ? a.encoder_normalize_before : a.normalize_before;
  if (a.normalize_embedding === true && pre === true)
    throw new ConfigError('normalize_embedding and pre-norm (normalize_before) are mutually exclusive (the reference asserts it)');
  if (kind === 'sc_raw') {
    const C = a.chunk_size as number;
    const L = a.max_positions as number;
    if (C > 0 && L % C !== 0)
      throw new ConfigError(`--chunk-size ${C}: the speech encoder requires the clip length ${L} to be a multiple of it (the reference asserts L mod C == 0)`);
  }
  if (kind === 'mega' && a.share_all_embeddings === true && a.encoder_embed_dim !== a.decoder_embed_dim) {
    throw new ConfigError('share_all_embeddings requires encoder_embed_dim == decoder_embed_dim');
  }
}

/**
 * Longest input the model accepts: tokens (LRA text, LM block, NMT source/target) or values.
 * Unchunked simple relative bias holds `max_positions` offsets; chunked models accept any length
 * (attention stays inside chunks), except that LRA inputs are still cut at `max_positions`.
 */
export function maxInputLength(kind: ModelKind, a: Record<string, unknown>): { source: number; target?: number } {
  switch (kind) {
    case 'lra':
    case 'sc_raw':
      return { source: a.max_positions as number };
    case 'mega_lm':
      return { source: (a.decoder_chunk_size as number) > 0 ? Infinity : (a.max_target_positions as number) };
    case 'mega': {
      const ce = a.encoder_chunk_size as number,
        cd = a.decoder_chunk_size as number;
      return { source: ce > 0 ? Infinity : (a.max_source_positions as number), target: cd > 0 ? Infinity : (a.max_target_positions as number) };
    }
  }
}

/** Build the model of a resolved namespace. */
export function buildFromModelArgs(modelArgs: Record<string, unknown>, taskInfo: TaskInfo | null, gen?: Generator): MegaAnyModel {
  return buildModelFromArgs(modelArgs, taskInfo, { gen });
}

/** Default task facts of each family for `buildArch` (byte-level vocabularies, ListOps dictionary). */
function defaultTaskInfo(task: TaskName): { taskInfo: TaskInfo | null; numClasses?: number } {
  switch (task) {
    case 'listops':
      return { taskInfo: { dictionary_size: 20, pad: 1 }, numClasses: 10 };
    case 'image':
      return { taskInfo: null };
    case 'speech':
      return { taskInfo: null };
    default:
      return { taskInfo: { dictionary_size: task === 'text' || task === 'retrieval' ? 261 : 260, pad: 1 } };
  }
}

/**
 * A model for an arch name with the default dimensions of its task (ListOps dictionary of 20
 * symbols, byte vocabularies of 260/261 ids); used by `mega info --arch`.
 * @throws ConfigError for an unknown arch or one that cannot be built without more settings
 */
export function buildArch(name: string, user: Readonly<Record<string, unknown>> = {}): MegaAnyModel {
  const task = archTask(name);
  const { taskInfo, numClasses } = defaultTaskInfo(task);
  const a = resolveModelArgs(name, task, user, numClasses);
  return buildFromModelArgs(a, taskInfo);
}
