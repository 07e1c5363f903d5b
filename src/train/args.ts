/**
 * Options of `mega train` / `mega eval`: one schema of fairseq-named settings (snake_case inside,
 * `--kebab-case` on the command line), the per-task defaults, the published recipes (docs/MEGA.md §8.6) as
 * per-arch defaults, JSON config files, and validation.
 *
 * Precedence (lowest first): generic defaults → task defaults → recipe of the arch → `--config FILE`
 * → command-line flags. Config keys may be written `kebab-case`, `snake_case` or `camelCase`.
 *
 * Model settings (`encoder_embed_dim`, `norm_type`, ...) are passed through to the model builder
 * under their fairseq names and override the arch preset (see `arch.ts`).
 */
import { readFileBounded } from '../io/read.js';
import { ConfigError } from './errors.js';
import { DIST_TRAIN_OPTIONS } from './distributed.js';
import { canonicalKey, coerce, type OptSpec, type OptSchema, type OptType, type OptValue } from './flags.js';
import { applyFairseqNames, checkFairseqConsistency, FAIRSEQ_TASK_NAMES, FAIRSEQ_TRAIN_OPTIONS } from './fairseq-options.js';

export { canonicalKey, parseFlags, type OptSpec, type OptType } from './flags.js';

/** The tasks `mega train --task` accepts. */
export const TASKS = ['listops', 'text', 'retrieval', 'image', 'lm', 'translation', 'speech'] as const;
/** A task name. */
export type TaskName = (typeof TASKS)[number];

const S = <T extends OptType>(type: T, group: OptSpec['group'], help: string, extra: Partial<Omit<OptSpec, 'type'>> = {}): OptSpec & { type: T } => ({
  ...extra,
  type,
  group,
  help,
});

const SPECS = {
  // main
  task: S('string', 'main', `task: ${TASKS.join(', ')} (fairseq names too: lra-text, lra-image, language_modeling, translation, speech_commands)`, {
    choices: [...TASKS, ...Object.keys(FAIRSEQ_TASK_NAMES)],
    meta: 'NAME',
  }),
  arch: S('string', 'main', "architecture preset (list below; default: the task's small CPU preset)", { meta: 'NAME', short: 'a' }),
  config: S('string', 'main', 'JSON file of options (keys as the flags); flags override it', { meta: 'FILE' }),
  save_dir: S('string', 'main', 'folder for checkpoints, metrics.jsonl and curves.svg (default checkpoints)', { meta: 'DIR' }),
  resume: S('boolean', 'main', "continue SAVE_DIR/checkpoint_last exactly (first run's options; flags given now override them)"),
  overwrite: S('boolean', 'main', 'start over even if SAVE_DIR already holds a checkpoint'),
  seed: S('int', 'main', 'random seed of initialisation, dropout, data order and generated data (default 1)'),
  // data
  data: S('string', 'data', 'data file or folder of the task (listops without --data: generated data)', { meta: 'PATH' }),
  num_classes: S('int', 'data', 'number of classes (classification tasks; default from the arch)'),
  max_positions: S('int', 'data', 'longest input the model accepts (tokens / pixels / samples)', { model: true }),
  truncate: S('boolean', 'data', 'keep the first max_positions tokens of longer inputs (fairseq TruncateDataset) instead of failing'),
  tokens_per_sample: S('int', 'data', 'lm: tokens per training block'),
  valid_fraction: S('number', 'data', 'lm/speech with a single file or folder: fraction held out for validation'),
  pixel_mean: S('number', 'data', 'image: pixel normalisation mean (default 0.5)'),
  pixel_std: S('number', 'data', 'image: pixel normalisation std (default 0.5)'),
  speech_length: S('int', 'data', 'speech: samples per clip; shorter clips are dropped (default 16000)'),
  listops_train: S('int', 'data', 'generated ListOps: training examples'),
  listops_valid: S('int', 'data', 'generated ListOps: validation examples'),
  listops_test: S('int', 'data', 'generated ListOps: test examples'),
  listops_max_depth: S('int', 'data', 'generated ListOps: maximum tree depth'),
  listops_max_args: S('int', 'data', 'generated ListOps: maximum operator arguments'),
  listops_min_length: S('int', 'data', 'generated ListOps: minimum length in tokens'),
  listops_max_length: S('int', 'data', 'generated ListOps: maximum length in tokens'),
  // optimisation
  max_update: S('int', 'optim', 'number of updates'),
  max_epoch: S('int', 'optim', 'stop after this many epochs (0 = no limit)'),
  lr: S('number', 'optim', 'peak learning rate'),
  lr_scheduler: S('string', 'optim', 'learning-rate schedule', { choices: ['linear_decay', 'cosine', 'fixed', 'inverse_sqrt'] }),
  warmup_updates: S('int', 'optim', "warmup updates (default: the task's, scaled down in proportion when --max-update is at or below it)"),
  warmup_init_lr: S('number', 'optim', 'learning rate at update 0 of the warmup'),
  warmup_power: S('number', 'optim', 'linear_decay: warmup exponent (2 = quadratic)'),
  end_learning_rate: S('number', 'optim', 'linear_decay: final learning rate'),
  total_num_update: S('int', 'optim', 'linear_decay: updates of the whole schedule (default --max-update)'),
  min_lr: S('number', 'optim', 'cosine: minimum learning rate'),
  t_mult: S('number', 'optim', 'cosine: period growth factor'),
  lr_period_updates: S('int', 'optim', 'cosine: period in updates'),
  lr_shrink: S('number', 'optim', 'cosine: shrink factor per period'),
  optimizer: S('string', 'optim', 'optimizer (fairseq adam)', { choices: ['adam'] }),
  adam_betas: S('string', 'optim', 'Adam betas, e.g. "(0.9, 0.98)"', { meta: 'B1,B2' }),
  adam_eps: S('number', 'optim', 'Adam epsilon'),
  weight_decay: S('number', 'optim', 'decoupled weight decay'),
  clip_norm: S('number', 'optim', 'clip the global gradient norm to this (0 = off)'),
  batch_size: S('int', 'optim', 'examples per micro-batch'),
  batch_size_valid: S('int', 'optim', 'examples per validation batch (default --batch-size)'),
  max_tokens: S('int', 'optim', 'lm: tokens per micro-batch (sets the batch size in blocks)'),
  update_freq: S('int', 'optim', 'micro-batches accumulated per update (gradient accumulation)'),
  label_smoothing: S('number', 'optim', 'translation: label smoothing epsilon'),
  // model
  dropout: S('number', 'model', 'dropout probability', { model: true }),
  attention_dropout: S('number', 'model', 'attention dropout', { model: true }),
  hidden_dropout: S('number', 'model', 'hidden dropout of the Mega layers (LRA: act_dropout)', { model: true }),
  activation_dropout: S('number', 'model', 'NFFN activation dropout', { model: true }),
  chunk_size: S('int', 'model', 'attention chunk size (-1 = unchunked)', { model: true }),
  truncation_length: S('int', 'model', 'EMA kernel truncation (<= 0: none)', { model: true }),
  layers: S('int', 'model', 'number of layers (encoder and/or decoder)', { model: true }),
  embed_dim: S('int', 'model', 'model dimension D', { model: true }),
  hidden_dim: S('int', 'model', 'Mega hidden (value) dimension H', { model: true }),
  ffn_embed_dim: S('int', 'model', 'NFFN hidden dimension F', { model: true }),
  z_dim: S('int', 'model', 'shared query/key dimension Z', { model: true }),
  n_dim: S('int', 'model', 'EMA dimension N', { model: true }),
  norm_type: S('string', 'model', 'normalisation', { model: true, choices: ['layernorm', 'scalenorm', 'rmsnorm', 'batchnorm', 'syncbatchnorm'] }),
  normalize_before: S('boolean', 'model', 'pre-norm (adds a final norm)', { model: true }),
  attention_activation_fn: S('string', 'model', 'attention function', { model: true, choices: ['softmax', 'laplace', 'relu2'] }),
  activation_fn: S('string', 'model', 'activation', { model: true, choices: ['silu', 'relu', 'gelu', 'gelu_accurate', 'tanh', 'linear'] }),
  rel_pos_bias: S('string', 'model', 'relative position bias', { model: true, choices: ['simple', 'rotary'] }),
  feature_dropout: S('boolean', 'model', 'feature (channel) dropout', { model: true }),
  ...rawModelFields(),
  // run
  validate_interval_updates: S('int', 'run', 'validate (and save) every N updates (0 = only at the end)'),
  save_interval_updates: S('int', 'run', 'save checkpoint_last every N updates (default: at each validation)'),
  log_interval: S('int', 'run', 'updates per metrics.jsonl training record'),
  best_checkpoint_metric: S('string', 'run', 'metric of checkpoint_best (bleu: not computed during validation here; loss decides)', {
    choices: ['accuracy', 'loss', 'bleu'],
  }),
  no_save: S('boolean', 'run', 'write nothing to --save-dir (no checkpoint, metrics or plots)'),
  threads: S('int', 'run', 'CPU threads of the matmul kernels'),
  quiet: S('boolean', 'run', 'no progress bar and no intermediate lines'),
  json: S('boolean', 'run', 'print one final JSON line of results'),
  ...DIST_TRAIN_OPTIONS, // --workers, --max-restarts, --dist-backend, --dist-timeout (src/dist)
  ...FAIRSEQ_TRAIN_OPTIONS, // fairseq's recipe flags (fairseq-options.ts)
} satisfies Readonly<Record<string, OptSpec>>;

/** Every option of `mega train` (snake_case name → spec). */
export const TRAIN_OPTIONS: OptSchema = SPECS;

/** The options every resolved set has (generic, task and derived defaults). */
type ResolvedKey =
  | 'seed'
  | 'save_dir'
  | 'max_epoch'
  | 'lr_scheduler'
  | 'warmup_init_lr'
  | 'end_learning_rate'
  | 'optimizer'
  | 'adam_betas'
  | 'adam_eps'
  | 'weight_decay'
  | 'clip_norm'
  | 'update_freq'
  | 'log_interval'
  | 'truncate'
  | 'resume'
  | 'overwrite'
  | 'no_save'
  | 'quiet'
  | 'json'
  | 'label_smoothing'
  | 'valid_fraction'
  | 'pixel_mean'
  | 'pixel_std'
  | 'speech_length'
  | 'arch'
  | 'lr'
  | 'warmup_updates'
  | 'max_update'
  | 'batch_size'
  | 'validate_interval_updates'
  | 'total_num_update'
  | 'batch_size_valid'
  | 'save_interval_updates';

type KnownOptions = { [K in keyof typeof SPECS]: OptValue<(typeof SPECS)[K]['type']> };

/**
 * A resolved set of options (fairseq names, snake_case), typed from {@link TRAIN_OPTIONS}: every
 * option has the type of its spec, those in `ResolvedKey` are always present, and model fields
 * not in the table pass through as `unknown`.
 */
export type TrainArgs = Record<string, unknown> & Partial<Omit<KnownOptions, ResolvedKey | 'task'>> & Pick<KnownOptions, ResolvedKey> & { task: TaskName };

/** fairseq model fields accepted under their own names (`--encoder-layers`, ...); see `arch.ts`. */
function rawModelFields(): Record<string, OptSpec> {
  const out: Record<string, OptSpec> = {};
  const ints = [
    'encoder_layers',
    'decoder_layers',
    'encoder_embed_dim',
    'decoder_embed_dim',
    'encoder_hidden_dim',
    'decoder_hidden_dim',
    'encoder_ffn_embed_dim',
    'decoder_ffn_embed_dim',
    'encoder_z_dim',
    'decoder_z_dim',
    'encoder_n_dim',
    'decoder_n_dim',
    'encoder_chunk_size',
    'decoder_chunk_size',
    'classifier_out_dim',
    'classifier_layers',
    'max_source_positions',
    'max_target_positions',
  ];
  for (const k of ints) out[k] = S('int', 'model', 'fairseq model field', { model: true });
  for (const k of ['share_all_embeddings', 'share_decoder_input_output_embed', 'no_affine_final_norm', 'no_scale_embedding', 'encoder_normalize_before']) {
    out[k] = S('boolean', 'model', 'fairseq model field', { model: true });
  }
  out.act_dropout = S('number', 'model', 'fairseq model field (LRA hidden/activation dropout)', { model: true });
  out.normalization_type = S('string', 'model', 'fairseq model field (lm/translation norm)', {
    model: true,
    choices: ['layernorm', 'scalenorm', 'rmsnorm', 'batchnorm', 'syncbatchnorm'],
  });
  // adaptive input / adaptive softmax of the LM (the WikiText-103 archs set them)
  for (const k of ['adaptive_input', 'tie_adaptive_weights', 'tie_adaptive_proj'])
    out[k] = S('boolean', 'model', 'fairseq model field (lm adaptive input / softmax)', { model: true });
  for (const k of ['adaptive_input_cutoff', 'adaptive_softmax_cutoff'])
    out[k] = S('string', 'model', 'fairseq model field (lm: comma separated cutoffs, e.g. 20000,60000)', { model: true });
  for (const k of ['adaptive_input_factor', 'adaptive_softmax_factor', 'adaptive_softmax_dropout'])
    out[k] = S('number', 'model', 'fairseq model field (lm adaptive input / softmax)', { model: true });
  return out;
}

/**
 * The task each arch is meant for (reference archs and the CPU presets of `arch.ts`), so that
 * `--arch NAME` alone selects its task.
 */
export const ARCH_TASKS: Readonly<Record<string, TaskName>> = {
  mega_lra_listop: 'listops',
  mega_lra_imdb: 'text',
  mega_lra_aan: 'retrieval',
  mega_lra_cifar10: 'image',
  mega_lra_pf32: 'image',
  mega_lra_pf128: 'image',
  sc_raw: 'speech',
  mega_sc_raw: 'speech',
  mega_sc_raw_base: 'speech',
  mega_sc_raw_big: 'speech',
  mega: 'translation',
  mega_wmt_en_de: 'translation',
  mega_wmt_en_de_big: 'translation',
  mega_lm: 'lm',
  mega_lm_big: 'lm',
  mega_lm_adaptive_big: 'lm',
  mega_lm_wiki103: 'lm',
  mega_lm_adaptive_base: 'lm',
  mega_lm_enwik8_base: 'lm',
  mega_lm_enwik8_large: 'lm',
  mega_lra_listop_tiny: 'listops',
  mega_lra_imdb_tiny: 'text',
  mega_lra_aan_tiny: 'retrieval',
  mega_lra_image_tiny: 'image',
  mega_sc_raw_tiny: 'speech',
  mega_lm_tiny: 'lm',
  mega_nmt_tiny: 'translation',
};

/** Generic defaults (fairseq / recipe conventions). */
const GENERIC_DEFAULTS: Record<string, unknown> = {
  save_dir: 'checkpoints',
  seed: 1,
  max_epoch: 0,
  lr_scheduler: 'linear_decay',
  warmup_init_lr: 1e-7,
  end_learning_rate: 0,
  optimizer: 'adam',
  adam_betas: '(0.9, 0.98)',
  adam_eps: 1e-8,
  weight_decay: 0,
  clip_norm: 1,
  update_freq: 1,
  log_interval: 10,
  truncate: false,
  resume: false,
  overwrite: false,
  no_save: false,
  quiet: false,
  json: false,
  label_smoothing: 0.1,
  valid_fraction: 0.1,
  pixel_mean: 0.5,
  pixel_std: 0.5,
  speech_length: 16000,
};

/**
 * Per-task defaults: the small CPU preset and a run that finishes in minutes. With no arguments
 * `mega train` is the listops row (the README's main job), tuned on a 2-core machine.
 */
export const TASK_DEFAULTS: Readonly<Record<TaskName, Record<string, unknown>>> = {
  listops: {
    arch: 'mega_lra_listop_tiny',
    lr: 0.005,
    warmup_updates: 100,
    max_update: 1000,
    batch_size: 32,
    weight_decay: 0.01,
    validate_interval_updates: 250,
    listops_train: 6000,
    listops_valid: 500,
    listops_test: 500,
    listops_max_depth: 3,
    listops_max_args: 5,
    listops_min_length: 10,
    listops_max_length: 60,
  },
  text: { arch: 'mega_lra_imdb_tiny', lr: 0.004, warmup_updates: 50, max_update: 500, batch_size: 16, weight_decay: 0.01, validate_interval_updates: 100 },
  retrieval: { arch: 'mega_lra_aan_tiny', lr: 0.003, warmup_updates: 50, max_update: 500, batch_size: 8, weight_decay: 0.04, validate_interval_updates: 100 },
  image: { arch: 'mega_lra_image_tiny', lr: 0.01, warmup_updates: 50, max_update: 500, batch_size: 32, weight_decay: 0.02, validate_interval_updates: 100 },
  lm: {
    arch: 'mega_lm_tiny',
    lr: 0.005,
    warmup_updates: 50,
    max_update: 500,
    batch_size: 8,
    tokens_per_sample: 128,
    weight_decay: 0.1,
    clip_norm: 0.25,
    validate_interval_updates: 100,
  },
  translation: { arch: 'mega_nmt_tiny', lr: 0.001, warmup_updates: 50, max_update: 500, batch_size: 16, weight_decay: 0.05, validate_interval_updates: 100 },
  speech: {
    arch: 'mega_sc_raw_tiny',
    lr: 0.01,
    warmup_updates: 50,
    max_update: 500,
    batch_size: 4,
    update_freq: 2,
    weight_decay: 0.01,
    validate_interval_updates: 100,
  },
};

/** Recipe rows by arch (see {@link RECIPES}). */
const RECIPE_TABLE: Record<string, Record<string, unknown>> = {
  mega_lra_listop: {
    task: 'listops',
    lr: 1e-3,
    weight_decay: 0.01,
    batch_size: 64,
    update_freq: 1,
    max_update: 90000,
    warmup_updates: 3000,
    dropout: 0.1,
    attention_dropout: 0,
    hidden_dropout: 0,
    norm_type: 'layernorm',
    normalize_before: false,
    attention_activation_fn: 'softmax',
    clip_norm: 1,
    validate_interval_updates: 1000,
  },
  mega_lra_imdb: {
    task: 'text',
    lr: 4e-3,
    weight_decay: 0.01,
    batch_size: 25,
    update_freq: 2,
    max_update: 25000,
    warmup_updates: 10000,
    dropout: 0.1,
    attention_dropout: 0,
    hidden_dropout: 0,
    norm_type: 'scalenorm',
    normalize_before: false,
    attention_activation_fn: 'softmax',
    clip_norm: 1,
    validate_interval_updates: 1000,
  },
  mega_lra_aan: {
    task: 'retrieval',
    lr: 3e-3,
    weight_decay: 0.04,
    batch_size: 8,
    update_freq: 8,
    max_update: 91960,
    warmup_updates: 10000,
    dropout: 0.1,
    attention_dropout: 0,
    hidden_dropout: 0,
    norm_type: 'scalenorm',
    normalize_before: false,
    attention_activation_fn: 'softmax',
    clip_norm: 1,
    validate_interval_updates: 1000,
  },
  mega_lra_cifar10: {
    task: 'image',
    lr: 1e-2,
    weight_decay: 0.02,
    batch_size: 50,
    update_freq: 1,
    max_update: 180000,
    warmup_updates: 9000,
    dropout: 0,
    attention_dropout: 0,
    hidden_dropout: 0,
    norm_type: 'batchnorm',
    normalize_before: true,
    attention_activation_fn: 'laplace',
    clip_norm: 1,
    pixel_mean: 0.48,
    pixel_std: 0.24,
    validate_interval_updates: 1000,
  },
  mega_lra_pf32: {
    task: 'image',
    lr: 1e-2,
    weight_decay: 0.01,
    batch_size: 128,
    update_freq: 1,
    max_update: 250000,
    warmup_updates: 50000,
    dropout: 0,
    attention_dropout: 0,
    hidden_dropout: 0,
    norm_type: 'batchnorm',
    normalize_before: true,
    attention_activation_fn: 'laplace',
    clip_norm: 1,
    validate_interval_updates: 1000,
  },
  mega_lra_pf128: {
    task: 'image',
    lr: 1e-2,
    weight_decay: 0.01,
    batch_size: 2,
    update_freq: 8,
    max_update: 125000,
    warmup_updates: 25000,
    warmup_power: 2,
    dropout: 0,
    attention_dropout: 0,
    hidden_dropout: 0,
    norm_type: 'batchnorm',
    normalize_before: true,
    attention_activation_fn: 'laplace',
    clip_norm: 1,
    validate_interval_updates: 1000,
  },
  mega_sc_raw_base: {
    task: 'speech',
    lr: 1e-2,
    weight_decay: 0.01,
    batch_size: 20,
    update_freq: 1,
    max_update: 250000,
    warmup_updates: 10000,
    dropout: 0,
    attention_dropout: 0,
    hidden_dropout: 0,
    normalize_before: true,
    clip_norm: 1,
    validate_interval_updates: 1000,
  },
  mega_sc_raw_big: {
    task: 'speech',
    lr: 8e-3,
    weight_decay: 0.01,
    batch_size: 20,
    update_freq: 1,
    max_update: 250000,
    warmup_updates: 10000,
    dropout: 0,
    attention_dropout: 0,
    hidden_dropout: 0,
    normalize_before: true,
    clip_norm: 1,
    validate_interval_updates: 1000,
  },
  mega_wmt_en_de: {
    task: 'translation',
    lr: 1e-3,
    weight_decay: 0.05,
    batch_size: 64,
    update_freq: 1,
    max_update: 500000,
    warmup_updates: 4000,
    dropout: 0.15,
    attention_dropout: 0.1,
    hidden_dropout: 0.1,
    activation_dropout: 0.1,
    truncation_length: 0,
    label_smoothing: 0.1,
    share_all_embeddings: true,
    clip_norm: 1,
    validate_interval_updates: 1000,
  },
  mega_lm_adaptive_big: {
    task: 'lm',
    lr: 5e-3,
    weight_decay: 0.1,
    update_freq: 1,
    max_update: 400000,
    warmup_updates: 24000,
    dropout: 0.3,
    attention_dropout: 0.1,
    hidden_dropout: 0.1,
    chunk_size: 1024,
    truncation_length: 8192,
    rel_pos_bias: 'rotary',
    normalize_before: true,
    no_affine_final_norm: true,
    max_target_positions: 8096,
    tokens_per_sample: 4096,
    max_tokens: 6144,
    clip_norm: 0.25,
    validate_interval_updates: 1000,
  },
  mega_lm_enwik8_base: {
    task: 'lm',
    lr: 5e-3,
    weight_decay: 0.1,
    update_freq: 1,
    max_update: 400000,
    warmup_updates: 24000,
    dropout: 0.1,
    attention_dropout: 0,
    hidden_dropout: 0,
    chunk_size: 2048,
    truncation_length: 8192,
    rel_pos_bias: 'rotary',
    normalize_before: true,
    no_affine_final_norm: true,
    share_decoder_input_output_embed: true,
    max_target_positions: 10384,
    tokens_per_sample: 4096,
    max_tokens: 8192,
    clip_norm: 0.25,
    validate_interval_updates: 1000,
  },
};

/**
 * The published recipes (docs/MEGA.md §8.6) as defaults for their arch: hyperparameters and the model
 * settings the READMEs override (attention function, attention dropout, norm, pre-norm). Arch
 * aliases share their recipe.
 */
export const RECIPES: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  ...RECIPE_TABLE,
  mega_sc_raw: RECIPE_TABLE.mega_sc_raw_base!,
  sc_raw: RECIPE_TABLE.mega_sc_raw_base!,
  mega_lm_wiki103: RECIPE_TABLE.mega_lm_adaptive_big!,
};

/**
 * Read a JSON config file: an object whose keys are option names (any spelling) with typed values.
 * @throws ConfigError for an unreadable file, invalid JSON, an unknown key or an ill-typed value
 */
export function readConfigFile(path: string, schema: Readonly<Record<string, OptSpec>> = TRAIN_OPTIONS): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder().decode(readFileBounded(path, ConfigError, 1 << 24));
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`${path}: cannot read config file (${(e as Error).message.split('\n')[0]})`);
  }
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path}: invalid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new ConfigError(`${path}: expected a JSON object of options`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    const key = canonicalKey(k);
    const spec = schema[key];
    if (!spec || key === 'config') throw new ConfigError(`${path}: unknown option "${k}" (see mega train --help)`);
    if (v === null) continue;
    out[key] = coerce(spec, v, `${path}: "${k}"`, false);
  }
  return out;
}

/** Combine user-given options (config then flags) with the defaults of their task and arch. */
export function resolveTrainArgs(given: Readonly<Record<string, unknown>>, defaultTask: TaskName = 'listops'): TrainArgs {
  const user: Record<string, unknown> = { ...given };
  applyFairseqNames(user, typeof user.arch === 'string' ? ARCH_TASKS[user.arch] : undefined);
  const recipeOf = (arch: unknown): Record<string, unknown> => (typeof arch === 'string' ? (RECIPES[arch] ?? {}) : {});
  let task = (user.task ?? (typeof user.arch === 'string' ? ARCH_TASKS[user.arch] : undefined) ?? defaultTask) as TaskName;
  if (!TASKS.includes(task)) throw new ConfigError(`--task = ${JSON.stringify(task)}: expected one of ${TASKS.join(', ')}`);
  const arch = (user.arch ?? TASK_DEFAULTS[task].arch) as string;
  const recipe = recipeOf(arch);
  if (recipe.task && user.task && recipe.task !== user.task) {
    throw new ConfigError(`--arch ${arch} is a ${String(recipe.task)} architecture, but --task is ${task}`);
  }
  task = (recipe.task as TaskName | undefined) ?? task;
  const out: Record<string, unknown> = { ...GENERIC_DEFAULTS, ...TASK_DEFAULTS[task], ...recipe, ...user, task, arch };
  delete out.config;
  delete out.help;
  deriveWarmup(out, user, { ...GENERIC_DEFAULTS, ...TASK_DEFAULTS[task], ...recipe });
  if (out.total_num_update === undefined) out.total_num_update = out.max_update;
  checkWarmup(out, user);
  // the recipes' --warmup-init-lr 1e-7 only applies with a warmup (fairseq rejects it without one)
  if (out.warmup_updates === 0 && user.warmup_init_lr === undefined && recipe.warmup_init_lr === undefined) out.warmup_init_lr = -1;
  if (out.batch_size_valid === undefined) out.batch_size_valid = out.batch_size;
  if (out.save_interval_updates === undefined) out.save_interval_updates = out.validate_interval_updates;
  validateTrainArgs(out as TrainArgs);
  checkFairseqConsistency(out);
  return out as TrainArgs;
}

/**
 * A `--max-update` at or below the default warmup (listops: 100 warmup updates of 1000) would leave
 * no decay (or make linear_decay's slope undefined): when the user gave neither `--warmup-updates`
 * nor `--total-num-update`, the warmup keeps the default run's proportion (100 updates → 10).
 */
function deriveWarmup(out: Record<string, unknown>, user: Readonly<Record<string, unknown>>, defaults: Readonly<Record<string, unknown>>): void {
  const T = out.max_update,
    W = out.warmup_updates,
    T0 = defaults.max_update,
    W0 = defaults.warmup_updates;
  if (user.warmup_updates !== undefined || user.total_num_update !== undefined) return;
  if (typeof T !== 'number' || typeof W !== 'number' || typeof T0 !== 'number' || typeof W0 !== 'number' || !(W >= T) || !(T0 > 0)) return;
  out.warmup_updates = Math.min(Math.max(1, Math.floor((T * W0) / T0)), T - 1);
}

/** linear_decay needs a decay phase: explain `--total-num-update == --warmup-updates` with the flags the user gave. */
function checkWarmup(out: Record<string, unknown>, user: Readonly<Record<string, unknown>>): void {
  if (out.lr_scheduler !== 'linear_decay' || out.total_num_update !== out.warmup_updates || out.warmup_updates === 0) return;
  const W = `--warmup-updates ${String(out.warmup_updates)}${user.warmup_updates === undefined ? ` (the ${String(out.arch)} default)` : ''}`;
  const T = user.total_num_update !== undefined ? `--total-num-update ${String(out.total_num_update)}` : `--max-update ${String(out.max_update)}`;
  throw new ConfigError(
    `${W} equals ${T}: linear_decay warms up for --warmup-updates and then decays until --max-update ` +
      `(or --total-num-update); give a smaller --warmup-updates or a larger --total-num-update`,
  );
}

function need(ok: boolean, msg: string): void {
  if (!ok) throw new ConfigError(msg);
}

/**
 * Range checks of the non-model options (model settings are checked with the arch in `arch.ts`).
 * @throws ConfigError naming the option and the expected range
 */
export function validateTrainArgs(a: TrainArgs): void {
  const int = (k: string, min: number): void => {
    const v = a[k];
    if (v === undefined) return;
    need(typeof v === 'number' && Number.isInteger(v) && v >= min, `--${k.replace(/_/g, '-')} = ${String(v)}: expected an integer >= ${min}`);
  };
  const prob = (k: string): void => {
    const v = a[k];
    if (v === undefined) return;
    need(typeof v === 'number' && v >= 0 && v < 1, `--${k.replace(/_/g, '-')} = ${String(v)}: expected a probability in [0, 1)`);
  };
  int('max_update', 1);
  int('max_epoch', 0);
  int('batch_size', 1);
  int('batch_size_valid', 1);
  int('update_freq', 1);
  int('max_tokens', 1);
  int('warmup_updates', 0);
  int('validate_interval_updates', 0);
  int('save_interval_updates', 0);
  int('log_interval', 1);
  int('tokens_per_sample', 1);
  int('threads', 1);
  int('num_classes', 2);
  int('max_positions', 1);
  int('speech_length', 1);
  for (const k of ['listops_train', 'listops_valid']) int(k, 1);
  int('listops_test', 0);
  for (const k of ['dropout', 'attention_dropout', 'hidden_dropout', 'activation_dropout', 'label_smoothing']) prob(k);
  need(typeof a.lr === 'number' && a.lr >= 0, `--lr = ${String(a.lr)}: expected a learning rate >= 0`);
  need((a.weight_decay as number) >= 0, `--weight-decay = ${String(a.weight_decay)}: expected >= 0`);
  need((a.clip_norm as number) >= 0, `--clip-norm = ${String(a.clip_norm)}: expected >= 0 (0 = no clipping)`);
  need(Number.isInteger(a.seed) && a.seed >= 0, `--seed = ${String(a.seed)}: expected an integer >= 0`);
  const c = a.chunk_size;
  need(c === undefined || (typeof c === 'number' && (c === -1 || c > 0)), `--chunk-size = ${String(c)}: expected -1 (unchunked) or a positive integer`);
  const vf = a.valid_fraction as number;
  need(vf > 0 && vf < 1, `--valid-fraction = ${vf}: expected a number in (0, 1)`);
  need((a.pixel_std as number) > 0, `--pixel-std = ${String(a.pixel_std)}: expected > 0`);
  if (a.resume && a.overwrite) throw new ConfigError('--resume and --overwrite contradict each other (choose one)');
}

/** Help text of `mega train`. */
export function trainHelp(archNames: readonly string[]): string {
  const groups: Record<OptSpec['group'], string> = {
    main: 'Main',
    data: 'Data',
    optim: 'Optimisation (fairseq names)',
    model: 'Model (override the arch preset)',
    run: 'Run',
    fairseq: 'fairseq command-line compatibility',
  };
  const lines = [
    'Usage: mega train [--task NAME] [--arch NAME] [options]',
    "       mega train DATA -a ARCH --task lra-text ...   (the release's fairseq command line on its data-bin folder;",
    '                                                      resumes SAVE/checkpoint_last.pt or --restore-file as fairseq does)',
    '',
    'Trains a Mega model exactly as the fairseq recipes do (fairseq Adam, linear_decay schedule, gradient',
    'accumulation, clipping), writing SAVE_DIR/checkpoint_{last,best}.safetensors (+ .state.safetensors),',
    'metrics.jsonl and curves.svg. With no arguments: a small Mega on generated ListOps (the main job).',
    "Defaults come from the task, then the arch's published recipe, then --config FILE, then flags.",
    '',
  ];
  for (const g of Object.keys(groups) as OptSpec['group'][]) {
    lines.push(`${groups[g]}:`);
    const raw: string[] = [];
    for (const [k, s] of Object.entries(TRAIN_OPTIONS)) {
      if (s.group !== g) continue;
      if (s.help.startsWith('fairseq model field')) {
        raw.push(`--${k.replace(/_/g, '-')}`);
        continue;
      }
      const flag = `${s.short ? `-${s.short}, ` : ''}--${k.replace(/_/g, '-')}${s.type === 'boolean' ? '' : ` ${s.meta ?? (s.type === 'string' ? 'S' : 'N')}`}`;
      const help = s.infra !== undefined ? `accepted, no effect: ${s.infra}` : s.help;
      lines.push(`  ${flag.padEnd(32)} ${help}${s.choices && k !== 'arch' && k !== 'task' ? ` [${s.choices.join('|')}]` : ''}`);
    }
    if (raw.length) {
      lines.push('  fairseq model fields by their own names:');
      for (let i = 0; i < raw.length; i += 4) lines.push(`    ${raw.slice(i, i + 4).join(' ')}`);
    }
    lines.push('');
  }
  lines.push('Architectures:');
  for (let i = 0; i < archNames.length; i += 5) lines.push(`  ${archNames.slice(i, i + 5).join(', ')}`);
  lines.push('');
  lines.push('Speech on a CPU: the default mega_sc_raw_tiny (chunk 64, 2 micro-batches of 4) trains on 1-second 16 kHz');
  lines.push('clips in ≈ 1.5 GB; mega_sc_raw_base (the reference preset: 6 layers, D 60, chunk 1000) needs ≈ 3.5 GB per clip of a');
  lines.push('batch (≈ 70 GB at its batch of 20) and 1-2 minutes per clip and update on 2 CPU cores.');
  lines.push('');
  lines.push("--resume keeps the first run's options; a --max-update given then also re-derives --total-num-update,");
  lines.push('so to split one run exactly in two give its first part --total-num-update N.');
  return lines.join('\n');
}
