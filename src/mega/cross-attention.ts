/**
 * `GatedCrossAttention` (docs/MEGA.md §7.2, reference `fairseq/modules/gated_cross_attention.py`): the
 * NMT decoder's gated single-head attention over the encoder output. No EMA, no chunking.
 * Incremental decoding is static key/value: the projected encoder keys/values are computed once
 * and cached in `attn_state` with the absolute query position `prev_num_steps`.
 */
import * as F from '../autograd/index.js';
import { gateOut, siluMul } from '../autograd/ops/fused.js';
import { Dropout, FeatureDropout, Linear, makeDropout } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { SequenceNorm } from '../nn/norm.js';
import { ShapeError } from '../tensor/errors.js';
import * as K from '../tensor/kernels.js';
import { defaultGenerator } from '../tensor/random.js';
import type { GateActivation } from '../tensor/backend.js';
import { zeros } from '../tensor/create.js';
import type { Tensor } from '../tensor/tensor.js';
import * as V from '../tensor/view.js';
import {
  ATTN_STATE,
  checkAttentionActivation,
  elementWeights,
  fusedGatesOn,
  GATE_ACTIVATIONS,
  gatedResidual,
  type AttentionActivation,
  type GatedAttentionOptions,
} from './attention.js';
import type { IncrementalState } from './incremental.js';
import { makeRelPosBias, type RelPosBias } from './relpos.js';

/** Constructor options of `GatedCrossAttention` (reference kwargs in camelCase). */
export interface GCAOptions extends GatedAttentionOptions {
  /** Accepted for parity with the reference; unused. */
  ndim?: number;
  /** Dropout on the output (default 0). */
  dropout?: number;
  /** Bias size `M` (default 1024; max of source and target positions in the NMT model). */
  maxPositions?: number;
}

/** Call options of `GatedCrossAttention.forward`. */
export interface GCAForwardOptions {
  /** `B × L1` bool encoder padding (true = padding), or null. */
  keyPaddingMask?: Tensor | null;
  /** Incremental (static key/value) state; then the query must be a single token. */
  state?: IncrementalState | null;
  /** Return the attention weights `B × L2 × L1` (before dropout). */
  needWeights?: boolean;
}

/**
 * Parameters: `norm.norm.*`, `k_proj` (D→Z), `v_proj` (D→D), `q_proj` (D→2D+Z), `h_proj` (D→D),
 * `rel_pos_bias.*` (size `maxPositions`).
 */
export class GatedCrossAttention extends Module {
  readonly embedDim: number;
  readonly zdim: number;
  readonly prenorm: boolean;
  readonly attentionActivation: AttentionActivation;
  /** `Z^(−1/2)` (softmax only). */
  readonly scaling: number;
  readonly norm: SequenceNorm;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly q_proj: Linear;
  readonly h_proj: Linear;
  readonly rel_pos_bias: RelPosBias;
  private readonly act: (x: Tensor) => Tensor;
  /** The activation as the fused `gateOut` kernel names it (null: one it does not fuse). */
  private readonly gateAct: GateActivation | null;
  private readonly dropout: Dropout | FeatureDropout;
  private readonly hiddenDropout: Dropout | FeatureDropout;
  private readonly attentionDropout: Dropout;

  constructor(o: GCAOptions) {
    super();
    const dtype = o.dtype ?? 'f32';
    const gen = o.gen ?? defaultGenerator;
    const D = (this.embedDim = o.embedDim),
      Z = (this.zdim = o.zdim);
    this.prenorm = o.prenorm ?? true;
    this.attentionActivation = checkAttentionActivation('GatedCrossAttention', o.attentionActivation ?? 'softmax');
    this.scaling = 1 / Math.sqrt(Z);
    this.act = F.activation(o.activation ?? 'silu');
    this.gateAct = GATE_ACTIVATIONS[o.activation ?? 'silu'] ?? null;
    const feature = o.featureDropout ?? false;
    this.dropout = this.child('dropout', makeDropout(o.dropout ?? 0, feature, gen));
    this.hiddenDropout = this.child('hidden_dropout', makeDropout(o.hiddenDropout ?? 0, feature, gen));
    this.attentionDropout = this.child('attention_dropout', new Dropout(o.attentionDropout ?? 0, gen));
    const lin = { init: { std: 0.02 }, dtype, gen } as const;
    this.k_proj = this.child('k_proj', new Linear(D, Z, lin));
    this.v_proj = this.child('v_proj', new Linear(D, D, lin));
    this.q_proj = this.child('q_proj', new Linear(D, 2 * D + Z, lin));
    this.h_proj = this.child('h_proj', new Linear(D, D, lin));
    this.norm = this.child('norm', new SequenceNorm(o.normType ?? 'layernorm', D, { affine: o.normAffine ?? true, dtype }));
    this.rel_pos_bias = this.child('rel_pos_bias', makeRelPosBias(o.relPosBias ?? 'simple', Z, o.maxPositions ?? 1024, { dtype, gen }));
  }

  /**
   * query: `L2 × B × D` (decoder states), key: `L1 × B × D` (encoder output, also the value;
   * may be null on incremental steps after the first) → `{out: L2 × B × D, attnWeights}`.
   */
  forward(query: Tensor, key: Tensor | null, opts: GCAForwardOptions = {}): { out: Tensor; attnWeights: Tensor | null } {
    const { state = null, needWeights = false } = opts;
    let keyPaddingMask = opts.keyPaddingMask ?? null;
    if (query.ndim !== 3 || query.shape[2] !== this.embedDim)
      throw new ShapeError(`GatedCrossAttention: expected query L2 × B × ${this.embedDim}, got [${query.shape}]`);
    const [L2, B, D] = query.shape;
    const Z = this.zdim;

    const qn = this.prenorm ? this.norm.forward(query) : query;
    const [uRaw, rRaw, qRaw] = F.split(this.q_proj.forward(qn), [D, D, Z], -1); // pre-activation u, r: L2 × B × D
    const q = F.transpose(qRaw, 0, 1); // B × L2 × Z

    let k: Tensor, v: Tensor;
    let pidx: number | null = null;
    const saved = state?.get(this, ATTN_STATE);
    if (state && saved && saved.prev_key) {
      // static key/value: reuse the cached projections and padding mask
      k = saved.prev_key as Tensor;
      v = saved.prev_value as Tensor;
      keyPaddingMask = (saved.prev_key_padding_mask as Tensor | null | undefined) ?? null;
      pidx = (saved.prev_num_steps as number) + 1;
    } else {
      if (!key) throw new ShapeError('GatedCrossAttention: key (encoder output) is required on the first call');
      k = F.transpose(this.k_proj.forward(key), 0, 1); // B × L1 × Z
      v = F.transpose(this.act(this.v_proj.forward(key)), 0, 1); // B × L1 × D
      if (state) pidx = 0;
    }
    if (state) {
      if (L2 !== 1) throw new ShapeError(`GatedCrossAttention: incremental calls take one query token, got ${L2}`);
      const rec: Record<string, Tensor | number> = { prev_key: k, prev_value: v, prev_num_steps: pidx! };
      if (keyPaddingMask) rec.prev_key_padding_mask = keyPaddingMask;
      state.set(this, ATTN_STATE, rec);
    }
    const L1 = k.shape[1];
    if (keyPaddingMask && (keyPaddingMask.shape[0] !== B || keyPaddingMask.shape[1] !== L1)) {
      throw new ShapeError(`GatedCrossAttention: key padding mask [${keyPaddingMask.shape}] does not match B × L1 = ${B} × ${L1}`);
    }

    // bias rows = query positions (pidx when incremental), columns = keys
    const slen = pidx === null ? L2 : pidx + 1;
    let bias = F.narrow(this.rel_pos_bias.forward(Math.max(slen, L1)), 1, 0, L1);
    bias = pidx === null ? F.narrow(bias, 0, 0, L2) : F.narrow(bias, 0, pidx, 1); // L2 × L1

    const kT = F.transpose(k, 1, 2); // B × Z × L1
    let P: Tensor; // B × L2 × L1
    if (this.attentionActivation === 'softmax') {
      P = F.softmaxAttention(q, kT, this.scaling, bias, false, null, keyPaddingMask ? V.unsqueeze(keyPaddingMask, 1) : null);
    } else {
      let lengths: Tensor | number = L1;
      let inv: Tensor | null = null;
      if (keyPaddingMask) {
        inv = V.unsqueeze(K.cast(K.unary(keyPaddingMask, 'not'), q.dtype), 1); // B × 1 × L1
        lengths = K.reduce(inv, 'sum', [2], true); // B × 1 × 1 (no clamp, as the reference)
      }
      P = elementWeights(this.attentionActivation, q, kT, lengths, bias);
      if (inv) P = F.mul(P, inv);
    }

    const vd = this.hiddenDropout.forward(v, true);
    const h = F.transpose(F.matmul(this.attentionDropout.forward(P), vd), 0, 1); // L2 × B × D
    let out: Tensor; // L2 × B × D
    if (fusedGatesOn() && this.gateAct !== null) {
      // the self-attention's fused gates; no hx term here: act(0 + y) = act(y)
      const y = this.h_proj.forward(siluMul(h, rRaw));
      out = gateOut(query, uRaw, zerosLike(y), y, this.dropout.mask(y), this.gateAct);
    } else {
      const hh = this.dropout.forward(this.act(this.h_proj.forward(F.mul(h, F.silu(rRaw)))));
      out = gatedResidual(query, F.sigmoid(uRaw), hh);
    }
    if (!this.prenorm) out = this.norm.forward(out);
    return { out, attnWeights: needWeights ? P : null };
  }
}

/** Zeros of `t`'s shape and dtype (the gate's absent hx term). */
function zerosLike(t: Tensor): Tensor {
  return zeros(t.shape, t.dtype);
}
