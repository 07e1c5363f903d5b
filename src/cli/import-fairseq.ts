/**
 * `mega import-fairseq [--dtype f32|f64] [--check FILE] [--json] CKPT.pt OUT`: converts a fairseq
 * Mega checkpoint to a mega-ts weights file (see `train/fairseq-import.ts`).
 */
import { existsSync } from 'node:fs';
import { noGrad } from '../autograd/engine.js';
import { readGoldenFile } from '../io/golden.js';
import { CheckpointError } from '../io/errors.js';
import type { FloatDType } from '../tensor/dtype.js';
import { importFairseqFile, samePath, saveImported, type ImportedModel } from '../train/fairseq-import.js';
import { compareTensor, getAdapter, toInputs, type TensorReport } from '../verify/index.js';
import { parseFlags } from '../train/flags.js';
import { UsageError } from './errors.js';

export const IMPORT_HELP = `Usage: mega import-fairseq [--dtype f32|f64] [--check FILE] [--json] CKPT.pt OUT

Converts a checkpoint of the fairseq Mega release (torch.save zip + pickle, e.g. checkpoint_best.pt)
to a mega-ts weights file OUT (safetensors; the model's args in its metadata) that mega eval and
mega generate load. The pickle is read by a restricted unpickler that accepts only the globals such
files use (argparse.Namespace, collections.OrderedDict, torch._utils._rebuild_tensor_v2 and the
torch storage types): no code from the file runs.

The model is built from the checkpoint's args (args.arch must be a registered Mega architecture:
LRA / speech classifiers, mega_lm*, mega / mega_wmt_en_de*); the vocabulary size comes from the
token embedding. Every state-dict tensor must fit the model (the *.version and *._float_tensor
bookkeeping entries are skipped).

  --dtype  precision of the saved weights (default f32, as the released checkpoints)
  --check  a golden companion file (mega-golden/1, e.g. CKPT.expected.msgpack): run its inputs
           through the imported model and compare its outputs (float32 rule: rtol 2e-4,
           atol 1e-6 against max|R|); on a mismatch nothing is written and the exit code is 1
  --json   print one final JSON line with the results

Exit codes: 0 written, 1 --check mismatch, 2 bad input (missing / unreadable / corrupt
checkpoint, unsupported model, bad options). On any error OUT is left untouched.`;

/** The `--check` result. */
interface CheckResult {
  file: string;
  pass: boolean;
  tensors: TensorReport[];
}

function runCheck(file: string, imp: ImportedModel, dtype: FloatDType): CheckResult {
  const c = readGoldenFile(file);
  if (c.module !== imp.className) throw new UsageError(`--check ${file}: the case is for ${c.module} but the checkpoint holds a ${imp.className}`);
  const adapter = getAdapter(c.module);
  if (!adapter) throw new UsageError(`--check ${file}: no adapter for ${c.module}`);
  const outs = noGrad(() => adapter.forward(imp.model, toInputs(c.inputs, dtype, Object.keys(c.inputs)), c));
  const tensors = Object.entries(c.outputs).map(([k, r]) => compareTensor(`outputs.${k}`, outs[k], r, 'f32'));
  return { file, pass: tensors.length > 0 && tensors.every((t) => t.pass), tensors };
}

/** Runs the command; returns the exit code. */
export function importCommand(argv: string[], out: (s: string) => void): number {
  const parsed = parseFlags(
    argv,
    {
      dtype: { type: 'string', help: 'f32 or f64', group: 'main' },
      check: { type: 'string', help: 'golden companion file', group: 'main' },
      json: { type: 'boolean', help: 'one JSON line', group: 'main' },
    },
    'import-fairseq',
  );
  const positionals = parsed.positionals;
  const values = { dtype: 'f32', ...parsed.values } as { help?: boolean; dtype: string; check?: string; json?: boolean };
  if (values.help) {
    out(IMPORT_HELP);
    return 0;
  }
  const dtype = values.dtype;
  if (dtype !== 'f32' && dtype !== 'f64') throw new UsageError(`--dtype must be f32 or f64, got '${dtype}'`);
  if (positionals.length !== 2) throw new UsageError(`expected CKPT.pt OUT, got ${positionals.length} argument(s) (see mega import-fairseq --help)`);
  const [ckpt, dest] = positionals;
  if (samePath(ckpt, dest)) throw new UsageError(`OUT must differ from the input checkpoint (${ckpt})`);
  if (values.check !== undefined && !existsSync(values.check)) throw new UsageError(`--check ${values.check}: no such file`);

  const imp = importFairseqFile(ckpt, { dtype });
  const check = values.check !== undefined ? runCheck(values.check, imp, dtype) : null;
  const params = imp.model.numParameters();
  const summary = {
    checkpoint: ckpt,
    out: dest,
    model: imp.className,
    arch: imp.spec.arch,
    task: imp.spec.task,
    vocab: (imp.spec.taskInfo.dictionary_size as number | undefined) ?? null,
    tensors: imp.loaded,
    parameters: params,
    ignored: imp.ignored,
    update: imp.numUpdates,
    dtype,
  };
  if (!values.json) {
    out(
      `read ${ckpt}: ${imp.className} (arch ${imp.spec.arch}, task ${imp.spec.task}${summary.vocab !== null ? `, vocabulary ${summary.vocab}` : ''}), ` +
        `${imp.loaded} tensors, ${params} parameters, update ${imp.numUpdates}`,
    );
    if (imp.ignored.length) out(`skipped ${imp.ignored.length} bookkeeping entr${imp.ignored.length === 1 ? 'y' : 'ies'}: ${imp.ignored.join(', ')}`);
    if (check) {
      for (const t of check.tensors)
        out(
          `check ${check.file}: ${t.pass ? 'PASS' : 'FAIL'} ${t.name} err=${t.maxErr.toExponential(3)} ` +
            `tol=${t.tol.toExponential(3)}${t.note ? ` (${t.note})` : ''}`,
        );
    }
  }
  if (check && !check.pass) {
    if (values.json) out(JSON.stringify({ ...summary, written: false, check: { file: check.file, pass: false, tensors: check.tensors } }));
    else out(`not written: the imported model does not reproduce ${check.file}`);
    return 1;
  }
  try {
    saveImported(dest, imp, ckpt);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(`cannot write ${dest}: ${(e as Error).message}`, { cause: e });
  }
  if (values.json) out(JSON.stringify({ ...summary, written: true, ...(check ? { check: { file: check.file, pass: true, tensors: check.tensors } } : {}) }));
  else out(`wrote ${dest}`);
  return 0;
}
