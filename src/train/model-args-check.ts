/**
 * Checks a checkpoint's stored model args against the tensors stored next to them, BEFORE a model
 * is built from the args: a corrupt or hostile file must not make us allocate a model the tensors
 * cannot fill (`encoder_ffn_embed_dim: 1e8` would build gigabytes of weights; `1e5` fails deep in
 * the tensor code). Every size that shapes a parameter must equal the size of that parameter's
 * tensor in the file (layer count, embed / hidden / ffn / z / n dims, classifier sizes); sizes
 * that only shape buffers or limits (positions, chunk, truncation) must be integers of at most
 * {@link MAX_SIZE_ARG}.
 */
import { CheckpointError, describeValue } from '../io/errors.js';
import type { ModelKind } from '../mega/models/presets.js';

/** Largest value of a size arg that no tensor witnesses (positions, chunk size, truncation). */
export const MAX_SIZE_ARG = 1 << 20;

/** Shape of a stored tensor (the checks need nothing else). */
type Shapes = Readonly<Record<string, { readonly shape: readonly number[] }>>;

/** One stack of Mega layers: tensor-name prefix and the arg names of its sizes. */
interface LayerGroup {
  prefix: string;
  layers: string;
  embed: string;
  hidden: string;
  ffn: string;
  z: string;
  n: string;
}

const sideGroup = (side: 'encoder' | 'decoder', prefix: string): LayerGroup => ({
  prefix,
  layers: `${side}_layers`,
  embed: `${side}_embed_dim`,
  hidden: `${side}_hidden_dim`,
  ffn: `${side}_ffn_embed_dim`,
  z: `${side}_z_dim`,
  n: `${side}_n_dim`,
});
const sentenceGroup: LayerGroup = {
  prefix: 'encoder.encoder.layers.',
  layers: 'encoder_layers',
  embed: 'encoder_embed_dim',
  hidden: 'encoder_hidden_dim',
  ffn: 'encoder_ffn_embed_dim',
  z: 'z_dim',
  n: 'n_dim',
};

const GROUPS: Readonly<Record<ModelKind, LayerGroup[]>> = {
  mega: [sideGroup('encoder', 'encoder.layers.'), sideGroup('decoder', 'decoder.layers.')],
  mega_lm: [sideGroup('decoder', 'decoder.layers.')],
  lra: [sentenceGroup],
  sc_raw: [sentenceGroup],
};

/** Arg names that size buffers or limits only (no tensor witnesses them). */
const UNWITNESSED = /(^|_)(max_positions|max_source_positions|max_target_positions|chunk_size|truncation_length)$/;

/** Number of distinct `<prefix><i>.` indices among the tensor names. */
function countIndexed(names: readonly string[], prefix: string): number {
  const seen = new Set<number>();
  for (const k of names) {
    if (!k.startsWith(prefix)) continue;
    const m = /^(\d+)\./.exec(k.slice(prefix.length));
    if (m) seen.add(Number(m[1]));
  }
  return seen.size;
}

/** Most values (counted as if shared references were copies) one arg may hold. */
const MAX_ARG_VALUES = 10_000;
/** Deepest nesting of lists / dicts in one arg. */
const MAX_ARG_DEPTH = 16;

/**
 * Whether `v` is a small plain value: at most {@link MAX_ARG_VALUES} values when expanded (JSON
 * would expand shared references: a pickle can make 10^39 of them from a few hundred bytes) and
 * at most {@link MAX_ARG_DEPTH} levels deep. Work is bounded by the limits, not by `v`.
 */
function isSmallValue(v: unknown): boolean {
  let budget = MAX_ARG_VALUES;
  const walk = (x: unknown, depth: number): boolean => {
    if (--budget < 0 || depth > MAX_ARG_DEPTH) return false;
    if (x === null || typeof x !== 'object' || ArrayBuffer.isView(x)) return true;
    for (const y of Array.isArray(x) ? x : Object.values(x)) if (!walk(y, depth + 1)) return false;
    return true;
  };
  return walk(v, 0);
}

/**
 * Checks `args` (a complete model namespace, arch defaults applied) against the stored tensors.
 * @param label the file, for messages
 * @throws CheckpointError naming the file, the arg, its value and the tensor that disagrees
 */
export function checkModelArgs(kind: ModelKind, args: Readonly<Record<string, unknown>>, tensors: Shapes, label: string): void {
  for (const [k, v] of Object.entries(args)) {
    if (!isSmallValue(v))
      throw new CheckpointError(
        `${label}: model args ${k} holds more than ${MAX_ARG_VALUES} values or is nested more than ${MAX_ARG_DEPTH} levels deep (not a model setting)`,
      );
  }
  const names = Object.keys(tensors);
  const argText = (k: string) => `model args ${k} = ${describeValue(args[k])}`;
  const want = (k: string, actual: number, where: string): void => {
    const v = args[k];
    if (v === undefined) return; // an arch default the model builder will report if needed
    if (v !== actual) throw new CheckpointError(`${label}: ${argText(k)} but ${where} is ${actual} (the args do not describe the stored tensors)`);
  };
  const dim = (name: string, axis: number): number | undefined => tensors[name]?.shape[axis];
  for (const g of GROUPS[kind]) {
    const n = countIndexed(names, g.prefix);
    want(g.layers, n, `the number of stored layers ${g.prefix}<i>`);
    if (n === 0) continue;
    const p = `${g.prefix}0.`;
    const witnesses: Array<[string, string, number]> = [
      [g.embed, `${p}mega_layer.move.omega`, 0],
      [g.hidden, `${p}mega_layer.v_proj.weight`, 0],
      [g.z, `${p}mega_layer.gamma`, 1],
      [g.n, `${p}mega_layer.move.gamma`, 1],
      [g.ffn, `${p}nffn.fc1.weight`, 0],
    ];
    for (const [arg, name, axis] of witnesses) {
      const d = dim(name, axis);
      if (d !== undefined) want(arg, d, `dimension ${axis} of tensor ${name}`);
      else if (args[arg] !== undefined && args[arg] !== 0) {
        throw new CheckpointError(`${label}: ${argText(arg)} but the file has no tensor ${name} to check it against`);
      }
    }
  }
  if (kind === 'lra' || kind === 'sc_raw') {
    want('classifier_layers', countIndexed(names, 'classifier.'), 'the number of stored classifier layers');
    const c0 = dim('classifier.0.0.weight', 0);
    if (c0 !== undefined) want('classifier_out_dim', c0, 'dimension 0 of tensor classifier.0.0.weight');
    const s = dim('sentence_projection_layer.weight', 0);
    if (s !== undefined) want('sentence_class_num', s, 'dimension 0 of tensor sentence_projection_layer.weight');
  }
  for (const [k, v] of Object.entries(args)) {
    if (!UNWITNESSED.test(k) || v === null || v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || Math.abs(v) > MAX_SIZE_ARG) {
      throw new CheckpointError(`${label}: ${argText(k)} (expected an integer of magnitude at most ${MAX_SIZE_ARG})`);
    }
  }
}
