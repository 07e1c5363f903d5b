/**
 * fairseq's command line of the Mega release's recipes, accepted by `mega train` with fairseq's
 * meaning: its task and criterion names, its alternative option names, its data options, and the
 * flags that only steer fairseq's infrastructure (accepted; each prints one line saying what it
 * becomes here). See `docs/REPRODUCE.md` for the recipes run this way.
 */
import { ConfigError } from './errors.js';
import type { OptSpec } from './flags.js';

const F = (type: OptSpec['type'], help: string, extra: Partial<OptSpec> = {}): OptSpec => ({ type, help, group: 'fairseq', ...extra });
const INFRA = (type: OptSpec['type'], infra: string): OptSpec => ({ type, help: '', group: 'fairseq', infra });

/** fairseq task names → mega-ts tasks (`lra-text` is resolved by the arch: listops, text or retrieval). */
export const FAIRSEQ_TASK_NAMES: Readonly<Record<string, string>> = {
  'lra-text': 'text',
  'lra-image': 'image',
  language_modeling: 'lm',
  translation: 'translation',
  speech_commands: 'speech',
};

/** fairseq criterion names and the mega-ts tasks whose loss each one is. */
export const CRITERIA: Readonly<Record<string, readonly string[]>> = {
  lra_cross_entropy: ['listops', 'text', 'retrieval', 'image', 'speech'],
  cross_entropy: ['lm'],
  adaptive_loss: ['lm'],
  label_smoothed_cross_entropy: ['translation'],
};

/** Options of fairseq's recipes that `mega train` takes besides its own. */
export const FAIRSEQ_TRAIN_OPTIONS: Readonly<Record<string, OptSpec>> = {
  criterion: F('string', "fairseq criterion (must be the task's loss)", { choices: Object.keys(CRITERIA) }),
  sentence_avg: F('boolean', 'average the loss over sentences (the classification tasks always do; others average over tokens)'),
  input_type: F('string', 'lra: text or image (must match the task)', { choices: ['text', 'image'] }),
  sen_rep_type: F('string', 'lra: sentence representation (mean pooling or <CLS>)', { choices: ['mp', 'cls'], model: true }),
  pixel_normalization: F('list', 'lra-image: MEAN STD of the pixel normalisation', { meta: 'MEAN STD' }),
  max_sentences: F('int', 'fairseq name of --batch-size', { aliasOf: 'batch_size' }),
  max_sentences_valid: F('int', 'fairseq name of --batch-size-valid', { aliasOf: 'batch_size_valid' }),
  sentence_class_num: F('int', 'fairseq name of --num-classes', { aliasOf: 'num_classes' }),
  max_tokens_valid: F('int', 'tokens per validation batch'),
  required_batch_size_multiple: F('int', 'fairseq rounds batch sizes to a multiple of this'),
  valid_subset: F('string', 'validation split (valid)', { choices: ['valid'] }),
  source_lang: F('string', 'translation: source language of a fairseq data folder', { short: 's' }),
  target_lang: F('string', 'translation: target language of a fairseq data folder', { short: 't' }),
  sample_break_mode: F('string', 'lm (fairseq data folder): blocks of whole sentences or a cut stream', { choices: ['none', 'complete'] }),
  valid_block: F('string', 'lm (fairseq data folder): validation blocks, size:N or splits:K'),
  variant_block_multiple_min: F('int', 'lm (fairseq data folder): training block = this x decoder chunk size'),
  variant_block_multiple_max: F('int', "lm (fairseq data folder): largest multiple of fairseq's variant block sizes"),
  restore_file: F('string', 'checkpoint to resume from (fairseq --restore-file)', { meta: 'FILE' }),
  sc_dropped_rate: F('number', 'speech: rate of dropped samples (only 0 is supported)'),
  maximize_best_checkpoint_metric: INFRA('boolean', 'accuracy is always maximised and loss minimised here'),
  keep_last_epochs: INFRA('int', 'mega-ts keeps checkpoint_last and checkpoint_best only'),
  keep_interval_updates: INFRA('int', 'mega-ts keeps checkpoint_last and checkpoint_best only'),
  no_epoch_checkpoints: INFRA('boolean', 'mega-ts writes no per-epoch checkpoints anyway'),
  ddp_backend: INFRA('string', "data parallelism here is mega-ts's own all-reduce (--workers N)"),
  find_unused_parameters: INFRA('boolean', "not needed: mega-ts's all-reduce covers every parameter"),
  num_workers: INFRA('int', 'no data-loader workers here (data is read in the main thread)'),
  log_format: INFRA('string', 'progress goes to stderr and one record per --log-interval updates to SAVE_DIR/metrics.jsonl'),
  fp16: INFRA('boolean', 'not supported; training runs in float32'),
  memory_efficient_fp16: INFRA('boolean', 'not supported; training runs in float32'),
  cpu: INFRA('boolean', 'mega-ts computes on the CPU unless --backend gpujs is given'),
  distributed_world_size: INFRA('int', 'use --workers N (or torchrun / srun / mpirun) for data-parallel training here'),
  distributed_port: INFRA('int', 'use --workers N (or torchrun / srun / mpirun) for data-parallel training here'),
  no_progress_bar: INFRA('boolean', 'use --quiet to turn the progress bar off'),
  tensorboard_logdir: INFRA('string', 'no TensorBoard logs here; metrics go to SAVE_DIR/metrics.jsonl'),
  eval_bleu: INFRA('boolean', 'no BLEU during validation here; run mega generate on the checkpoint'),
  eval_bleu_detok: INFRA('string', 'no BLEU during validation here; run mega generate on the checkpoint'),
  eval_bleu_remove_bpe: INFRA('string', 'no BLEU during validation here; run mega generate on the checkpoint'),
  eval_tokenized_bleu: INFRA('boolean', 'no BLEU during validation here; run mega generate on the checkpoint'),
};

/**
 * Applies the fairseq names of user options: task names, `--pixel-normalization`, and checks the
 * criterion, `--input-type`, `--sentence-avg` against the task.
 * @param archTask the task the arch is meant for (resolves `lra-text`)
 * @throws ConfigError for a criterion, input type or averaging that is not the task's
 */
export function applyFairseqNames(user: Record<string, unknown>, archTask: string | undefined): void {
  const t = user.task;
  if (typeof t === 'string' && t in FAIRSEQ_TASK_NAMES) {
    user.task = t === 'lra-text' && archTask && ['listops', 'text', 'retrieval'].includes(archTask) ? archTask : FAIRSEQ_TASK_NAMES[t];
  }
  if (user.best_checkpoint_metric === 'bleu') {
    // validation computes no BLEU here; loss decides checkpoint_best (fairseq's default metric)
    user.best_checkpoint_metric = 'loss';
  }
  const pn = user.pixel_normalization;
  if (pn !== undefined) {
    const xs = pn as unknown[];
    if (xs.length !== 2 || xs.some((x) => typeof x !== 'number'))
      throw new ConfigError(`--pixel-normalization ${xs.join(' ')}: expected two numbers, MEAN STD`);
    user.pixel_mean = xs[0];
    user.pixel_std = xs[1];
    delete user.pixel_normalization;
  }
  if (typeof user.sc_dropped_rate === 'number' && user.sc_dropped_rate !== 0)
    throw new ConfigError(`--sc-dropped-rate ${user.sc_dropped_rate}: only 0 is supported`);
}

/** Checks the fairseq options that must agree with the resolved task. @throws ConfigError */
export function checkFairseqConsistency(a: Record<string, unknown>): void {
  const task = a.task as string;
  const c = a.criterion;
  if (typeof c === 'string' && !CRITERIA[c]!.includes(task)) {
    throw new ConfigError(
      `--criterion ${c} is not the loss of --task ${task} (expected ${Object.keys(CRITERIA)
        .filter((k) => CRITERIA[k]!.includes(task))
        .join(' or ')})`,
    );
  }
  if (c === 'adaptive_loss' && !(a.adaptive_softmax_cutoff ?? String(a.arch).includes('adaptive'))) {
    throw new ConfigError(`--criterion adaptive_loss needs an adaptive-softmax model (e.g. -a mega_lm_adaptive_big)`);
  }
  const it = a.input_type;
  if (it !== undefined && (it === 'image') !== (task === 'image')) throw new ConfigError(`--input-type ${String(it)} does not fit --task ${task}`);
  const classification = ['listops', 'text', 'retrieval', 'image', 'speech'].includes(task);
  if (a.sentence_avg === true && !classification)
    throw new ConfigError(
      `--sentence-avg with --task ${task}: not supported here (the ${task} loss is averaged over target tokens, as fairseq does without it)`,
    );
}
