/**
 * `mega train DATA ...` on a save folder that holds a fairseq checkpoint (`SAVE/checkpoint_last.pt`,
 * or the file given with `--restore-file`): the run continues exactly where fairseq stopped
 * (`src/train/fairseq-continue.ts`) and logs one record per update to `SAVE/metrics.jsonl`.
 * Progress lines go to stderr; stdout gets a summary line (or, with `--json`, one JSON line).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { fairseqRestorePath } from '../train/fairseq-resume.js';
import { isZip } from '../train/fairseq-import.js';
import { runFairseqContinuation } from '../train/fairseq-continue.js';

/** mega-ts option names → the fairseq names the continuation reads. */
const FAIRSEQ_NAME: Readonly<Record<string, string>> = {
  batch_size: 'max_sentences',
  batch_size_valid: 'max_sentences_valid',
  num_classes: 'sentence_class_num',
};

/**
 * The fairseq checkpoint `mega train` options resume from (`SAVE/checkpoint_last.pt` or
 * `--restore-file`), or null when there is none (no such file, or not a torch.save zip).
 */
export function fairseqCheckpointToResume(values: Readonly<Record<string, unknown>>): string | null {
  const path = fairseqRestorePath(values);
  return path && isFairseqCheckpoint(path) ? path : null;
}

/** Whether a file starts like a torch.save zip (a fairseq checkpoint). */
function isFairseqCheckpoint(path: string): boolean {
  const head = new Uint8Array(4);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  return isZip(head);
}

/**
 * Continues a fairseq run when the options point at a fairseq checkpoint; returns null otherwise
 * (the caller then trains as usual).
 * @param values the parsed `mega train` options (only those given), `data` = the positional DATA
 * @returns the exit code, or null when there is no DATA or no fairseq checkpoint to continue
 */
export function continueFromFairseq(values: Readonly<Record<string, unknown>>, out: (s: string) => void): number | null {
  if (values.data === undefined || !fairseqCheckpointToResume(values)) return null;
  const args: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) args[FAIRSEQ_NAME[k] ?? k] = v;
  const quiet = values.quiet === true;
  const run = runFairseqContinuation(args, (r) => {
    if (!quiet) {
      const extra = r.accuracy !== undefined ? ` | accuracy ${r.accuracy.toFixed(3)}` : r.ppl !== undefined ? ` | ppl ${r.ppl.toFixed(2)}` : '';
      process.stderr.write(
        `train | epoch ${String(r.epoch).padStart(3, '0')} | update ${r.update} | loss ` +
          `${r.loss.toFixed(3)}${extra} | gnorm ${r.gnorm.toFixed(3)} | lr ${r.lr.toPrecision(6)}\n`,
      );
    }
  });
  const last = run.records[run.records.length - 1];
  if (values.json === true) {
    out(
      JSON.stringify({
        status: 'done',
        resumed_from: run.checkpoint,
        updates: run.numUpdates,
        updates_this_run: run.records.length,
        train_loss: last?.loss ?? null,
        metrics_log: run.metricsPath,
        epoch: run.iterator.epoch,
        iterations_in_epoch: run.iterator.iterationsInEpoch,
      }),
    );
  } else {
    out(
      `resumed ${run.checkpoint}: ${run.records.length} updates (now ` +
        `${run.numUpdates})${last ? ` | last train loss ${last.loss.toFixed(4)}` : ''} | metrics: ${run.metricsPath}`,
    );
  }
  return 0;
}
