/**
 * The layer wrappers of docs/MEGA.md §7.3: `MegaSentenceEncoderLayer` (LRA / speech blocks),
 * `MegaEncoderLayer(args)` and `MegaDecoderLayer(args, {noCrossAttention})` (NMT / LM blocks,
 * `fairseq/modules/mega_layer.py`). Sub-modules carry the reference names `mega_layer`,
 * `cross_attn`, `nffn`, so state-dict keys are e.g. `mega_layer.move.delta`,
 * `cross_attn.q_proj.weight`, `nffn.fc1.weight`.
 *
 * `layerOptionsFromArgs` is the one place where fairseq's snake_case argparse fields become the
 * camelCase options of the blocks.
 */
import { ConfigError } from '../nn/errors.js';
import { Module } from '../nn/module.js';
import type { NormType } from '../nn/norm.js';
import type { FloatDType } from '../tensor/dtype.js';
import { ShapeError } from '../tensor/errors.js';
import type { Generator } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import { MovingAverageGatedAttention, type AttentionActivation, type MegaOptions } from './attention.js';
import { GatedCrossAttention, type GCAOptions } from './cross-attention.js';
import type { IncrementalState } from './incremental.js';
import { NormalizedFeedForwardNetwork, type NFFNOptions } from './nffn.js';

/** fairseq argparse namespace (snake_case fields; only scalars and strings are read). */
export type Args = Readonly<Record<string, unknown>>;

/** Reads a required numeric field. */
export function argNum(args: Args, key: string): number {
  const v = args[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConfigError(`args.${key} = ${String(v)}: expected a number`);
  return v;
}

/** Reads an optional numeric field (`dflt` when absent / null). */
export function argNumOr(args: Args, key: string, dflt: number): number {
  const v = args[key];
  return v === undefined || v === null ? dflt : argNum(args, key);
}

/** Reads a string field (`dflt` when absent / null; required when `dflt` is undefined). */
export function argStr<T extends string = string>(args: Args, key: string, dflt?: T): T {
  const v = args[key];
  if (v === undefined || v === null) {
    if (dflt === undefined) throw new ConfigError(`args.${key} is required (a string)`);
    return dflt;
  }
  if (typeof v !== 'string') throw new ConfigError(`args.${key} = ${String(v)}: expected a string`);
  return v as T;
}

/** Reads a boolean field (`dflt` when absent / null). */
export function argBool(args: Args, key: string, dflt = false): boolean {
  const v = args[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw new ConfigError(`args.${key} = ${String(v)}: expected a boolean`);
  return v;
}

/** `--truncation-length`: null/absent = none (values ≤ 0 are treated as none by MultiHeadEMA). */
function argTruncation(args: Args, key: string): number | null {
  const v = args[key];
  return v === undefined || v === null ? null : argNum(args, key);
}

/** Options of the blocks of one encoder / decoder layer. */
export interface LayerBlockOptions {
  mega: MegaOptions;
  /** Null when the FFN width is ≤ 0 (no NFFN block). */
  nffn: NFFNOptions | null;
  /** Decoder only (null for encoders and `noCrossAttention`). */
  cross: GCAOptions | null;
}

/**
 * The argparse → options converter of `MegaEncoderLayer` / `MegaDecoderLayer` (docs/MEGA.md §7.3).
 * Fields read (with `p` = `encoder` or `decoder`): `p_embed_dim`, `p_z_dim`, `p_hidden_dim`,
 * `p_n_dim`, `p_ffn_embed_dim`, `p_chunk_size`, `dropout`, `attention_dropout`, `hidden_dropout`,
 * `activation_dropout` (NFFN hidden dropout), `feature_dropout`, `truncation_length`,
 * `rel_pos_bias`, `max_source_positions` / `max_target_positions`, `activation_fn`,
 * `attention_activation_fn`, `normalization_type`, `normalize_before`.
 * Encoders are bidirectional with `max_positions = max_source_positions`; decoders causal with
 * `max_target_positions`; cross attention uses `max(max_target_positions, max_source_positions)`.
 */
export function layerOptionsFromArgs(
  args: Args,
  side: 'encoder' | 'decoder',
  { noCrossAttention = false, dtype, gen }: { noCrossAttention?: boolean; dtype?: FloatDType; gen?: Generator } = {},
): LayerBlockOptions {
  const p = side;
  const D = argNum(args, `${p}_embed_dim`);
  const Z = argNum(args, `${p}_z_dim`);
  const dropout = argNumOr(args, 'dropout', 0);
  const attentionDropout = argNumOr(args, 'attention_dropout', 0);
  const hiddenDropout = argNumOr(args, 'hidden_dropout', 0);
  const activation = argStr(args, 'activation_fn', 'silu');
  const attentionActivation = argStr<AttentionActivation>(args, 'attention_activation_fn', 'softmax');
  const normType = argStr<NormType>(args, 'normalization_type', 'layernorm');
  const prenorm = argBool(args, 'normalize_before', false);
  const featureDropout = argBool(args, 'feature_dropout', false);
  const relPosBias = argStr<'simple' | 'rotary'>(args, 'rel_pos_bias', 'simple');
  const maxSrc = argNumOr(args, 'max_source_positions', 1024);
  const maxTgt = argNumOr(args, 'max_target_positions', 1024);
  const mega: MegaOptions = {
    embedDim: D,
    zdim: Z,
    hdim: argNum(args, `${p}_hidden_dim`),
    ndim: argNumOr(args, `${p}_n_dim`, 16),
    dropout,
    attentionDropout,
    hiddenDropout,
    activation,
    attentionActivation,
    bidirectional: side === 'encoder',
    chunkSize: argNumOr(args, `${p}_chunk_size`, -1),
    truncation: argTruncation(args, 'truncation_length'),
    normType,
    prenorm,
    featureDropout,
    relPosBias,
    maxPositions: side === 'encoder' ? maxSrc : maxTgt,
    dtype,
    gen,
  };
  const F = argNumOr(args, `${p}_ffn_embed_dim`, 0);
  const nffn: NFFNOptions | null =
    F > 0
      ? {
          embedDim: D,
          ffnHiddenDim: F,
          dropout,
          hiddenDropout: argNumOr(args, 'activation_dropout', 0),
          activation,
          normType,
          prenorm,
          featureDropout,
          dtype,
          gen,
        }
      : null;
  const cross: GCAOptions | null =
    side === 'decoder' && !noCrossAttention
      ? {
          embedDim: D,
          zdim: Z,
          ndim: mega.ndim,
          dropout,
          attentionDropout,
          hiddenDropout,
          activation,
          attentionActivation,
          normType,
          prenorm,
          featureDropout,
          relPosBias,
          maxPositions: Math.max(maxTgt, maxSrc),
          dtype,
          gen,
        }
      : null;
  return { mega, nffn, cross };
}

/** Constructor options of `MegaSentenceEncoderLayer` (the reference kwargs in camelCase). */
export interface SentenceEncoderLayerOptions {
  embeddingDim: number;
  hiddenDim: number;
  /** NFFN width; the NFFN is built only when > 0. */
  ffnHiddenDim: number;
  zDim: number;
  nDim?: number;
  dropout?: number;
  attentionDropout?: number;
  /** Used for both Mega's value dropout and the NFFN's activation dropout. */
  hiddenDropout?: number;
  chunkSize?: number;
  truncation?: number | null;
  relPosBias?: 'simple' | 'rotary';
  maxPositions?: number;
  activation?: string;
  attentionActivation?: AttentionActivation;
  normType?: NormType;
  prenorm?: boolean;
  featureDropout?: boolean;
  dtype?: FloatDType;
  gen?: Generator;
}

/**
 * The LRA / speech block (`fairseq/modules/mega_sentence_encoder_layer.py`): bidirectional Mega
 * then NFFN, with the same `hiddenDropout` for both. `x: L × B × D`, padding mask `B × L`.
 * The reference asserts `L mod C == 0` whenever `C > 0`, which also rejects `L < C`; here
 * `L < C` is accepted as a single chunk (equivalent to padding up to `C`, docs/MEGA.md §10 item 7), while
 * `L ≥ C` with `L mod C ≠ 0` is an error as in the reference.
 */
export class MegaSentenceEncoderLayer extends Module {
  readonly mega_layer: MovingAverageGatedAttention;
  readonly nffn: NormalizedFeedForwardNetwork | null;
  readonly chunkSize: number;

  constructor(o: SentenceEncoderLayerOptions) {
    super();
    this.chunkSize = o.chunkSize ?? -1;
    const hiddenDropout = o.hiddenDropout ?? 0,
      dropout = o.dropout ?? 0;
    const activation = o.activation ?? 'silu',
      normType = o.normType ?? 'layernorm',
      prenorm = o.prenorm ?? true;
    const featureDropout = o.featureDropout ?? false;
    this.mega_layer = this.child(
      'mega_layer',
      new MovingAverageGatedAttention({
        embedDim: o.embeddingDim,
        zdim: o.zDim,
        hdim: o.hiddenDim,
        ndim: o.nDim ?? 16,
        dropout,
        attentionDropout: o.attentionDropout ?? 0,
        hiddenDropout,
        activation,
        attentionActivation: o.attentionActivation ?? 'softmax',
        bidirectional: true,
        chunkSize: this.chunkSize,
        truncation: o.truncation ?? null,
        normType,
        prenorm,
        featureDropout,
        relPosBias: o.relPosBias ?? 'simple',
        maxPositions: o.maxPositions ?? 1024,
        dtype: o.dtype,
        gen: o.gen,
      }),
    );
    this.nffn =
      o.ffnHiddenDim > 0
        ? this.child(
            'nffn',
            new NormalizedFeedForwardNetwork({
              embedDim: o.embeddingDim,
              ffnHiddenDim: o.ffnHiddenDim,
              dropout,
              hiddenDropout,
              activation,
              normType,
              prenorm,
              featureDropout,
              dtype: o.dtype,
              gen: o.gen,
            }),
          )
        : null;
  }

  /** x: `L × B × D`, paddingMask `B × L` (true = pad) or null → `L × B × D`. */
  forward(x: Tensor, paddingMask: Tensor | null = null): Tensor {
    const L = x.shape[0],
      C = this.chunkSize;
    if (C > 0 && L >= C && L % C !== 0) {
      throw new ShapeError(`MegaSentenceEncoderLayer: sequence length ${L} is not a multiple of chunk_size ${C}`);
    }
    let out = this.mega_layer.forward(x, { paddingMask }).out;
    if (this.nffn) out = this.nffn.forward(out);
    return out;
  }
}

/** `MegaEncoderLayer(args)`: bidirectional Mega (encoder padding mask) then NFFN. */
export class MegaEncoderLayer extends Module {
  readonly mega_layer: MovingAverageGatedAttention;
  readonly nffn: NormalizedFeedForwardNetwork | null;

  constructor(args: Args, opts: { dtype?: FloatDType; gen?: Generator } = {}) {
    super();
    const o = layerOptionsFromArgs(args, 'encoder', opts);
    this.mega_layer = this.child('mega_layer', new MovingAverageGatedAttention(o.mega));
    this.nffn = o.nffn ? this.child('nffn', new NormalizedFeedForwardNetwork(o.nffn)) : null;
  }

  /** x: `L × B × D`, encoderPaddingMask `B × L` or null → `L × B × D`. */
  forward(x: Tensor, encoderPaddingMask: Tensor | null = null): Tensor {
    let out = this.mega_layer.forward(x, { paddingMask: encoderPaddingMask }).out;
    if (this.nffn) out = this.nffn.forward(out);
    return out;
  }
}

/** Call options of `MegaDecoderLayer.forward`. */
export interface DecoderLayerForwardOptions {
  /** `L1 × B × D` encoder output (required with cross attention, except on incremental steps after the first). */
  encoderOut?: Tensor | null;
  /** `B × L1` encoder padding (true = pad) or null. */
  encoderPaddingMask?: Tensor | null;
  /** Incremental decoding state (self-attention cache, EMA state, static cross keys). */
  state?: IncrementalState | null;
  /** Causal mask `n × n` (additive for softmax, multiplicative for element attention). */
  attnMask?: Tensor | null;
  /** `B × L2` decoder padding (true = pad) or null. */
  decoderPaddingMask?: Tensor | null;
  /** Return the cross-attention weights `B × L2 × L1`. */
  needAttn?: boolean;
}

/**
 * `MegaDecoderLayer(args, {noCrossAttention})`: causal Mega (decoder padding mask, causal mask,
 * incremental state), then GatedCrossAttention over the encoder output (static keys when
 * incremental) unless `noCrossAttention` (the LM), then NFFN.
 */
export class MegaDecoderLayer extends Module {
  readonly mega_layer: MovingAverageGatedAttention;
  readonly cross_attn: GatedCrossAttention | null;
  readonly nffn: NormalizedFeedForwardNetwork | null;

  constructor(args: Args, opts: { noCrossAttention?: boolean; dtype?: FloatDType; gen?: Generator } = {}) {
    super();
    const o = layerOptionsFromArgs(args, 'decoder', opts);
    this.mega_layer = this.child('mega_layer', new MovingAverageGatedAttention(o.mega));
    this.cross_attn = o.cross ? this.child('cross_attn', new GatedCrossAttention(o.cross)) : null;
    this.nffn = o.nffn ? this.child('nffn', new NormalizedFeedForwardNetwork(o.nffn)) : null;
  }

  /** x: `L2 × B × D` → `{out: L2 × B × D, attn: B × L2 × L1 | null}` (attn only with `needAttn`). */
  forward(x: Tensor, o: DecoderLayerForwardOptions = {}): { out: Tensor; attn: Tensor | null } {
    const state = o.state ?? null;
    let out = this.mega_layer.forward(x, { paddingMask: o.decoderPaddingMask ?? null, attnMask: o.attnMask ?? null, state }).out;
    let attn: Tensor | null = null;
    if (this.cross_attn) {
      const r = this.cross_attn.forward(out, o.encoderOut ?? null, { keyPaddingMask: o.encoderPaddingMask ?? null, state, needWeights: o.needAttn ?? false });
      out = r.out;
      attn = r.attnWeights;
    }
    if (this.nffn) out = this.nffn.forward(out);
    return { out, attn };
  }
}
