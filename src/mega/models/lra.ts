/**
 * The LRA classifier (docs/MEGA.md §8.1; reference `fairseq/models/lra/model.py` with
 * `layer_type='mega'`, `fairseq/models/lra/mega_lra_encoder.py`): a token (text) or real-number
 * (image) embedding, bidirectional `MegaSentenceEncoderLayer`s, mean / CLS pooling, an MLP head
 * and a bias-free projection to the classes. Loss `lra_cross_entropy` = summed NLL.
 *
 * State-dict names: `encoder.encoder.embed_tokens.embed.weight` (text) or
 * `encoder.encoder.embed_tokens.{weight,bias}` (image), `encoder.encoder.layers.i.*`,
 * `encoder.encoder.final_norm.norm.*` (prenorm), `classifier.i.0.{weight,bias}`,
 * `sentence_projection_layer.weight`.
 */
import * as F from '../../autograd/index.js';
import { ConfigError } from '../../nn/errors.js';
import { normal } from '../../nn/init.js';
import { Dropout, Embedding, Linear } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { SequenceNorm, type NormType } from '../../nn/norm.js';
import * as K from '../../tensor/kernels.js';
import type { FloatDType } from '../../tensor/dtype.js';
import { ShapeError } from '../../tensor/errors.js';
import { defaultGenerator, type Generator } from '../../tensor/random.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { AttentionActivation } from '../attention.js';
import { argBool, argNum, argNumOr, argStr, MegaSentenceEncoderLayer, type Args } from '../layers.js';
import { checkTask, checkTokens, chunkPadTokens, ModuleList, paddingMaskOf, zeroPads, type TaskInfo } from './common.js';

/** Construction options shared by the models: parameter dtype and initialisation generator. */
export interface ModelBuildOptions {
  dtype?: FloatDType;
  gen?: Generator;
}

/** Image-pixel embedding `e = x·w + b` (`w ~ N(0,1)`, `b ~ N(0, 0.1²)`, both `[D]`). */
export class RealNumberEmbedding extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(
    readonly dim: number,
    { dtype = 'f32', gen = defaultGenerator }: ModelBuildOptions = {},
  ) {
    super();
    this.weight = this.param('weight', normal([dim], 1, dtype, gen));
    this.bias = this.param('bias', normal([dim], 0.1, dtype, gen));
  }
  /** x: `B × L` reals → `B × L × D`. */
  forward(x: Tensor): Tensor {
    return F.add(F.mul(F.unsqueeze(x, -1), this.weight), this.bias);
  }
}

/** The LRA token embedding wrapper (`embed_tokens.embed.weight`), init `N(0, 1/D)`, pad row not zeroed. */
export class LRATokenEmbedding extends Module {
  readonly embed: Embedding;
  constructor(vocab: number, dim: number, paddingIdx: number, { dtype = 'f32', gen = defaultGenerator }: ModelBuildOptions = {}) {
    super();
    this.embed = this.child('embed', new Embedding(vocab, dim, { paddingIdx, std: dim ** -0.5, zeroPad: false, dtype, gen }));
  }
  /** ids `B × L` → `B × L × D`. */
  forward(ids: Tensor): Tensor {
    return this.embed.forward(ids);
  }
}

/** Sentence-encoder layer options from LRA / speech args (`hidden_dropout` = `act_dropout`). */
export function sentenceLayerArgs(args: Args, opts: ModelBuildOptions): ConstructorParameters<typeof MegaSentenceEncoderLayer>[0] {
  const t = args.truncation_length;
  return {
    embeddingDim: argNum(args, 'encoder_embed_dim'),
    hiddenDim: argNum(args, 'encoder_hidden_dim'),
    ffnHiddenDim: argNumOr(args, 'encoder_ffn_embed_dim', argNum(args, 'encoder_hidden_dim')),
    zDim: argNum(args, 'z_dim'),
    nDim: argNumOr(args, 'n_dim', 16),
    dropout: argNumOr(args, 'dropout', 0),
    attentionDropout: argNumOr(args, 'attention_dropout', 0),
    hiddenDropout: argNumOr(args, 'act_dropout', 0),
    chunkSize: argNumOr(args, 'chunk_size', -1),
    truncation: t === undefined || t === null ? null : argNum(args, 'truncation_length'),
    relPosBias: argStr<'simple' | 'rotary'>(args, 'rel_pos_bias', 'simple'),
    maxPositions: argNum(args, 'max_positions'),
    activation: argStr(args, 'activation_fn', 'silu'),
    attentionActivation: argStr<AttentionActivation>(args, 'attention_activation_fn', 'softmax'),
    normType: argStr<NormType>(args, 'norm_type'),
    prenorm: argBool(args, 'encoder_normalize_before', false),
    featureDropout: argBool(args, 'feature_dropout', false),
    dtype: opts.dtype,
    gen: opts.gen,
  };
}

/**
 * `MegaLRAEncoder`: embedding → dropout → zero pads → layers → final norm (prenorm) → zero pads →
 * pooling. Text inputs are chunk-padded to a multiple of `C` (mask computed after); image inputs
 * have no mask, and a length `> C` that is not a multiple of `C` is an error.
 */
export class MegaLRAEncoder extends Module {
  readonly embed_tokens: LRATokenEmbedding | RealNumberEmbedding;
  readonly embed_norm: SequenceNorm | null;
  readonly layers: ModuleList<MegaSentenceEncoderLayer>;
  readonly final_norm: SequenceNorm | null;
  readonly text: boolean;
  readonly chunkSize: number;
  readonly padIdx: number;
  readonly senRepType: 'mp' | 'cls';
  private readonly dropout: Dropout;

  constructor(args: Args, task: TaskInfo | null, opts: ModelBuildOptions = {}) {
    super();
    const D = argNum(args, 'encoder_embed_dim');
    const inputType = argStr(args, 'input_type', 'text');
    if (inputType !== 'text' && inputType !== 'image') throw new ConfigError(`args.input_type = ${inputType}: expected text or image`);
    this.text = inputType === 'text';
    this.senRepType = argStr<'mp' | 'cls'>(args, 'sen_rep_type', 'mp');
    if (this.senRepType !== 'mp' && this.senRepType !== 'cls') throw new ConfigError(`args.sen_rep_type = ${String(this.senRepType)}: expected mp or cls`);
    const layerOpts = sentenceLayerArgs(args, opts);
    this.chunkSize = layerOpts.chunkSize ?? -1;
    const normType = layerOpts.normType!;
    const prenorm = layerOpts.prenorm!;
    const embNorm = argBool(args, 'normalize_embedding', false);
    if (embNorm && prenorm) throw new ConfigError('normalize_embedding and encoder_normalize_before are mutually exclusive');
    this.dropout = this.child('dropout_module', new Dropout(argNumOr(args, 'dropout', 0), opts.gen));
    if (this.text) {
      const t = checkTask(task ?? undefined, 'MegaLRAEncoder (text input)');
      this.padIdx = t.pad;
      this.embed_tokens = this.child('embed_tokens', new LRATokenEmbedding(t.dictionary_size, D, t.pad, opts));
    } else {
      this.padIdx = -1;
      this.embed_tokens = this.child('embed_tokens', new RealNumberEmbedding(D, opts));
    }
    this.embed_norm = embNorm ? this.child('embed_norm', new SequenceNorm(normType, D, { dtype: opts.dtype })) : null;
    const n = argNum(args, 'encoder_layers');
    this.layers = this.child('layers', new ModuleList(Array.from({ length: n }, () => new MegaSentenceEncoderLayer(layerOpts))));
    this.final_norm = prenorm ? this.child('final_norm', new SequenceNorm(normType, D, { dtype: opts.dtype })) : null;
  }

  /**
   * tokens: i32 ids `B × L` (text) or reals `B × L` (image); srcLengths: `B` original lengths →
   * `{rep: B × D, states: L' × B × D}` (`L'` after chunk padding).
   */
  forward(tokens: Tensor, srcLengths: Tensor): { rep: Tensor; states: Tensor } {
    if (tokens.ndim !== 2) throw new ShapeError(`MegaLRAEncoder: expected inputs B × L, got [${tokens.shape}]`);
    let mask: Tensor | null = null;
    let x: Tensor;
    const C = this.chunkSize;
    if (this.text) {
      checkTokens(tokens, 'MegaLRAEncoder');
      tokens = chunkPadTokens(tokens, C, this.padIdx);
      mask = paddingMaskOf(tokens, this.padIdx);
      x = this.embed_tokens.forward(tokens); // B × L' × D
    } else {
      const L = tokens.shape[1];
      if (C > 0 && L > C && L % C !== 0)
        throw new ShapeError(`MegaLRAEncoder: image length ${L} is not a multiple of chunk_size ${C} (images cannot be padded)`);
      x = this.embed_tokens.forward(tokens);
    }
    if (this.embed_norm) x = this.embed_norm.forward(x);
    x = zeroPads(this.dropout.forward(x), mask, true);
    x = F.transpose(x, 0, 1); // L' × B × D
    for (const layer of this.layers.items) x = layer.forward(x, mask);
    if (this.final_norm) x = this.final_norm.forward(x);
    x = zeroPads(x, mask, false);
    let rep: Tensor;
    if (this.senRepType === 'mp') {
      const len = F.unsqueeze(K.cast(srcLengths, x.dtype), 1); // B × 1
      rep = F.div(F.sum(x, 0), len);
    } else rep = F.squeeze(F.narrow(x, 0, 0, 1), 0);
    return { rep, states: x };
  }
}

/** The reference's `LRAEncoder` wrapper: its only sub-module is `encoder` (hence `encoder.encoder.*`). */
export class LRAEncoder extends Module {
  readonly encoder: MegaLRAEncoder;
  constructor(args: Args, task: TaskInfo | null, opts: ModelBuildOptions = {}) {
    super();
    if (argStr(args, 'layer_type', 'mega') !== 'mega') throw new ConfigError(`args.layer_type = ${String(args.layer_type)}: only mega is implemented`);
    this.encoder = this.child('encoder', new MegaLRAEncoder(args, task, opts));
  }
  /** tokens `B × L`, srcLengths `B` → pooled representation `B × D`. */
  forward(tokens: Tensor, srcLengths: Tensor): Tensor {
    return this.encoder.forward(tokens, srcLengths).rep;
  }
}

/** One classifier layer: `[0]` Linear (Xavier, bias 0), `[1]` dropout; the activation follows the dropout. */
class ClassifierLayer extends Module {
  readonly linear: Linear;
  readonly dropout: Dropout;
  constructor(inDim: number, outDim: number, p: number, opts: ModelBuildOptions) {
    super();
    this.linear = this.child('0', new Linear(inDim, outDim, { init: 'xavier', dtype: opts.dtype, gen: opts.gen }));
    this.dropout = this.child('1', new Dropout(p, opts.gen));
  }
  /** x `B × in` → `B × out` (before the activation). */
  forward(x: Tensor): Tensor {
    return this.dropout.forward(this.linear.forward(x));
  }
}

/**
 * The classification head of LRA / speech: `r ← act(dropout(Linear(r)))` per classifier layer,
 * then `logits = sentence_projection_layer(r)` (bias-free, Xavier).
 */
export class ClassifierHead extends Module {
  readonly classifier: ModuleList<ClassifierLayer>;
  readonly sentence_projection_layer: Linear;
  private readonly act: (x: Tensor) => Tensor;

  constructor(args: Args, inDim: number, opts: ModelBuildOptions = {}) {
    super();
    const n = argNumOr(args, 'classifier_layers', 1);
    const out = argNum(args, 'classifier_out_dim');
    const p = argNumOr(args, 'dropout', 0);
    this.act = F.activation(argStr(args, 'classifier_activation_fn', 'gelu'));
    this.classifier = this.child('classifier', new ModuleList(Array.from({ length: n }, (_, i) => new ClassifierLayer(i === 0 ? inDim : out, out, p, opts))));
    this.sentence_projection_layer = this.child(
      'sentence_projection_layer',
      new Linear(out, argNum(args, 'sentence_class_num'), { bias: false, init: 'xavier', dtype: opts.dtype, gen: opts.gen }),
    );
  }

  /** rep `B × in` → logits `B × classes`. */
  forward(rep: Tensor): Tensor {
    for (const layer of this.classifier.items) rep = this.act(layer.forward(rep));
    return this.sentence_projection_layer.forward(rep);
  }
}

/** The second document of dual-input tasks (AAN retrieval, `net_input1`). */
export interface SecondInput {
  srcTokens: Tensor;
  srcLengths: Tensor;
}

/** `lra_cross_entropy`: `Σ_b −log softmax(logits_b)[target_b]` (summed, not divided by B). */
export function lraCrossEntropy(logits: Tensor, target: Tensor): Tensor {
  return F.crossEntropy(logits, target, { reduction: 'sum' }).loss;
}

/**
 * `LRAModel`: `encoder` (`LRAEncoder`) + classification head. With a second input the head sees
 * `concat(rep_second, rep_first)` (width 2D, `classifier_in_dim`).
 */
export class LRAModel extends Module {
  readonly encoder: LRAEncoder;
  readonly head: ClassifierHead;

  constructor(args: Args, task: TaskInfo | null, opts: ModelBuildOptions = {}) {
    super();
    this.encoder = this.child('encoder', new LRAEncoder(args, task, opts));
    const inDim = argNumOr(args, 'classifier_in_dim', argNum(args, 'encoder_embed_dim'));
    // the head's modules sit at the model's top level (`classifier.*`, `sentence_projection_layer.*`)
    this.head = new ClassifierHead(args, inDim, opts);
    this.child('classifier', this.head.classifier);
    this.child('sentence_projection_layer', this.head.sentence_projection_layer);
  }

  /** srcTokens `B × L` (ids or reals), srcLengths `B` → logits `B × classes`. */
  forward(srcTokens: Tensor, srcLengths: Tensor, second?: SecondInput): Tensor {
    let rep = this.encoder.forward(srcTokens, srcLengths);
    if (second) rep = F.concat([this.encoder.forward(second.srcTokens, second.srcLengths), rep], -1);
    return this.head.forward(rep);
  }
}
