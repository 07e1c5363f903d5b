/**
 * `mega train`: parses the flags (+ `--config FILE`) and runs the trainer (`src/train/trainer.ts`).
 * No arguments: the README's main job, a small Mega on generated ListOps. Prints a summary (or,
 * with `--json`, one JSON line of results) on stdout; progress and validation lines on stderr.
 * Exit codes: 0 done, 2 bad input (one line on stderr, nothing written), 1 training diverged
 * (NaN/Inf; the last good checkpoint is kept).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../train/errors.js';
import { formatDuration } from '../train/progress.js';
import { parseFlags, readConfigFile, resolveTrainArgs, TRAIN_OPTIONS, trainHelp } from '../train/args.js';
import { runWorkersFromArgv } from '../dist/launch.js';
import { MALLOC_ENV, mallocReexecEnv } from './malloc.js';
import { closeDistributed, isMainProcess, startDistributed } from '../dist/training.js';
import { allArchNames } from '../train/arch.js';
import { pct } from '../train/evaluate.js';
import { lockHolder } from '../train/save-folder.js';
import { checkTrainInput, train, TrainingDivergedError, type TrainResult } from '../train/trainer.js';
import { continueFromFairseq, fairseqCheckpointToResume } from './train-fairseq.js';

/** Human-readable summary lines of a finished run. */
export function summarize(r: TrainResult): string[] {
  const parts = [
    `done: ${r.updates} updates${r.updates_this_run !== r.updates ? ` (${r.updates_this_run} in this run)` : ''} in ${formatDuration(r.wall_time_s)}`,
  ];
  if (r.train_loss !== null) parts.push(`train loss ${r.train_loss.toFixed(4)}`);
  if (r.valid_loss !== null) parts.push(`valid loss ${r.valid_loss.toFixed(4)}`);
  if (r.valid_ppl !== null) parts.push(`valid ppl ${r.valid_ppl.toFixed(2)}`);
  if (r.valid_bpb !== null) parts.push(`valid bpb ${r.valid_bpb.toFixed(4)}`);
  const lines = [parts.join(' | ')];
  if (r.valid_accuracy !== null) {
    lines.push(`valid accuracy ${pct(r.valid_accuracy)}${r.majority_baseline !== null ? ` vs majority-class baseline ${pct(r.majority_baseline)}` : ''}`);
  }
  if (r.checkpoint) {
    const b = r.best_valid;
    const best = b ? ` (best ${b.metric} ${b.metric === 'accuracy' ? pct(b.value) : b.value.toFixed(4)} at update ${b.update})` : '';
    lines.push(`checkpoints: ${r.checkpoint}${r.best_checkpoint ? `, ${r.best_checkpoint}${best}` : ''}`);
  }
  if (r.plot) lines.push(`curves: ${r.plot}, metrics: ${r.metrics_log}`);
  return lines;
}

/**
 * Save folder of the no-argument main job: `checkpoints`, or when that already holds a run (or a run is using it),
 * the first free `checkpoints/run-N`, so re-running the README command never overwrites (nor
 * refuses to start).
 */
export function mainJobSaveDir(root = 'checkpoints'): string {
  const taken = (d: string) =>
    existsSync(join(d, 'checkpoint_last.safetensors')) || existsSync(join(d, 'checkpoint_last.state.safetensors')) || lockHolder(d) !== null;
  if (!taken(root)) return root;
  let n = 2;
  while (taken(join(root, `run-${n}`))) n++;
  const dir = join(root, `run-${n}`);
  process.stderr.write(`mega train: ${root}/ already holds a run; this one is saved in ${dir}/\n`);
  return dir;
}

/** Runs `mega train`; returns the exit code. */
export function trainCommand(argv: string[], out: (s: string) => void): number | Promise<number> {
  const { values, positionals, notes } = parseFlags(argv, TRAIN_OPTIONS, 'train');
  if (values.help) {
    out(trainHelp(allArchNames()));
    return 0;
  }
  if (positionals.length > 1 || (positionals.length === 1 && values.data !== undefined)) {
    throw new ConfigError(
      `unexpected argument ${JSON.stringify(positionals[positionals.length - 1])} ` +
        `(one DATA folder, or --data; options are --name value; see mega train --help)`,
    );
  }
  if (positionals.length === 1) values.data = positionals[0]; // fairseq's positional data folder
  if (values.restore_file !== undefined && fairseqCheckpointToResume(values) === null) {
    throw new ConfigError(
      `--restore-file ${String(values.restore_file)}: no such fairseq checkpoint (expected a torch.save .pt file; mega-ts runs continue with --resume)`,
    );
  }
  if (values.best_checkpoint_metric === 'bleu')
    notes.push('--best-checkpoint-metric bleu: validation computes no BLEU here; checkpoint_best follows the validation loss');
  for (const n of notes) process.stderr.write(`mega train: ${n}\n`);
  const cfg = typeof values.config === 'string' ? readConfigFile(values.config) : {};
  const user: Record<string, unknown> = { ...cfg, ...values };
  const resumed = continueFromFairseq(user, out); // SAVE/checkpoint_last.pt or --restore-file is fairseq's: continue its run
  if (resumed !== null) return resumed;
  if (argv.length === 0) user.save_dir = mainJobSaveDir();
  if (user.workers !== undefined) {
    // --workers N: this process only launches and supervises N workers (src/dist/launch.ts)
    const a = resolveTrainArgs(user);
    const malloc = mallocReexecEnv(process.env) ? MALLOC_ENV : undefined; // the workers compute, the launcher does not
    const launched = runWorkersFromArgv(argv, user, a.no_save ? null : a.save_dir, () => checkTrainInput(user), malloc);
    if (launched) return launched;
  }
  const json = user.json === true;
  let result: TrainResult;
  try {
    result = train(user, { startDist: startDistributed }); // a launched rank joins its job (src/dist)
  } catch (e) {
    closeDistributed();
    if (e instanceof TrainingDivergedError) {
      process.stderr.write(`mega train: ${e.message}\n`);
      if (json && isMainProcess()) out(JSON.stringify({ status: 'diverged', update: e.update, checkpoint: e.checkpoint, message: e.message }));
      return 1;
    }
    throw e;
  }
  if (!isMainProcess()) return 0; // data parallel: rank 0 reports
  if (json) out(JSON.stringify(result));
  else for (const l of summarize(result)) out(l);
  return 0;
}
