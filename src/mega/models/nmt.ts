/**
 * The encoder–decoder translation model (docs/MEGA.md §8.4; reference `fairseq/models/mega.py`):
 * `MegaEncoder` (bidirectional `MegaEncoderLayer`s) and `MegaDecoder` (causal `MegaDecoderLayer`s
 * with gated cross attention), `√D`-scaled embeddings (optionally one shared matrix), output
 * `x·Eᵀ` (shared) or a bias-free projection. Loss `label_smoothed_cross_entropy`.
 * Incremental decoding follows fairseq's sequence generator: the decoder is given the growing
 * prefix and keeps only its last token; `reorderIncrementalState` serves beam search.
 *
 * State-dict names: `encoder.{embed_tokens.weight, layers.i.*, final_norm.*}`,
 * `decoder.{embed_tokens.weight, layers.i.{mega_layer,cross_attn,nffn}.*, final_norm.*,
 * output_projection.weight}`; shared tensors appear under every name.
 */
import * as F from '../../autograd/index.js';
import { ConfigError } from '../../nn/errors.js';
import { normal } from '../../nn/init.js';
import { Dropout } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { SequenceNorm, type NormType } from '../../nn/norm.js';
import * as K from '../../tensor/kernels.js';
import { defaultGenerator } from '../../tensor/random.js';
import type { FloatDType } from '../../tensor/dtype.js';
import type { Tensor } from '../../tensor/tensor.js';
import { causalMask, type AttentionActivation } from '../attention.js';
import { GatedCrossAttention } from '../cross-attention.js';
import type { IncrementalState } from '../incremental.js';
import { argBool, argNum, argNumOr, argStr, MegaDecoderLayer, MegaEncoderLayer, type Args } from '../layers.js';
import {
  checkTask,
  checkTokens,
  chunkPadTokens,
  embeddingWeight,
  ModuleList,
  OutputProjection,
  paddingMaskOf,
  TokenEmbedding,
  trimMask,
  trimTo,
  zeroPads,
  type TaskInfo,
} from './common.js';
import type { ModelBuildOptions } from './lra.js';

/** The encoder's result: `out` `L × B × D`, `paddingMask` `B × L` (null when nothing is padded). */
export interface EncoderOut {
  out: Tensor;
  paddingMask: Tensor | null;
}

/**
 * `label_smoothed_cross_entropy` over non-pad targets, summed: per token
 * `(1−ε)·(−ℓ[y]) + (ε/V)·Σ_v(−ℓ[v])`; also returns the plain summed NLL.
 */
export function labelSmoothedCrossEntropy(logits: Tensor, target: Tensor, eps: number, pad: number): { loss: Tensor; nllLoss: Tensor } {
  const V = logits.shape[logits.ndim - 1];
  const r = F.crossEntropy(F.reshape(logits, [-1, V]), F.reshape(target, [-1]), { ignoreIndex: pad, labelSmoothing: eps, reduction: 'sum' });
  return { loss: r.loss, nllLoss: r.nll };
}

/** Common embedding front end: `√D·E[ids]` → embed norm → dropout → zero pads → `L × B × D`. */
abstract class MegaStack extends Module {
  readonly embed_tokens: TokenEmbedding;
  readonly embed_norm: SequenceNorm | null;
  readonly embedScale: number;
  readonly chunkSize: number;
  readonly padIdx: number;
  protected readonly dropoutModule: Dropout;

  constructor(args: Args, side: 'encoder' | 'decoder', embed: Tensor, pad: number, opts: ModelBuildOptions) {
    super();
    const D = argNum(args, `${side}_embed_dim`);
    const normType = argStr<NormType>(args, 'normalization_type', 'layernorm');
    this.padIdx = pad;
    this.chunkSize = argNumOr(args, `${side}_chunk_size`, -1);
    this.embedScale = argBool(args, 'no_scale_embedding', false) ? 1 : Math.sqrt(D);
    this.dropoutModule = this.child('dropout_module', new Dropout(argNumOr(args, 'dropout', 0), opts.gen));
    this.embed_tokens = this.child('embed_tokens', new TokenEmbedding(embed));
    this.embed_norm = argBool(args, 'normalize_embedding', false) ? this.child('embed_norm', new SequenceNorm(normType, D, { dtype: opts.dtype })) : null;
  }

  /** Registers the final norm after the layers (state-dict order as in the reference). */
  protected addFinalNorm(args: Args, D: number, opts: ModelBuildOptions): SequenceNorm | null {
    if (!argBool(args, 'normalize_before', false)) return null;
    return this.child('final_norm', new SequenceNorm(argStr<NormType>(args, 'normalization_type', 'layernorm'), D, { dtype: opts.dtype }));
  }

  /** ids `B × L` → `{x: L × B × D, mask: B × L | null}`. */
  protected embed(tokens: Tensor): { x: Tensor; mask: Tensor | null } {
    let x = F.mul(this.embed_tokens.forward(tokens), this.embedScale);
    if (this.embed_norm) x = this.embed_norm.forward(x);
    x = this.dropoutModule.forward(x);
    const mask = paddingMaskOf(tokens, this.padIdx);
    return { x: F.transpose(zeroPads(x, mask, true), 0, 1), mask };
  }
}

/** `MegaEncoder`: source ids `B × L` → `EncoderOut` (chunk padding removed again). */
export class MegaEncoder extends MegaStack {
  readonly layers: ModuleList<MegaEncoderLayer>;
  readonly final_norm: SequenceNorm | null;

  constructor(args: Args, embed: Tensor, pad: number, opts: ModelBuildOptions = {}) {
    super(args, 'encoder', embed, pad, opts);
    const n = argNum(args, 'encoder_layers');
    this.layers = this.child('layers', new ModuleList(Array.from({ length: n }, () => new MegaEncoderLayer(args, opts))));
    this.final_norm = this.addFinalNorm(args, argNum(args, 'encoder_embed_dim'), opts);
  }

  /** srcTokens `B × L` → `{out: L × B × D, paddingMask: B × L | null}`. */
  forward(srcTokens: Tensor): EncoderOut {
    checkTokens(srcTokens, 'MegaEncoder');
    const L0 = srcTokens.shape[1];
    const tokens = chunkPadTokens(srcTokens, this.chunkSize, this.padIdx);
    let { x, mask } = this.embed(tokens);
    for (const layer of this.layers.items) x = layer.forward(x, mask);
    if (this.final_norm) x = this.final_norm.forward(x);
    x = zeroPads(x, mask, false);
    return { out: trimTo(x, 0, L0), paddingMask: trimMask(mask, L0) };
  }
}

/** Call options of `MegaDecoder.forward`. */
export interface DecoderCallOptions {
  /** Incremental state: only the last token of `prevOutputTokens` is fed. */
  state?: IncrementalState | null;
  /** Return the last layer's cross-attention weights (default true). */
  needAttn?: boolean;
}

/** `MegaDecoder`: previous output tokens `B × T` + encoder output → logits `B × T × V`. */
export class MegaDecoder extends MegaStack {
  readonly layers: ModuleList<MegaDecoderLayer>;
  readonly final_norm: SequenceNorm | null;
  readonly output_projection: OutputProjection;
  readonly attentionActivation: AttentionActivation;

  constructor(args: Args, embed: Tensor, pad: number, V: number, opts: ModelBuildOptions = {}) {
    super(args, 'decoder', embed, pad, opts);
    const D = argNum(args, 'decoder_embed_dim');
    if (argNumOr(args, 'decoder_input_dim', D) !== D) throw new ConfigError('MegaModel: decoder_input_dim different from decoder_embed_dim is not supported');
    this.attentionActivation = argStr<AttentionActivation>(args, 'attention_activation_fn', 'softmax');
    const n = argNum(args, 'decoder_layers');
    this.layers = this.child('layers', new ModuleList(Array.from({ length: n }, () => new MegaDecoderLayer(args, opts))));
    this.final_norm = this.addFinalNorm(args, D, opts);
    const shared = argBool(args, 'share_decoder_input_output_embed', false) || argBool(args, 'share_all_embeddings', false);
    const w = shared ? embed : normal([V, D], D ** -0.5, opts.dtype ?? 'f32', opts.gen ?? defaultGenerator);
    this.output_projection = this.child('output_projection', new OutputProjection(w));
  }

  /** → `{logits: B × T' × V, attn: B × T' × L1 | null}` (`T' = 1` when incremental). */
  forward(prevOutputTokens: Tensor, enc: EncoderOut, { state = null, needAttn = true }: DecoderCallOptions = {}): { logits: Tensor; attn: Tensor | null } {
    checkTokens(prevOutputTokens, 'MegaDecoder');
    let tokens = prevOutputTokens;
    if (state) tokens = K.copy(F.narrow(tokens, 1, tokens.shape[1] - 1, 1));
    const T0 = tokens.shape[1];
    tokens = chunkPadTokens(tokens, this.chunkSize, this.padIdx);
    const T = tokens.shape[1],
      C = this.chunkSize;
    let { x, mask } = this.embed(tokens);
    const attnMask = state ? null : causalMask(C > 0 && C < T ? C : T, this.attentionActivation, x.dtype as FloatDType);
    let attn: Tensor | null = null;
    const last = this.layers.items.length - 1;
    this.layers.items.forEach((layer, i) => {
      const r = layer.forward(x, {
        encoderOut: enc.out,
        encoderPaddingMask: enc.paddingMask,
        state,
        attnMask,
        decoderPaddingMask: mask,
        needAttn: needAttn && i === last,
      });
      x = r.out;
      if (i === last) attn = r.attn;
    });
    if (this.final_norm) x = this.final_norm.forward(x);
    x = trimTo(zeroPads(x, mask, false), 0, T0);
    const logits = this.output_projection.forward(F.transpose(x, 0, 1)); // B × T0 × V
    return { logits, attn: attn ? trimTo(attn, 1, T0) : null };
  }
}

/** `MegaModel`: `encoder` + `decoder`. */
export class MegaModel extends Module {
  readonly encoder: MegaEncoder;
  readonly decoder: MegaDecoder;
  readonly task: TaskInfo;

  constructor(args: Args, task: TaskInfo, opts: ModelBuildOptions = {}) {
    super();
    this.task = checkTask(task, 'MegaModel');
    if (argBool(args, 'adaptive_input', false) || (args.adaptive_softmax_cutoff !== undefined && args.adaptive_softmax_cutoff !== null)) {
      throw new ConfigError('MegaModel: adaptive input / softmax are not implemented');
    }
    const dtype = opts.dtype ?? 'f32',
      gen = opts.gen ?? defaultGenerator;
    const V = this.task.dictionary_size,
      pad = this.task.pad;
    const De = argNum(args, 'encoder_embed_dim'),
      Dd = argNum(args, 'decoder_embed_dim');
    const shareAll = argBool(args, 'share_all_embeddings', false);
    if (shareAll && De !== Dd) throw new ConfigError('share_all_embeddings requires encoder_embed_dim == decoder_embed_dim');
    const encEmbed = embeddingWeight(V, De, pad, dtype, gen);
    const decEmbed = shareAll ? encEmbed : embeddingWeight(V, Dd, pad, dtype, gen);
    this.encoder = this.child('encoder', new MegaEncoder(args, encEmbed, pad, { dtype, gen }));
    this.decoder = this.child('decoder', new MegaDecoder(args, decEmbed, pad, V, { dtype, gen }));
  }

  /** Teacher forcing: src `B × L`, prev output tokens `B × T` → `{logits: B × T × V, attn: B × T × L}`. */
  forward(srcTokens: Tensor, prevOutputTokens: Tensor): { logits: Tensor; attn: Tensor | null } {
    return this.decoder.forward(prevOutputTokens, this.encoder.forward(srcTokens));
  }

  /** The criterion's summed losses for `target` `B × T` (pad targets ignored). */
  loss(logits: Tensor, target: Tensor, labelSmoothing: number): { loss: Tensor; nllLoss: Tensor } {
    return labelSmoothedCrossEntropy(logits, target, labelSmoothing, this.task.pad);
  }

  /** Beam search: index-selects the incremental state along the batch (static cross keys of equal batch are kept). */
  reorderIncrementalState(state: IncrementalState, order: Tensor): void {
    state.reorder(order, (owner) => owner instanceof GatedCrossAttention);
  }

  /** Beam search: index-selects the encoder output (`L × B × D`) and mask along the batch. */
  reorderEncoderOut(enc: EncoderOut, order: Tensor): EncoderOut {
    return { out: K.indexSelect(enc.out, 1, order), paddingMask: enc.paddingMask ? K.indexSelect(enc.paddingMask, 0, order) : null };
  }
}
