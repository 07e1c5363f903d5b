/**
 * Checks of a loaded checkpoint that the file format alone cannot make: tensor checksums present
 * (older files have none and load with a note), a known task and model args that describe the
 * stored tensors (checked before anything is built from them), and a usable RNG state on resume.
 */
import { CheckpointError, describeValue } from '../io/errors.js';
import type { RawTensor } from '../io/raw.js';
import type { SafetensorsContent } from '../io/safetensors.js';
import { ARCHITECTURES, archArgs } from '../mega/models/presets.js';
import { TASKS } from './args.js';
import { checkModelArgs } from './model-args-check.js';

/**
 * Refuses stored metadata that would mislead whoever builds a model from it: an unknown task,
 * model args or dictionary facts that do not fit the tensors.
 * (An arch that is not registered is left to the model builder, which names it; its args and
 * task info are not checked.)
 * @throws CheckpointError naming the file and the value
 */
export function checkStoredSpec(
  path: string, task: string, arch: string, modelArgs: Record<string, unknown>, taskInfo: Record<string, unknown>, tensors: Readonly<Record<string, RawTensor>>,
): void {
  if (!(TASKS as readonly string[]).includes(task)) throw new CheckpointError(`${path}: metadata task = ${describeValue(task)} (expected one of ${TASKS.join(', ')})`);
  // the model is built from model_args.arch (the reference arch); `arch` may name a mega-ts preset
  const base = typeof modelArgs.arch === 'string' ? modelArgs.arch : arch;
  const spec = ARCHITECTURES[base];
  if (!spec) return;
  checkModelArgs(spec.model, archArgs(base, modelArgs), tensors, path);
  checkTaskInfo(path, taskInfo, tensors);
}

/** Token-embedding tensors whose row count is the dictionary size. */
const EMBEDDINGS = ['decoder.embed_tokens.weight', 'encoder.embed_tokens.weight', 'encoder.encoder.embed_tokens.embed.weight'];

/** The dictionary facts must fit the stored embedding (the model is built with them). */
function checkTaskInfo(path: string, ti: Record<string, unknown>, tensors: Readonly<Record<string, RawTensor>>): void {
  const V = ti.dictionary_size;
  if (V === undefined) return;
  const emb = EMBEDDINGS.find((k) => tensors[k] !== undefined);
  if (emb === undefined) throw new CheckpointError(`${path}: task_info dictionary_size = ${describeValue(V)} but the file has no token embedding (${EMBEDDINGS.join(', ')})`);
  const rows = tensors[emb]!.shape[0];
  if (V !== rows) throw new CheckpointError(`${path}: task_info dictionary_size = ${describeValue(V)} but tensor ${emb} has ${rows} rows`);
  for (const k of ['pad', 'bos', 'eos', 'unk']) {
    const v = ti[k];
    if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < rows)) {
      throw new CheckpointError(`${path}: task_info ${k} = ${describeValue(v)} (expected an integer in [0, ${rows}))`);
    }
  }
}

/** Prints one note when `content` came from a file without tensor checksums. */
export function noteUnverified(path: string, content: SafetensorsContent): void {
  if (content.checksums === 'absent') {
    process.stderr.write(`note: ${path}: no tensor checksums (written by an older mega-ts); loaded without verifying the data\n`);
  }
}

/** Whether `v` is a xoshiro128 state: 4 unsigned 32-bit integers, not all zero (the generator's fixed point). */
export function isRngState(v: unknown): v is number[] {
  return Array.isArray(v) && v.length === 4 && v.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32) && v.some((w) => w !== 0);
}

/**
 * Refuses a trainer state whose RNG state (and per-rank states, if any) cannot seed the generator.
 * @throws CheckpointError naming the file and the value
 */
export function checkRngStates(path: string, st: { rng?: unknown; rankRng?: unknown }): void {
  const bad = (what: string, v: unknown): never => {
    throw new CheckpointError(`${path}: RNG state ${what} = ${describeValue(v)} (expected 4 unsigned 32-bit integers, not all zero)`);
  };
  if (!isRngState(st.rng)) bad('rng', st.rng);
  if (st.rankRng !== undefined) {
    if (!Array.isArray(st.rankRng)) bad('rankRng', st.rankRng);
    (st.rankRng as unknown[]).forEach((r, i) => { if (!isRngState(r)) bad(`rankRng[${i}]`, r); });
  }
}
