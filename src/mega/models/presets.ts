/**
 * The registered architectures of the reference (docs/MEGA.md §8.5) by their `--arch` names. Each arch
 * function fills the fields that are still unset (fairseq's `getattr(args, name, default)`
 * semantics: a field present in the given args, even `null`, wins), exactly as the reference's
 * `register_model_architecture` functions do; `buildModel` then builds the matching model.
 *
 * Reference quirks kept: `mega_lra_aan` has no default `norm_type` (building fails unless given);
 * `mega_lm`, `mega_lm_big`, `mega_lm_enwik8_large` never set `activation_dropout` (building fails
 * unless given). Departures: the LRA/SC `input_type` and `sentence_class_num` are task arguments in
 * the reference; here they default per arch (text for ListOps/IMDB/AAN, image for CIFAR-10 and
 * Pathfinder).
 */
import { ConfigError } from '../../nn/errors.js';
import type { Args } from '../layers.js';
import type { TaskInfo } from './common.js';
import { MegaLanguageModel } from './lm.js';
import { LRAModel, type ModelBuildOptions } from './lra.js';
import { MegaModel } from './nmt.js';
import { SCRawModel } from './speech.js';

/** Which model class an arch builds (the reference's `--arch` → model name). */
export type ModelKind = 'mega' | 'mega_lm' | 'lra' | 'sc_raw';

/** Mutable argparse namespace being filled. */
type A = Record<string, unknown>;

/** `getattr(args, k, v)`: sets `k` only when absent. */
function d(a: A, k: string, v: unknown): void {
  if (a[k] === undefined) a[k] = v;
}

function nmtBase(a: A): void {
  d(a, 'encoder_embed_path', null);
  d(a, 'encoder_embed_dim', 512);
  d(a, 'encoder_hidden_dim', 1024);
  d(a, 'encoder_ffn_embed_dim', a.encoder_hidden_dim);
  d(a, 'encoder_z_dim', 128);
  d(a, 'encoder_n_dim', 16);
  d(a, 'encoder_layers', 6);
  d(a, 'encoder_chunk_size', -1);
  d(a, 'decoder_embed_path', null);
  d(a, 'decoder_embed_dim', a.encoder_embed_dim);
  d(a, 'decoder_hidden_dim', a.encoder_hidden_dim);
  d(a, 'decoder_ffn_embed_dim', a.encoder_ffn_embed_dim);
  d(a, 'decoder_z_dim', a.encoder_z_dim);
  d(a, 'decoder_n_dim', a.encoder_n_dim);
  d(a, 'decoder_layers', 6);
  d(a, 'decoder_chunk_size', a.encoder_chunk_size);
  d(a, 'decoder_input_dim', a.decoder_embed_dim);
  d(a, 'dropout', 0.1);
  d(a, 'attention_dropout', 0.0);
  d(a, 'hidden_dropout', 0.0);
  d(a, 'activation_dropout', 0.0);
  d(a, 'activation_fn', 'silu');
  d(a, 'attention_activation_fn', 'softmax');
  d(a, 'normalization_type', 'layernorm');
  d(a, 'normalize_before', false);
  d(a, 'normalize_embedding', false);
  d(a, 'rel_pos_bias', 'simple');
  d(a, 'truncation_length', 1024);
  d(a, 'feature_dropout', false);
  d(a, 'share_decoder_input_output_embed', false);
  d(a, 'share_all_embeddings', false);
  d(a, 'no_scale_embedding', false);
  d(a, 'max_source_positions', 1024);
  d(a, 'max_target_positions', 1024);
}

function lmBase(a: A): void {
  d(a, 'decoder_layers', 6);
  d(a, 'decoder_embed_dim', 512);
  d(a, 'decoder_hidden_dim', 1664);
  d(a, 'decoder_ffn_embed_dim', a.decoder_hidden_dim);
  d(a, 'decoder_z_dim', 128);
  d(a, 'decoder_n_dim', 16);
  d(a, 'decoder_chunk_size', -1);
  d(a, 'decoder_input_dim', a.decoder_embed_dim);
  d(a, 'dropout', 0.1);
  d(a, 'attention_dropout', 0.0);
  d(a, 'hidden_dropout', 0.0);
  d(a, 'activation_fn', 'silu');
  d(a, 'attention_activation_fn', 'softmax');
  d(a, 'normalization_type', 'layernorm');
  d(a, 'normalize_before', false);
  d(a, 'no_affine_final_norm', false);
  d(a, 'normalize_embedding', false);
  d(a, 'rel_pos_bias', 'simple');
  d(a, 'truncation_length', 2048);
  d(a, 'feature_dropout', false);
  d(a, 'no_scale_embedding', false);
  d(a, 'share_decoder_input_output_embed', false);
  d(a, 'max_target_positions', 1024);
  d(a, 'adaptive_input', false);
  d(a, 'adaptive_softmax_cutoff', null);
}

function lmAdaptive(a: A): void {
  d(a, 'adaptive_input', true);
  d(a, 'adaptive_input_cutoff', '20000,60000');
  d(a, 'adaptive_input_factor', 4);
  d(a, 'adaptive_softmax_cutoff', '20000,60000');
  d(a, 'adaptive_softmax_factor', 4);
  d(a, 'adaptive_softmax_dropout', 0.2);
  d(a, 'tie_adaptive_weights', true);
  d(a, 'tie_adaptive_proj', true);
}

function lraBase(a: A): void {
  d(a, 'dropout', 0.1);
  d(a, 'attention_dropout', 0.1);
  d(a, 'act_dropout', 0.0);
  d(a, 'feature_dropout', false);
  d(a, 'attention_activation_fn', 'relu2');
  d(a, 'activation_fn', 'silu');
  d(a, 'classifier_layers', 1);
  d(a, 'classifier_activation_fn', 'gelu');
  d(a, 'classifier_in_dim', a.encoder_embed_dim);
  d(a, 'encoder_normalize_before', false);
  d(a, 'normalize_embedding', false);
  d(a, 'apply_bert_init', false);
  d(a, 'rel_pos_bias', 'simple');
  d(a, 'sen_rep_type', 'mp');
  d(a, 'layer_type', 'mega');
  d(a, 'max_source_positions', a.max_positions);
}

/** One LRA arch row of §8.5: layers, D, H=F, Z, N, classifier out, classes, C, truncation, max positions, norm. */
function lra(
  row: [number, number, number, number, number, number, number, number, number, number, string | null],
  input: 'text' | 'image',
  extra: (a: A) => void = () => {},
) {
  const [layers, D, H, Z, N, cls, classes, C, trunc, maxPos, norm] = row;
  return (a: A): void => {
    d(a, 'encoder_layers', layers);
    d(a, 'encoder_embed_dim', D);
    d(a, 'encoder_hidden_dim', H);
    d(a, 'encoder_ffn_embed_dim', H);
    d(a, 'z_dim', Z);
    d(a, 'n_dim', N);
    d(a, 'classifier_out_dim', cls);
    d(a, 'sentence_class_num', classes);
    d(a, 'chunk_size', C);
    d(a, 'truncation_length', trunc);
    d(a, 'max_positions', maxPos);
    if (norm !== null) d(a, 'norm_type', norm);
    d(a, 'input_type', input);
    extra(a);
    lraBase(a);
  };
}

function scRaw(D: number, H: number, Z: number) {
  return (a: A): void => {
    d(a, 'encoder_layers', 6);
    d(a, 'encoder_embed_dim', D);
    d(a, 'encoder_hidden_dim', H);
    d(a, 'encoder_ffn_embed_dim', H);
    d(a, 'z_dim', Z);
    d(a, 'n_dim', 16);
    d(a, 'dropout', 0.0);
    d(a, 'attention_dropout', 0.0);
    d(a, 'act_dropout', 0.0);
    d(a, 'feature_dropout', false);
    d(a, 'activation_fn', 'silu');
    d(a, 'attention_activation_fn', 'laplace');
    d(a, 'norm_type', 'batchnorm');
    d(a, 'encoder_normalize_before', true);
    d(a, 'classifier_layers', 1);
    d(a, 'classifier_activation_fn', 'gelu');
    d(a, 'classifier_in_dim', D);
    d(a, 'classifier_out_dim', 2 * D);
    d(a, 'sentence_class_num', 10);
    d(a, 'chunk_size', 1000);
    d(a, 'truncation_length', 1000);
    d(a, 'max_positions', 16000);
    d(a, 'rel_pos_bias', 'simple');
    d(a, 'sen_rep_type', 'mp');
    d(a, 'layer_type', 'mega');
  };
}

/** Values for `d(a, k, v)` of the model-specific rows (set before the base function). */
function rows(r: Record<string, unknown>, base: (a: A) => void) {
  return (a: A): void => {
    for (const [k, v] of Object.entries(r)) d(a, k, v);
    base(a);
  };
}

const lmAdaptiveBig = rows(
  {
    decoder_layers: 16,
    decoder_embed_dim: 1024,
    decoder_hidden_dim: 2048,
    decoder_z_dim: 256,
    dropout: 0.3,
    attention_dropout: 0.1,
    hidden_dropout: 0.1,
    activation_dropout: 0.1,
  },
  (a) => {
    lmAdaptive(a);
    lmBase(a);
  },
);

/** The registered architectures: model kind and arch function (`mega_lm_wiki103` = `mega_lm_adaptive_big`). */
export const ARCHITECTURES: Readonly<Record<string, { model: ModelKind; apply: (a: A) => void }>> = {
  mega: { model: 'mega', apply: nmtBase },
  mega_wmt_en_de: { model: 'mega', apply: rows({ attention_dropout: 0.1, hidden_dropout: 0.1, activation_dropout: 0.1 }, nmtBase) },
  mega_wmt_en_de_big: {
    model: 'mega',
    apply: rows(
      {
        encoder_embed_dim: 1024,
        encoder_hidden_dim: 2048,
        encoder_z_dim: 256,
        dropout: 0.3,
        attention_dropout: 0.1,
        hidden_dropout: 0.1,
        activation_dropout: 0.1,
      },
      nmtBase,
    ),
  },
  mega_lm: { model: 'mega_lm', apply: lmBase },
  mega_lm_big: { model: 'mega_lm', apply: rows({ decoder_layers: 16, decoder_embed_dim: 1024, decoder_hidden_dim: 2048, decoder_z_dim: 256 }, lmBase) },
  mega_lm_adaptive_big: { model: 'mega_lm', apply: lmAdaptiveBig },
  mega_lm_wiki103: { model: 'mega_lm', apply: lmAdaptiveBig },
  mega_lm_adaptive_base: {
    model: 'mega_lm',
    apply: rows(
      {
        decoder_layers: 16,
        decoder_embed_dim: 768,
        decoder_hidden_dim: 1536,
        decoder_z_dim: 128,
        dropout: 0.3,
        attention_dropout: 0.1,
        hidden_dropout: 0.1,
        activation_dropout: 0.1,
      },
      (a) => {
        lmAdaptive(a);
        lmBase(a);
      },
    ),
  },
  mega_lm_enwik8_base: {
    model: 'mega_lm',
    apply: rows({ decoder_layers: 12, decoder_embed_dim: 512, decoder_hidden_dim: 1024, decoder_z_dim: 128, dropout: 0.1, activation_dropout: 0.0 }, lmBase),
  },
  mega_lm_enwik8_large: {
    model: 'mega_lm',
    apply: rows(
      { decoder_layers: 24, decoder_embed_dim: 1024, decoder_hidden_dim: 1536, decoder_z_dim: 128, dropout: 0.2, attention_dropout: 0.1, hidden_dropout: 0.1 },
      lmBase,
    ),
  },
  mega_lra_listop: { model: 'lra', apply: lra([6, 80, 160, 64, 16, 160, 10, -1, 1024, 2002, 'scalenorm'], 'text') },
  mega_lra_imdb: { model: 'lra', apply: lra([4, 128, 256, 64, 16, 256, 2, -1, 1024, 4002, 'scalenorm'], 'text') },
  mega_lra_aan: {
    model: 'lra',
    apply: lra([6, 128, 256, 64, 16, 256, 2, -1, 1024, 4002, null], 'text', (a) => d(a, 'classifier_in_dim', 2 * (a.encoder_embed_dim as number))),
  },
  mega_lra_cifar10: { model: 'lra', apply: lra([8, 160, 320, 96, 16, 320, 10, 1024, 1024, 1024, 'batchnorm'], 'image') },
  mega_lra_pf32: { model: 'lra', apply: lra([6, 128, 256, 64, 16, 256, 2, 1024, 1024, 1024, 'batchnorm'], 'image') },
  mega_lra_pf128: { model: 'lra', apply: lra([4, 64, 128, 32, 16, 128, 2, 16384, 4096, 16384, 'batchnorm'], 'image') },
  sc_raw: { model: 'sc_raw', apply: scRaw(60, 120, 30) },
  mega_sc_raw: { model: 'sc_raw', apply: scRaw(60, 120, 30) },
  mega_sc_raw_base: { model: 'sc_raw', apply: scRaw(60, 120, 30) },
  mega_sc_raw_big: { model: 'sc_raw', apply: scRaw(72, 144, 36) },
};

/** The registered arch names. */
export function archNames(): string[] {
  return Object.keys(ARCHITECTURES);
}

/**
 * The args namespace of `arch`: a copy of `overrides` (CLI values; they win) with the arch
 * defaults filled in, plus `arch`.
 * @throws ConfigError for an unknown arch
 */
export function archArgs(arch: string, overrides: Args = {}): Record<string, unknown> {
  const spec = ARCHITECTURES[arch];
  if (!spec) throw new ConfigError(`unknown arch '${arch}' (expected one of ${archNames().join(', ')})`);
  const a: A = { ...overrides, arch };
  spec.apply(a);
  return a;
}

/** Any of the full models. */
export type MegaAnyModel = LRAModel | MegaLanguageModel | MegaModel | SCRawModel;

/**
 * Builds the model of `arch` from `overrides` + the arch defaults. `task` (the dictionary) is
 * required by text LRA, LM and NMT models.
 * @throws ConfigError for an unknown arch, an arch that needs a field it does not default
 *   (`activation_dropout` of mega_lm / mega_lm_big / mega_lm_enwik8_large, `norm_type` of
 *   mega_lra_aan), adaptive cutoffs that do not fit the dictionary, or a missing task
 */
export function buildModel(arch: string, overrides: Args, task: TaskInfo | null, opts: ModelBuildOptions = {}): MegaAnyModel {
  const args = archArgs(arch, overrides);
  const kind = ARCHITECTURES[arch].model;
  const needTask = (): TaskInfo => {
    if (!task) throw new ConfigError(`arch ${arch}: a task (dictionary) is required`);
    return task;
  };
  switch (kind) {
    case 'mega':
      return new MegaModel(args, needTask(), opts);
    case 'mega_lm':
      if (args.activation_dropout === undefined) {
        throw new ConfigError(`arch ${arch} does not set activation_dropout (as in the reference, whose parser then fails): give --activation-dropout`);
      }
      return new MegaLanguageModel(args, needTask(), opts);
    case 'lra':
      return new LRAModel(args, args.input_type === 'image' ? null : needTask(), opts);
    case 'sc_raw':
      return new SCRawModel(args, opts);
  }
}

/** Builds any model from a full args namespace (e.g. a checkpoint's `args`) using `args.arch`. */
export function buildModelFromArgs(args: Args, task: TaskInfo | null, opts: ModelBuildOptions = {}): MegaAnyModel {
  const arch = args.arch;
  if (typeof arch !== 'string') throw new ConfigError('args.arch is required (a registered architecture name)');
  return buildModel(arch, args, task, opts);
}
