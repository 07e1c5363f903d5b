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
import { CPU_PRESETS } from './arch.js';
import { checkModelArgs } from './model-args-check.js';

/**
 * Refuses stored metadata that would mislead whoever builds a model from it: an unknown task, an
 * arch that disagrees with the model args' own, model args or dictionary facts (`taskInfo`) that
 * do not fit the tensors. (An arch that is not registered is left to the model builder, which
 * names it; its args and task info are not checked.)
 * @throws CheckpointError naming the file and the value
 */
export function checkStoredSpec(
  path: string,
  task: string,
  arch: string,
  modelArgs: Record<string, unknown>,
  tensors: Readonly<Record<string, RawTensor>>,
  taskInfo: Record<string, unknown> = {},
): void {
  if (!(TASKS as readonly string[]).includes(task))
    throw new CheckpointError(`${path}: metadata task = ${describeValue(task)} (expected one of ${TASKS.join(', ')})`);
  // a CPU preset (`mega_lm_tiny`, ...) stores its name as the arch and its reference arch in the model args
  const base = CPU_PRESETS[arch]?.base ?? arch;
  const own = modelArgs.arch ?? base;
  if (own !== base) throw new CheckpointError(`${path}: metadata arch = ${describeValue(arch)} but model_args.arch = ${describeValue(own)}`);
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
  let rows: number;
  if (emb !== undefined) {
    rows = tensors[emb]!.shape[0]!;
    if (V !== rows) throw new CheckpointError(`${path}: task_info dictionary_size = ${describeValue(V)} but tensor ${emb} has ${rows} rows`);
  } else {
    // adaptive input splits the embedding by frequency band: every symbol still owns stored values
    let total = 0;
    for (const t of Object.values(tensors)) total += t.shape.reduce((a, b) => a * b, 1);
    if (!(typeof V === 'number' && Number.isInteger(V) && V > 0 && V <= total)) {
      throw new CheckpointError(`${path}: task_info dictionary_size = ${describeValue(V)} (expected an integer in [1, ${total}], the number of stored values)`);
    }
    rows = V;
  }
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
    (st.rankRng as unknown[]).forEach((r, i) => {
      if (!isRngState(r)) bad(`rankRng[${i}]`, r);
    });
  }
}
