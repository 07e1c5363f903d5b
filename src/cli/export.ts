/**
 * `mega export [--dict FILE] [--force] [--json] CHECKPOINT DIR`: writes a model folder —
 * config.json, model.safetensors, dict.txt — that `loadModel(DIR)` (Node or browser) turns into
 * a model with its tokenizer. The folder appears whole or not at all: it is written next to DIR
 * under a temporary name and renamed into place.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parseFlags } from '../train/flags.js';
import { randomBytes } from 'node:crypto';
import { modelFolderFiles } from '../api/export.js';
import { loadModel } from '../api/load.js';
import { AudioClassifier, LanguageModel, SequenceClassifier, Translator, type Pretrained } from '../api/models.js';
import { Tokenizer } from '../api/tokenizer.js';
import { readDictOption } from './dict-option.js';
import { writeFileAtomic } from '../io/atomic.js';
import { UsageError } from './errors.js';

export const EXPORT_HELP = `Usage: mega export [--dict FILE] [--tokenizer words|bytes] [--force] [--json] CHECKPOINT DIR

Writes the model folder DIR for embedding the model (import { loadModel } from 'mega-ts'):
  config.json        arch, every model argument, task facts (vocabulary size, classes), tokenizer
  model.safetensors  the weights under their PyTorch names
  dict.txt           the vocabulary in fairseq's dict.txt format, special symbols included

CHECKPOINT is a mega-ts weights file (mega train, mega import-fairseq) or a fairseq .pt. The
vocabulary of the built-in tasks (ListOps symbols, byte-level text) is known; for others give it.

  --dict FILE        the vocabulary (fairseq dict.txt) when the task's is not known
  --tokenizer T      how text splits onto --dict: words (default) or bytes
  --force            replace an existing DIR
  --json             print one final JSON line

On any error DIR is left as it was.`;

function withVocabulary(m: Pretrained, dictPath: string, type: 'words' | 'bytes'): Pretrained {
  const dict = readDictOption(dictPath);
  const V = m.config.task_info.dictionary_size;
  if (dict.size !== V) throw new UsageError(`--dict ${dictPath}: ${dict.size} symbols (specials included) but the model's vocabulary has ${String(V)}`);
  const tokenizer = { type, append_eos: m.kind !== 'lm' } as const;
  const config = { ...m.config, tokenizer };
  const tok = new Tokenizer(dict, tokenizer, dictPath);
  switch (m.kind) {
    case 'classifier':
      return new SequenceClassifier(m.model, config, tok, m.dtype);
    case 'lm':
      return new LanguageModel(m.model, config, tok, m.dtype);
    case 'translation':
      return new Translator(m.model, config, tok, m.dtype);
    case 'audio':
      return new AudioClassifier(m.model, config, tok, m.dtype);
  }
}

/** Runs the command; resolves to the exit code. */
export async function exportCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const parsed = parseFlags(
    argv,
    {
      dict: { type: 'string', help: 'dict.txt of the vocabulary', group: 'main' },
      tokenizer: { type: 'string', help: 'words or bytes', group: 'main' },
      force: { type: 'boolean', help: 'replace a non-empty DIR', group: 'main' },
      json: { type: 'boolean', help: 'one JSON line', group: 'main' },
    },
    'export',
  );
  const positionals = parsed.positionals;
  const values = { tokenizer: 'words', ...parsed.values } as { help?: boolean; dict?: string; tokenizer: string; force?: boolean; json?: boolean };
  if (values.help) {
    out(EXPORT_HELP);
    return 0;
  }
  if (positionals.length !== 2) throw new UsageError(`expected CHECKPOINT and DIR, got ${positionals.length} argument(s) (see mega export --help)`);
  const [ckpt, dir] = positionals;
  if (values.tokenizer !== 'words' && values.tokenizer !== 'bytes') throw new UsageError(`--tokenizer must be words or bytes, got '${values.tokenizer}'`);
  if (!existsSync(ckpt)) throw new UsageError(`${ckpt}: no such checkpoint file`);
  const target = resolve(dir);
  const occupied = existsSync(target) && readdirSync(target).length > 0;
  if (occupied && !values.force) throw new UsageError(`${dir} exists and is not empty (give --force to replace it)`);
  let m = await loadModel(ckpt);
  if (values.dict !== undefined) m = withVocabulary(m, values.dict, values.tokenizer);
  if (m.config.tokenizer.type !== 'none' && !m.tokenizer)
    throw new UsageError(`${ckpt}: the vocabulary of task '${m.config.task}' is not known; give it with --dict FILE`);
  const files = modelFolderFiles(m);
  // write the whole folder under a temporary name, then rename it into place
  mkdirSync(dirname(target), { recursive: true });
  const tmp = join(dirname(target), `.${basename(target)}.tmp-${randomBytes(6).toString('hex')}`);
  const old = `${tmp}-old`;
  try {
    mkdirSync(tmp);
    for (const [name, bytes] of Object.entries(files)) writeFileAtomic(join(tmp, name), bytes);
    if (existsSync(target)) renameSync(target, old);
    renameSync(tmp, target);
  } catch (e) {
    if (!existsSync(target) && existsSync(old)) renameSync(old, target);
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  rmSync(old, { recursive: true, force: true });
  const summary = {
    checkpoint: ckpt,
    dir,
    arch: m.config.arch,
    task: m.config.task,
    kind: m.kind,
    files: Object.fromEntries(Object.entries(files).map(([k, b]) => [k, b.length])),
  };
  if (values.json) out(JSON.stringify(summary));
  else out(`wrote ${dir}: ${Object.keys(files).join(', ')} (${m.config.arch}, ${m.kind})`);
  return 0;
}
