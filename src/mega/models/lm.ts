/**
 * The decoder-only language model (docs/MEGA.md §8.3; reference `fairseq/models/mega_lm.py`,
 * `MegaDecoderNoCrossAttn`): `√D`-scaled token embedding, causal `MegaDecoderLayer`s without
 * cross attention, a final norm (prenorm; optionally non-affine) and a tied or untied output
 * projection — or, for the WikiText-103 archs, adaptive input (`--adaptive-input`) and an
 * adaptive softmax (`--adaptive-softmax-cutoff`, optionally tied to the adaptive input).
 *
 * Criteria: `cross_entropy` = summed token NLL ignoring pad targets (over the full log-probs of
 * the adaptive softmax when there is one); `adaptive_loss` = the adaptive softmax's own loss
 * (needs an adaptive softmax; the default for models that have one).
 *
 * State-dict names: `decoder.embed_tokens.weight` (or `decoder.embed_tokens.embeddings.i.{0,1}.weight`
 * with adaptive input), `decoder.project_in_dim.weight` (only when `decoder_input_dim ≠ D`),
 * `decoder.layers.i.{mega_layer,nffn}.*`, `decoder.final_norm.norm.*`, and
 * `decoder.output_projection.weight` (the embedding tensor itself when tied) or
 * `decoder.adaptive_softmax.*`.
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
import { AdaptiveInput, AdaptiveSoftmax, parseCutoffs } from '../adaptive/index.js';
import {
  checkTask,
  checkTokens,
  chunkPadTokens,
  embeddingWeight,
  ModuleList,
  OutputProjection,
  paddingMaskOf,
  TokenEmbedding,
  trimTo,
  zeroPads,
  type TaskInfo,
} from './common.js';
import type { ModelBuildOptions } from './lra.js';

/** `cross_entropy` criterion: `Σ −log p(target)` over non-pad targets; logits `B × T × V`, target `B × T`. */
export function lmCrossEntropy(logits: Tensor, target: Tensor, pad: number): Tensor {
  const V = logits.shape[logits.ndim - 1];
  return F.crossEntropy(F.reshape(logits, [-1, V]), F.reshape(target, [-1]), { ignoreIndex: pad, reduction: 'sum' }).loss;
}

/** The LM criteria (fairseq names). */
export type LmCriterion = 'cross_entropy' | 'adaptive_loss';

/** Whether `args` asks for an adaptive softmax (`--adaptive-softmax-cutoff` set). */
function hasAdaptiveSoftmax(args: Args): boolean {
  return args.adaptive_softmax_cutoff !== undefined && args.adaptive_softmax_cutoff !== null;
}

/** Builds the adaptive input of `args` (`--adaptive-input`): bands of `adaptive_input_cutoff`, widths `⌊d / factorⁱ⌋`, output `D`. */
function buildAdaptiveInput(args: Args, V: number, pad: number, d: number, D: number, opts: ModelBuildOptions): AdaptiveInput {
  const cutoff = parseCutoffs(args.adaptive_input_cutoff, V, 'adaptive_input_cutoff');
  return new AdaptiveInput(V, pad, d, argNumOr(args, 'adaptive_input_factor', 4), D, cutoff, opts);
}

/** `MegaDecoderNoCrossAttn`: the LM's decoder stack. */
export class MegaLMDecoder extends Module {
  readonly embed_tokens: TokenEmbedding | AdaptiveInput;
  readonly project_in_dim: Linear | null;
  readonly embed_norm: SequenceNorm | null;
  readonly layers: ModuleList<MegaDecoderLayer>;
  readonly final_norm: SequenceNorm | null;
  /** Plain output layer (null with an adaptive softmax). */
  readonly output_projection: OutputProjection | null;
  /** Adaptive softmax (`--adaptive-softmax-cutoff`), else null. */
  readonly adaptive_softmax: AdaptiveSoftmax | null;
  readonly embedScale: number;
  readonly chunkSize: number;
  readonly padIdx: number;
  readonly attentionActivation: AttentionActivation;
  private readonly dropout: Dropout;

  constructor(args: Args, task: TaskInfo, opts: ModelBuildOptions = {}) {
    super();
    const dtype = opts.dtype ?? 'f32',
      gen = opts.gen ?? defaultGenerator;
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
    const adaptiveInput = argBool(args, 'adaptive_input', false);
    const tie = argBool(args, 'tie_adaptive_weights', false);
    if (tie) {
      // the reference's build_model asserts these
      if (!adaptiveInput) throw new ConfigError('--tie-adaptive-weights needs --adaptive-input');
      if (!hasAdaptiveSoftmax(args)) throw new ConfigError('--tie-adaptive-weights needs --adaptive-softmax-cutoff');
      if (argNumOr(args, 'adaptive_input_factor', 4) !== argNumOr(args, 'adaptive_softmax_factor', 4)) {
        throw new ConfigError(
          `--tie-adaptive-weights needs equal factors (adaptive_input_factor ` +
            `${String(args.adaptive_input_factor)}, adaptive_softmax_factor ${String(args.adaptive_softmax_factor)})`,
        );
      }
      if (d !== D) throw new ConfigError(`--tie-adaptive-weights needs decoder_input_dim (${d}) == decoder_embed_dim (${D})`);
    }
    // adaptive input: band widths from d, output width D (so no project_in_dim)
    this.embed_tokens = this.child(
      'embed_tokens',
      adaptiveInput ? buildAdaptiveInput(args, V, task.pad, d, D, { dtype, gen }) : new TokenEmbedding(embeddingWeight(V, d, task.pad, dtype, gen)),
    );
    if (tie && this.embed_tokens instanceof AdaptiveInput) {
      const ci = this.embed_tokens.cutoff.join(','),
        cs = parseCutoffs(args.adaptive_softmax_cutoff, V, 'adaptive_softmax_cutoff').join(',');
      if (ci !== cs) throw new ConfigError(`--tie-adaptive-weights needs equal cutoffs (adaptive_input_cutoff ${ci}, adaptive_softmax_cutoff ${cs})`);
    }
    const embedOut = adaptiveInput ? D : d;
    this.project_in_dim = embedOut !== D ? this.child('project_in_dim', new Linear(d, D, { bias: false, init: 'xavier', dtype, gen })) : null;
    this.embed_norm = argBool(args, 'normalize_embedding', false) ? this.child('embed_norm', new SequenceNorm(normType, D, { dtype })) : null;
    const n = argNum(args, 'decoder_layers');
    this.layers = this.child('layers', new ModuleList(Array.from({ length: n }, () => new MegaDecoderLayer(args, { noCrossAttention: true, dtype, gen }))));
    this.final_norm = prenorm
      ? this.child('final_norm', new SequenceNorm(normType, D, { affine: !argBool(args, 'no_affine_final_norm', false), dtype }))
      : null;
    this.adaptive_softmax = null;
    this.output_projection = null;
    if (hasAdaptiveSoftmax(args)) {
      this.adaptive_softmax = this.child(
        'adaptive_softmax',
        new AdaptiveSoftmax(V, D, parseCutoffs(args.adaptive_softmax_cutoff, V, 'adaptive_softmax_cutoff'), {
          dropout: argNumOr(args, 'adaptive_softmax_dropout', 0),
          factor: argNumOr(args, 'adaptive_softmax_factor', 4),
          tiedTo: tie ? (this.embed_tokens as AdaptiveInput) : null,
          tieProj: argBool(args, 'tie_adaptive_proj', false),
          dtype,
          gen,
        }),
      );
    } else if (argBool(args, 'share_decoder_input_output_embed', false)) {
      if (!(this.embed_tokens instanceof TokenEmbedding))
        throw new ConfigError(
          'share_decoder_input_output_embed cannot be used with --adaptive-input (use --adaptive-softmax-cutoff with --tie-adaptive-weights)',
        );
      if (d !== D) throw new ConfigError('share_decoder_input_output_embed requires decoder_input_dim == decoder_embed_dim');
      this.output_projection = this.child('output_projection', new OutputProjection(this.embed_tokens.weight));
    } else {
      this.output_projection = this.child('output_projection', new OutputProjection(normal([V, D], D ** -0.5, dtype, gen)));
    }
  }

  /**
   * tokens `B × L` (with `state`: only the new tokens; the cache carries the history) →
   * scores `B × L × V`: logits, or with an adaptive softmax its full log-probabilities (so
   * `logSoftmax` of the result is the log-probabilities either way).
   */
  forward(tokens: Tensor, state: IncrementalState | null = null): Tensor {
    return this.outputLayer(this.features(tokens, state));
  }

  /** features `B × L × D` → scores `B × L × V` (logits, or the adaptive softmax's log-probs). */
  outputLayer(x: Tensor): Tensor {
    if (this.output_projection) return this.output_projection.forward(x);
    const [B, L, D] = x.shape;
    return F.reshape(this.adaptive_softmax!.logProbs(F.reshape(x, [B * L, D])), [B, L, -1]);
  }

  /**
   * tokens `B × L` → the decoder's features `B × L × D` (before the output layer). Chunk-pads to
   * a multiple of `C` when `0 < C < L` and trims back; builds the causal mask (`C × C` or
   * `L × L`) whenever the call has more than one position.
   */
  features(tokens: Tensor, state: IncrementalState | null = null): Tensor {
    checkTokens(tokens, 'MegaLanguageModel');
    const L0 = tokens.shape[1];
    tokens = chunkPadTokens(tokens, this.chunkSize, this.padIdx);
    const L = tokens.shape[1],
      C = this.chunkSize;
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
    return F.transpose(x, 0, 1); // B × L0 × D
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

  /** Whether the model has an adaptive softmax (then `adaptive_loss` is available and the default). */
  get adaptive(): boolean {
    return this.decoder.adaptive_softmax !== null;
  }

  /** `cross_entropy` summed over non-pad targets, from `forward`'s scores `B × T × V` and `target` `B × T`. */
  loss(scores: Tensor, target: Tensor): Tensor {
    return lmCrossEntropy(scores, target, this.task.pad);
  }

  /**
   * `log p(target)` per position: srcTokens, target `B × T` → `B × T` (with `state`: one block of
   * the block-wise evaluation). With an adaptive softmax only the target's head / tail entries
   * are computed (in row batches), never the full `B × T × V` matrix.
   */
  targetLogProbs(srcTokens: Tensor, target: Tensor, state: IncrementalState | null = null): Tensor {
    const x = this.decoder.features(srcTokens, state); // B × T × D
    const [B, T, D] = x.shape;
    const sm = this.decoder.adaptive_softmax;
    if (sm) return F.reshape(sm.targetLogProbs(F.reshape(x, [B * T, D]), F.reshape(target, [B * T])), [B, T]);
    const lp = F.logSoftmax(this.decoder.outputLayer(x), -1); // B × T × V
    return F.reshape(F.gather(lp, 2, F.reshape(target, [B, T, 1])), [B, T]);
  }

  /** `adaptive_loss` summed over the batch, from `features` `B × T × D` and `target` `B × T`. */
  adaptiveLoss(features: Tensor, target: Tensor): Tensor {
    const sm = this.decoder.adaptive_softmax;
    if (!sm) throw new ConfigError('--criterion adaptive_loss needs a model with an adaptive softmax (--adaptive-softmax-cutoff)');
    const D = features.shape[features.ndim - 1];
    return sm.loss(F.reshape(features, [-1, D]), F.reshape(target, [-1]), this.task.pad);
  }

  /**
   * One teacher-forced pass and the criterion's summed loss: srcTokens, target `B × T` (with
   * `state`: one block of the block-wise evaluation, as the reference criteria take
   * `incremental_states`). `criterion` defaults to `adaptive_loss` with an adaptive softmax, else
   * `cross_entropy`.
   * @throws ConfigError for `adaptive_loss` on a model without an adaptive softmax
   */
  criterionLoss(srcTokens: Tensor, target: Tensor, criterion?: LmCriterion, state: IncrementalState | null = null): Tensor {
    const c = criterion ?? (this.adaptive ? 'adaptive_loss' : 'cross_entropy');
    if (c === 'adaptive_loss') {
      if (!this.adaptive) throw new ConfigError('--criterion adaptive_loss needs a model with an adaptive softmax (--adaptive-softmax-cutoff)');
      return this.adaptiveLoss(this.decoder.features(srcTokens, state), target);
    }
    return this.loss(this.forward(srcTokens, state), target);
  }
}
