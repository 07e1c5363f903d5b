/**
 * The decoder-only language model (docs/MEGA.md §8.3; reference `fairseq/models/mega_lm.py`,
 * `MegaDecoderNoCrossAttn`): `√D`-scaled token embedding, causal `MegaDecoderLayer`s without
 * cross attention, a final norm (prenorm; optionally non-affine) and a tied or untied output
 * projection. Training loss `cross_entropy` = summed token NLL ignoring pad targets.
 *
 * Not implemented: adaptive input / adaptive softmax (`--adaptive-input`,
 * `--adaptive-softmax-cutoff`, the WikiText-103 archs) — building with them raises ConfigError.
 *
 * State-dict names: `decoder.embed_tokens.weight`, `decoder.project_in_dim.weight` (only when
 * `decoder_input_dim ≠ D`), `decoder.layers.i.{mega_layer,nffn}.*`, `decoder.final_norm.norm.*`,
 * `decoder.output_projection.weight` (the embedding tensor itself when tied).
 */
import * as F from '../../autograd/index.js';
import { ConfigError } from '../../nn/errors.js';
import { Dropout, Linear } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { SequenceNorm, type NormType } from '../../nn/norm.js';
import { normal } from '../../nn/init.js';
import { defaultGenerator } from '../../tensor/random.js';
import type { FloatDType } from '../../tensor/dtype.js';
import type { Tensor } from '../../tensor/tensor.js';
import { causalMask, type AttentionActivation } from '../attention.js';
import type { IncrementalState } from '../incremental.js';
import { argBool, argNum, argNumOr, argStr, MegaDecoderLayer, type Args } from '../layers.js';
import {
  checkTask, checkTokens, chunkPadTokens, embeddingWeight, ModuleList, OutputProjection, paddingMaskOf, TokenEmbedding,
  trimTo, zeroPads, type TaskInfo,
} from './common.js';
import type { ModelBuildOptions } from './lra.js';

/** `cross_entropy` criterion: `Σ −log p(target)` over non-pad targets; logits `B × T × V`, target `B × T`. */
export function lmCrossEntropy(logits: Tensor, target: Tensor, pad: number): Tensor {
  const V = logits.shape[logits.ndim - 1];
  return F.crossEntropy(F.reshape(logits, [-1, V]), F.reshape(target, [-1]), { ignoreIndex: pad, reduction: 'sum' }).loss;
}

/** Rejects the adaptive input / softmax options (not implemented). */
export function rejectAdaptive(args: Args, who: string): void {
  if (argBool(args, 'adaptive_input', false) || (args.adaptive_softmax_cutoff !== undefined && args.adaptive_softmax_cutoff !== null)) {
    throw new ConfigError(`${who}: adaptive input / adaptive softmax (--adaptive-input, --adaptive-softmax-cutoff) are not implemented`);
  }
}

/** `MegaDecoderNoCrossAttn`: the LM's decoder stack. */
export class MegaLMDecoder extends Module {
  readonly embed_tokens: TokenEmbedding;
  readonly project_in_dim: Linear | null;
  readonly embed_norm: SequenceNorm | null;
  readonly layers: ModuleList<MegaDecoderLayer>;
  readonly final_norm: SequenceNorm | null;
  readonly output_projection: OutputProjection | Linear;
  readonly embedScale: number;
  readonly chunkSize: number;
  readonly padIdx: number;
  readonly attentionActivation: AttentionActivation;
  private readonly dropout: Dropout;

  constructor(args: Args, task: TaskInfo, opts: ModelBuildOptions = {}) {
    super();
    rejectAdaptive(args, 'MegaLanguageModel');
    const dtype = opts.dtype ?? 'f32', gen = opts.gen ?? defaultGenerator;
    const D = argNum(args, 'decoder_embed_dim');
    const d = argNumOr(args, 'decoder_input_dim', D);
    const V = task.dictionary_size;
    this.padIdx = task.pad;
    this.chunkSize = argNumOr(args, 'decoder_chunk_size', -1);
    this.attentionActivation = argStr<AttentionActivation>(args, 'attention_activation_fn', 'softmax');
    this.embedScale = argBool(args, 'no_scale_embedding', false) ? 1 : Math.sqrt(D);
    const normType = argStr<NormType>(args, 'normalization_type', 'layernorm');
    const prenorm = argBool(args, 'normalize_before', false);
    this.dropout = this.child('dropout_module', new Dropout(argNumOr(args, 'dropout', 0), gen));
    this.embed_tokens = this.child('embed_tokens', new TokenEmbedding(embeddingWeight(V, d, task.pad, dtype, gen)));
    this.project_in_dim = d !== D ? this.child('project_in_dim', new Linear(d, D, { bias: false, init: 'xavier', dtype, gen })) : null;
    this.embed_norm = argBool(args, 'normalize_embedding', false) ? this.child('embed_norm', new SequenceNorm(normType, D, { dtype })) : null;
    const n = argNum(args, 'decoder_layers');
    this.layers = this.child('layers', new ModuleList(Array.from({ length: n }, () => new MegaDecoderLayer(args, { noCrossAttention: true, dtype, gen }))));
    this.final_norm = prenorm ? this.child('final_norm', new SequenceNorm(normType, D, { affine: !argBool(args, 'no_affine_final_norm', false), dtype })) : null;
    if (argBool(args, 'share_decoder_input_output_embed', false)) {
      if (d !== D) throw new ConfigError('share_decoder_input_output_embed requires decoder_input_dim == decoder_embed_dim');
      this.output_projection = this.child('output_projection', new OutputProjection(this.embed_tokens.weight));
    } else {
      this.output_projection = this.child('output_projection', new OutputProjection(normal([V, D], D ** -0.5, dtype, gen)));
    }
  }

  /**
   * tokens `B × L` (with `state`: only the new tokens; the cache carries the history) →
   * logits `B × L × V`. Chunk-pads to a multiple of `C` when `0 < C < L` and trims back; builds
   * the causal mask (`C × C` or `L × L`) whenever the call has more than one position.
   */
  forward(tokens: Tensor, state: IncrementalState | null = null): Tensor {
    checkTokens(tokens, 'MegaLanguageModel');
    const L0 = tokens.shape[1];
    tokens = chunkPadTokens(tokens, this.chunkSize, this.padIdx);
    const L = tokens.shape[1], C = this.chunkSize;
    let x = F.mul(this.embed_tokens.forward(tokens), this.embedScale); // B × L × d
    if (this.project_in_dim) x = this.project_in_dim.forward(x);
    if (this.embed_norm) x = this.embed_norm.forward(x);
    x = this.dropout.forward(x);
    const mask = paddingMaskOf(tokens, this.padIdx);
    x = F.transpose(zeroPads(x, mask, true), 0, 1); // L × B × D
    const attnMask = L > 1 ? causalMask(C > 0 && C < L ? C : L, this.attentionActivation, x.dtype as FloatDType) : null;
    for (const layer of this.layers.items) x = layer.forward(x, { state, attnMask, decoderPaddingMask: mask }).out;
    if (this.final_norm) x = this.final_norm.forward(x);
    x = trimTo(zeroPads(x, mask, false), 0, L0);
    return this.output_projection.forward(F.transpose(x, 0, 1)); // B × L0 × V
  }
}

/** `MegaLanguageModel`: its only sub-module is `decoder`. */
export class MegaLanguageModel extends Module {
  readonly decoder: MegaLMDecoder;
  readonly task: TaskInfo;

  constructor(args: Args, task: TaskInfo, opts: ModelBuildOptions = {}) {
    super();
    this.task = checkTask(task, 'MegaLanguageModel');
    this.decoder = this.child('decoder', new MegaLMDecoder(args, this.task, opts));
  }

  /** srcTokens `B × T` → logits `B × T × V` (teacher forcing, or one block of incremental evaluation). */
  forward(srcTokens: Tensor, state: IncrementalState | null = null): Tensor {
    return this.decoder.forward(srcTokens, state);
  }

  /** The criterion's summed loss for `target` `B × T` (pad targets ignored). */
  loss(logits: Tensor, target: Tensor): Tensor {
    return lmCrossEntropy(logits, target, this.task.pad);
  }
}
