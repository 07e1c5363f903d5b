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
import { parseFlags, type OptSpec } from '../train/args.js';
import { evaluateCheckpoint, formatMetrics } from '../train/evaluate.js';
import type { Split } from '../train/tasks/index.js';

const S = (type: OptSpec['type'], help: string, extra: Partial<OptSpec> = {}): OptSpec => ({ type, help, group: 'main', ...extra });

/** Options of `mega eval`. */
export const EVAL_OPTIONS: Readonly<Record<string, OptSpec>> = {
  split: S('string', 'split to evaluate (default valid)', { choices: ['train', 'valid', 'test'] }),
  data: S('string', 'data file or folder (default: the training run\'s)'),
  batch_size: S('int', 'examples per batch (default: the training run\'s validation batch size)'),
  truncate: S('boolean', 'keep the first max_positions tokens of longer inputs instead of failing'),
  threads: S('int', 'CPU threads of the matmul kernels'),
  json: S('boolean', 'print one JSON line of results'),
  quiet: S('boolean', 'print nothing but the results'),
};

/** Help text of `mega eval`. */
export const EVAL_HELP = `Usage: mega eval [CHECKPOINT] [--split valid|test|train] [--data PATH] [--batch-size N] [--truncate] [--threads N] [--json]

Evaluates a checkpoint written by mega train on a split of its task's data: loss (base 2) and
accuracy for classification tasks, perplexity and bits per byte for lm, perplexity for translation.
CHECKPOINT is a .safetensors weights file or a save folder (checkpoint_best, else checkpoint_last);
default: checkpoints/. The data is the training run's unless --data is given.`;

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
  const { values, positionals } = parseFlags(argv, EVAL_OPTIONS, 'eval');
  if (values.help) {
    out(EVAL_HELP);
    return 0;
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
