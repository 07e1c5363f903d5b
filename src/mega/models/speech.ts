/**
 * The raw-waveform Speech Commands classifier (docs/MEGA.md §8.2; reference
 * `fairseq/models/speech_commands/{model.py,mega_scraw_encoder.py}`): `RealNumberEmbedding` of
 * each sample → dropout → bidirectional `MegaSentenceEncoderLayer`s (no padding mask) → final norm
 * (prenorm) → mean over time → the LRA classification head.
 *
 * State-dict names (as LRA image models): `encoder.encoder.embed_tokens.{weight,bias}`,
 * `encoder.encoder.layers.i.*`, `encoder.encoder.final_norm.norm.*`, `classifier.0.0.*`,
 * `sentence_projection_layer.weight`. `mega_sc_raw_big` has 475 890 parameters.
 */
import * as F from '../../autograd/index.js';
import { ConfigError } from '../../nn/errors.js';
import { Dropout } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { SequenceNorm } from '../../nn/norm.js';
import { ShapeError } from '../../tensor/errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { argBool, argNum, argNumOr, argStr, MegaSentenceEncoderLayer, type Args } from '../layers.js';
import { ModuleList } from './common.js';
import { ClassifierHead, RealNumberEmbedding, sentenceLayerArgs, type ModelBuildOptions } from './lra.js';

/** `MegaSCRawEncoder`: waveform `B × L` → pooled representation `B × D`. */
export class MegaSCRawEncoder extends Module {
  readonly embed_tokens: RealNumberEmbedding;
  readonly layers: ModuleList<MegaSentenceEncoderLayer>;
  readonly final_norm: SequenceNorm | null;
  readonly chunkSize: number;
  private readonly dropout: Dropout;

  constructor(args: Args, opts: ModelBuildOptions = {}) {
    super();
    const D = argNum(args, 'encoder_embed_dim');
    const layerOpts = sentenceLayerArgs(args, opts);
    this.chunkSize = layerOpts.chunkSize ?? -1;
    if (argStr(args, 'sen_rep_type', 'mp') !== 'mp') throw new ConfigError('sc_raw: only mean pooling (sen_rep_type mp) is implemented');
    this.dropout = this.child('dropout_module', new Dropout(argNumOr(args, 'dropout', 0), opts.gen));
    this.embed_tokens = this.child('embed_tokens', new RealNumberEmbedding(D, opts));
    const n = argNum(args, 'encoder_layers');
    this.layers = this.child('layers', new ModuleList(Array.from({ length: n }, () => new MegaSentenceEncoderLayer(layerOpts))));
    this.final_norm = argBool(args, 'encoder_normalize_before', false)
      ? this.child('final_norm', new SequenceNorm(layerOpts.normType!, D, { dtype: opts.dtype }))
      : null;
  }

  /** x: `B × L` standardised samples → `B × D` (`Σ_t x_t / L`). Requires `L mod C == 0` when `C > 0`. */
  forward(x: Tensor): Tensor {
    if (x.ndim !== 2) throw new ShapeError(`MegaSCRawEncoder: expected a waveform batch B × L, got [${x.shape}]`);
    const L = x.shape[1],
      C = this.chunkSize;
    if (C > 0 && L % C !== 0) throw new ShapeError(`MegaSCRawEncoder: length ${L} is not a multiple of chunk_size ${C}`);
    let h = F.transpose(this.dropout.forward(this.embed_tokens.forward(x)), 0, 1); // L × B × D
    for (const layer of this.layers.items) h = layer.forward(h, null);
    if (this.final_norm) h = this.final_norm.forward(h);
    return F.mul(F.sum(h, 0), 1 / L);
  }
}

/** The reference's wrapper module (`encoder.encoder.*`). */
export class SCRawEncoder extends Module {
  readonly encoder: MegaSCRawEncoder;
  constructor(args: Args, opts: ModelBuildOptions = {}) {
    super();
    this.encoder = this.child('encoder', new MegaSCRawEncoder(args, opts));
  }
  /** x `B × L` → `B × D`. */
  forward(x: Tensor): Tensor {
    return this.encoder.forward(x);
  }
}

/** `SCRawModel`: waveform `B × L` → logits `B × classes` (loss: `lra_cross_entropy`). */
export class SCRawModel extends Module {
  readonly encoder: SCRawEncoder;
  readonly head: ClassifierHead;

  constructor(args: Args, opts: ModelBuildOptions = {}) {
    super();
    this.encoder = this.child('encoder', new SCRawEncoder(args, opts));
    this.head = new ClassifierHead(args, argNumOr(args, 'classifier_in_dim', argNum(args, 'encoder_embed_dim')), opts);
    this.child('classifier', this.head.classifier);
    this.child('sentence_projection_layer', this.head.sentence_projection_layer);
  }

  /** x `B × L` → logits `B × classes`. */
  forward(x: Tensor): Tensor {
    return this.head.forward(this.encoder.forward(x));
  }
}
