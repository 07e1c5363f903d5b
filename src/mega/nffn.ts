/**
 * `NormalizedFeedForwardNetwork` (docs/MEGA.md §7.1, reference
 * `fairseq/modules/normalized_feedforward_network.py`): a residual two-layer MLP with a
 * SequenceNorm before (prenorm) or after (post-norm) it.
 */
import * as F from '../autograd/index.js';
import { Linear, makeDropout, type Dropout, type FeatureDropout } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { SequenceNorm, type NormType } from '../nn/norm.js';
import type { FloatDType } from '../tensor/dtype.js';
import { defaultGenerator, type Generator } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';

/** Constructor options of `NormalizedFeedForwardNetwork` (reference kwargs in camelCase). */
export interface NFFNOptions {
  /** Model width `D`. */
  embedDim: number;
  /** Hidden width `F`. */
  ffnHiddenDim: number;
  /** Dropout after `fc2` (default 0). */
  dropout?: number;
  /** Dropout after the activation (default 0). */
  hiddenDropout?: number;
  /** Activation (default silu). */
  activation?: string;
  /** Norm type (default layernorm). */
  normType?: NormType;
  /** Pre-norm (default true) vs post-norm. */
  prenorm?: boolean;
  /** Affine norm parameters (default true). */
  normAffine?: boolean;
  /** Feature (channel) dropout instead of standard dropout (default false). */
  featureDropout?: boolean;
  /** Parameter dtype (default f32). */
  dtype?: FloatDType;
  /** Generator for initialisation and dropout. */
  gen?: Generator;
}

/** Parameters: `norm.norm.*`, `fc1` (D→F), `fc2` (F→D); weights N(0, 0.02²), biases 0. */
export class NormalizedFeedForwardNetwork extends Module {
  readonly norm: SequenceNorm;
  readonly fc1: Linear;
  readonly fc2: Linear;
  readonly prenorm: boolean;
  private readonly act: (x: Tensor) => Tensor;
  private readonly dropout: Dropout | FeatureDropout;
  private readonly hiddenDropout: Dropout | FeatureDropout;

  constructor(o: NFFNOptions) {
    super();
    const dtype = o.dtype ?? 'f32';
    const gen = o.gen ?? defaultGenerator;
    this.prenorm = o.prenorm ?? true;
    this.act = F.activation(o.activation ?? 'silu');
    const feature = o.featureDropout ?? false;
    this.dropout = this.child('dropout', makeDropout(o.dropout ?? 0, feature, gen));
    this.hiddenDropout = this.child('hidden_dropout', makeDropout(o.hiddenDropout ?? 0, feature, gen));
    this.fc1 = this.child('fc1', new Linear(o.embedDim, o.ffnHiddenDim, { init: { std: 0.02 }, dtype, gen }));
    this.fc2 = this.child('fc2', new Linear(o.ffnHiddenDim, o.embedDim, { init: { std: 0.02 }, dtype, gen }));
    this.norm = this.child('norm', new SequenceNorm(o.normType ?? 'layernorm', o.embedDim, { affine: o.normAffine ?? true, dtype }));
  }

  /** x: `L × B × D` → `L × B × D`. */
  forward(x: Tensor): Tensor {
    const residual = x;
    let h = this.prenorm ? this.norm.forward(x) : x;
    h = this.hiddenDropout.forward(this.act(this.fc1.forward(h))); // L × B × F
    h = this.dropout.forward(this.fc2.forward(h)); // L × B × D
    let out = F.add(h, residual);
    if (!this.prenorm) out = this.norm.forward(out);
    return out;
  }
}
