/**
 * `mega eval [CHECKPOINT] [--split valid|test|train] [--data PATH] [--batch-size N] [--json]`:
 * loss and accuracy (classification) / perplexity and bits per byte (lm) / perplexity
 * (translation) of a checkpoint written by `mega train`, on a split of its task's data (the
 * training run's data unless `--data` is given). CHECKPOINT may be a weights file or a save folder
 * (its checkpoint_best, else checkpoint_last); default: `checkpoints/`.
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError } from '../train/errors.js';
import { CheckpointError } from '../io/errors.js';
import { parseFlags, type OptSpec } from '../train/flags.js';
import { isFairseqCheckpoint, runFairseqEval } from './eval-fairseq.js';
import { evaluateCheckpoint, formatMetrics } from '../train/evaluate.js';
import type { Split } from '../train/tasks/index.js';

const S = (type: OptSpec['type'], help: string, extra: Partial<OptSpec> = {}): OptSpec => ({ type, help, group: 'main', ...extra });

const FS = (type: OptSpec['type'], help: string, extra: Partial<OptSpec> = {}): OptSpec => ({ type, help, group: 'fairseq', ...extra });

/** Options of `mega eval` (fairseq's eval_lm / eval_mega_lm names included). */
export const EVAL_OPTIONS: Readonly<Record<string, OptSpec>> = {
  split: S('string', 'split to evaluate (default valid)'),
  gen_subset: FS('string', 'fairseq-eval-lm name of --split', { aliasOf: 'split' }),
  valid_subset: FS('string', 'fairseq name of --split', { aliasOf: 'split' }),
  data: S('string', "data file or folder (default: the training run's)"),
  path: FS('string', 'fairseq checkpoint (.pt), fairseq-eval-lm form: mega eval DATA --path CKPT.pt', { meta: 'CKPT' }),
  batch_size: S('int', "examples per batch (default: the training run's validation batch size)"),
  max_sentences: FS('int', 'fairseq name of --batch-size', { aliasOf: 'batch_size' }),
  max_tokens: FS('int', 'fairseq checkpoints: tokens per validation batch (default: the stored --max-tokens-valid)'),
  test_chunk_size: FS('int', "eval_mega_lm: the model's chunk size for evaluation; tokens fed per step = this x --chunk-nums"),
  chunk_nums: FS('int', 'eval_mega_lm: chunks fed per step (default 1)'),
  valid_block: FS('string', 'LM blocks: size:N or splits:K (default: stored; eval_lm: size:100000000)'),
  sample_break_mode: FS('string', 'LM blocks: none (cut the stream) or complete (whole sentences)', { choices: ['none', 'complete'] }),
  model_overrides: FS('string', 'dict of stored args to replace before building the model, e.g. \'{"decoder_chunk_size": 32}\''),
  context_window: FS('int', 'eval_lm context window (only 0)'),
  softmax_batch: FS('int', '', { infra: 'no effect here (the softmax covers the whole vocabulary at once; the numbers do not depend on it)' }),
  tokens_per_sample: FS('int', '', { infra: 'no effect on the Mega LM evaluation (its blocks come from --valid-block)' }),
  cpu: FS('boolean', '', { infra: 'mega-ts computes on the CPU unless --backend gpujs is given' }),
  fp16: FS('boolean', '', { infra: 'not supported; evaluation runs in float32' }),
  num_workers: FS('int', '', { infra: 'no data-loader workers here (data is read in the main thread)' }),
  log_format: FS('string', '', { infra: 'output is fixed: text lines, or one JSON line with --json' }),
  log_interval: FS('int', '', { infra: 'no periodic log during evaluation here' }),
  truncate: S('boolean', 'keep the first max_positions tokens of longer inputs instead of failing'),
  threads: S('int', 'CPU threads of the matmul kernels'),
  json: S('boolean', 'print one JSON line of results'),
  quiet: S('boolean', 'print nothing but the results'),
};

/** Help text of `mega eval`. */
export const EVAL_HELP = `Usage: mega eval [CHECKPOINT] [--split valid|test|train] [--data PATH] [--batch-size N] [--truncate] [--threads N] [--json]
       mega eval CKPT.pt DATA [--split valid] [--json]                     (a fairseq checkpoint: fairseq's validation)
       mega eval DATA --path CKPT.pt --gen-subset valid [--test-chunk-size T --chunk-nums K --valid-block splits:K
                 --sample-break-mode complete --model-overrides DICT]     (fairseq-eval-lm / eval_mega_lm.py)

Evaluates a checkpoint written by mega train on a split of its task's data: loss (base 2) and
accuracy for classification tasks, perplexity and bits per byte for lm, perplexity for translation.
CHECKPOINT is a .safetensors weights file or a save folder (checkpoint_best, else checkpoint_last);
default: checkpoints/. The data is the training run's unless --data is given.

A fairseq checkpoint of the Mega release (.pt) is evaluated on a data folder in its task's layout
(lra-text, lra-image, language_modeling, translation), everything else from the checkpoint's stored
args; --json prints fairseq's numbers under fairseq's names: loss (base 2), accuracy (percent),
nll_loss, ppl. Flags that only steer fairseq's infrastructure (--cpu, --fp16, --num-workers, ...)
are accepted and each prints one line saying what it becomes here.`;

/** The weights file a CHECKPOINT argument designates. */
export function resolveCheckpointArg(arg: string | undefined): string {
  const p = arg ?? 'checkpoints';
  if (existsSync(p) && statSync(p).isDirectory()) {
    for (const n of ['checkpoint_best.safetensors', 'checkpoint_last.safetensors']) if (existsSync(join(p, n))) return join(p, n);
    throw new CheckpointError(`${p}: no checkpoint_best.safetensors or checkpoint_last.safetensors in this folder`);
  }
  if (!existsSync(p)) throw new CheckpointError(`${p}: no such checkpoint file or folder`);
  return p;
}

/** Runs `mega eval`; returns the exit code. */
export function evalCommand(argv: string[], out: (s: string) => void): number {
  const { values, positionals, notes } = parseFlags(argv, EVAL_OPTIONS, 'eval');
  if (values.help) {
    out(EVAL_HELP);
    return 0;
  }
  for (const n of notes) process.stderr.write(`mega eval: ${n}\n`);
  const fairseqCkpt = typeof values.path === 'string' ? values.path : isFairseqCheckpoint(positionals[0]) ? positionals[0] : undefined;
  if (fairseqCkpt !== undefined) {
    const rest = typeof values.path === 'string' ? positionals : positionals.slice(1);
    if (rest.length > 1) throw new ConfigError(`expected one DATA folder after the checkpoint, got ${rest.length} arguments`);
    const data = rest[0] ?? (typeof values.data === 'string' ? values.data : undefined);
    return runFairseqEval(
      { checkpoint: fairseqCkpt, data, split: (values.split as string | undefined) ?? 'valid', evalLm: typeof values.path === 'string', values },
      out,
    );
  }
  for (const k of ['path', 'test_chunk_size', 'chunk_nums', 'valid_block', 'sample_break_mode', 'model_overrides', 'max_tokens', 'context_window']) {
    if (values[k] !== undefined) throw new ConfigError(`--${k.replace(/_/g, '-')} applies to fairseq checkpoints (.pt) only`);
  }
  if (values.split !== undefined && !['train', 'valid', 'test'].includes(values.split as string)) {
    throw new ConfigError(`--split = ${JSON.stringify(values.split)}: expected train, valid or test`);
  }
  if (positionals.length > 1) {
    throw new ConfigError(`expected one CHECKPOINT argument, got ${positionals.length}`);
  }
  const path = resolveCheckpointArg(positionals[0]);
  const overrides: Record<string, unknown> = {};
  if (typeof values.data === 'string') overrides.data = resolve(values.data);
  if (values.batch_size !== undefined) overrides.batch_size_valid = values.batch_size;
  if (values.truncate !== undefined) overrides.truncate = values.truncate;
  if (values.threads !== undefined) overrides.threads = values.threads;
  const split = (values.split as Split | undefined) ?? 'valid';
  const r = evaluateCheckpoint({ checkpoint: path, split, overrides });
  if (values.json) out(JSON.stringify({ command: 'eval', ...r }));
  else out(`${r.split} | ${r.examples} examples | ${formatMetrics(r)} | ${r.checkpoint} (update ${r.update})`);
  return 0;
}
