/**
 * `mega eval` on a checkpoint of the fairseq Mega release (a torch.save zip `.pt`), with a data
 * folder in the layout its task reads (`data-bin`). Three forms, as the release runs them:
 *
 * - `mega eval CKPT.pt DATA --split valid`: fairseq_cli.train's validation from the stored args
 *   (validate_mega_lm for the LM);
 * - `mega eval DATA --path CKPT.pt --gen-subset valid`: fairseq-eval-lm (`--sample-break-mode none`,
 *   `--valid-block size:100000000` unless given: the split as one sequence, one forward pass);
 * - the same with `--test-chunk-size T [--chunk-nums K]`: the release's eval_mega_lm.py (the model's
 *   chunk size set to T, T·K tokens fed at a time with the incremental state carried).
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { evaluateFairseq, loadFairseqModel, type FairseqEvalResult, type LmEvalOptions } from '../train/fairseq-eval.js';
import { isZip } from '../train/fairseq-import.js';
import { ConfigError } from '../train/errors.js';

/** Whether a path is a fairseq (torch.save zip) checkpoint file. */
export function isFairseqCheckpoint(path: string | undefined): boolean {
  if (!path || !existsSync(path)) return false;
  try {
    if (!statSync(path).isFile()) return false; // `/dev/zero` would never end
    const fd = openSync(path, 'r');
    try {
      const head = new Uint8Array(4);
      return readSync(fd, head, 0, 4, 0) === 4 && isZip(head);
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

/**
 * fairseq's `--model-overrides`: a Python dict literal (JSON, or with single quotes and
 * True/False/None). @throws ConfigError when it is not a dict of plain values
 */
export function parseModelOverrides(text: string): Record<string, unknown> {
  const attempts = [
    text,
    text
      .replace(/'/g, '"')
      .replace(/\bTrue\b/g, 'true')
      .replace(/\bFalse\b/g, 'false')
      .replace(/\bNone\b/g, 'null'),
  ];
  for (const t of attempts) {
    try {
      const v = JSON.parse(t) as unknown;
      if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      // next form
    }
  }
  throw new ConfigError(`--model-overrides ${JSON.stringify(text)}: expected a dict such as '{"decoder_chunk_size": 32}'`);
}

/** fairseq's log formatting of a meter: rounded to 3 decimals, printed with `{:g}`. */
export function fairseqRound(x: number): string {
  const r = Math.round(x * 1000) / 1000;
  return String(Number(r.toPrecision(6)));
}

/** What `mega eval` was given, in fairseq terms. */
export interface FairseqEvalRequest {
  checkpoint: string;
  data: string | undefined;
  split: string;
  /** eval_lm form (`--path`). */
  evalLm: boolean;
  values: Record<string, unknown>;
}

/** Runs one fairseq evaluation and prints it; returns the exit code. */
export function runFairseqEval(req: FairseqEvalRequest, out: (s: string) => void): number {
  const v = req.values;
  const overrides: Record<string, unknown> = typeof v.model_overrides === 'string' ? parseModelOverrides(v.model_overrides) : {};
  const tcs = v.test_chunk_size as number | undefined;
  if (tcs !== undefined) overrides.decoder_chunk_size = tcs; // eval_mega_lm.py sets the model's chunk size to it
  if (v.context_window !== undefined && v.context_window !== 0)
    throw new ConfigError(`--context-window ${String(v.context_window)}: only 0 is supported (the Mega LM evaluation feeds whole blocks)`);
  if (typeof v.max_tokens === 'number') overrides.max_tokens_valid = v.max_tokens;
  if (typeof v.batch_size === 'number') overrides.max_sentences_valid = v.batch_size;
  const fm = loadFairseqModel(req.checkpoint, overrides);
  const data = req.data ?? (typeof fm.args.data === 'string' ? fm.args.data : undefined);
  if (!data) throw new ConfigError('expected a DATA folder (the checkpoint stores none)');
  if (!existsSync(data)) throw new ConfigError(`${data}: no such data folder`);
  const mode: LmEvalOptions['mode'] = tcs !== undefined ? 'eval_mega_lm' : req.evalLm ? 'eval_lm' : 'validate';
  const lm: LmEvalOptions = {
    mode,
    sampleBreakMode: v.sample_break_mode as LmEvalOptions['sampleBreakMode'],
    validBlock: v.valid_block as string | undefined,
    piece: tcs !== undefined ? tcs * ((v.chunk_nums as number | undefined) ?? 1) : undefined,
  };
  const r: FairseqEvalResult = evaluateFairseq(fm, data, req.split, lm);
  const update = fm.imp.numUpdates;
  if (v.json) {
    out(JSON.stringify({ command: 'eval', mode, checkpoint: req.checkpoint, data, split: req.split, task: fm.args.task, ...r, num_updates: update }));
    return 0;
  }
  if (mode === 'validate') {
    const parts = [`valid on '${req.split}' subset`, `loss ${fairseqRound(r.loss)}`];
    if (r.nll_loss !== undefined) parts.push(`nll_loss ${fairseqRound(r.nll_loss)}`);
    if (r.ppl !== undefined) parts.push(`ppl ${Number((Math.round(r.ppl * 100) / 100).toPrecision(8))}`);
    if (r.accuracy !== undefined) parts.push(`accuracy ${fairseqRound(r.accuracy)}`);
    parts.push(`bsz ${r.nsentences}`, `num_updates ${update}`);
    out(`| ${parts.join(' | ')}`);
  } else {
    out(`${data} ${req.split} ${r.nsentences} examples`);
    out(`Evaluated ${r.ntokens} tokens`);
    out(`Loss (base 2): ${r.loss.toFixed(4)}, Perplexity: ${r.ppl!.toFixed(2)}`);
  }
  return 0;
}
