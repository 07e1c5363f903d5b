/**
 * `MovingAverageGatedAttention`, the Mega layer (docs/MEGA.md §6, reference
 * `fairseq/modules/moving_average_gated_attention.py`): EMA → gated single-head attention
 * (softmax or element-wise laplace / relu2), optionally chunked, with incremental decoding.
 * Also what it shares with the cross attention (cross-attention.ts): the common options, the
 * attention score formulas and the gated output, causal masks and chunk-length checks.
 */
import * as F from '../autograd/index.js';
import { gateOut, gateQK, siluMul } from '../autograd/ops/fused.js';
import { makeDropout, Dropout, FeatureDropout, Linear } from '../nn/layers.js';
import { ConfigError } from '../nn/errors.js';
import { normal, zeros } from '../nn/init.js';
import { Module } from '../nn/module.js';
import { SequenceNorm, type NormType } from '../nn/norm.js';
import type { GateActivation } from '../tensor/backend.js';
import { full, scalar } from '../tensor/create.js';
import type { DType, FloatDType } from '../tensor/dtype.js';
import { ShapeError } from '../tensor/errors.js';
import * as K from '../tensor/kernels.js';
import { defaultGenerator, type Generator } from '../tensor/random.js';
import { fromStorage, type Tensor } from '../tensor/tensor.js';
import * as V from '../tensor/view.js';
import { MultiHeadEMA } from './ema.js';
import type { IncrementalState } from './incremental.js';
import { makeRelPosBias, type RelPosBias } from './relpos.js';

/** Attention score functions of Mega (docs/MEGA.md §2). */
export type AttentionActivation = 'softmax' | 'laplace' | 'relu2';

/** Options of both gated attention layers (the reference kwargs in camelCase). */
export interface GatedAttentionOptions {
  /** Model width `D`. */
  embedDim: number;
  /** Query/key width `Z`. */
  zdim: number;
  /** Dropout on attention weights (always standard dropout; default 0). */
  attentionDropout?: number;
  /** Dropout on the values (default 0). */
  hiddenDropout?: number;
  /** Layer activation (default silu). */
  activation?: string;
  /** Attention function (default softmax). */
  attentionActivation?: AttentionActivation;
  /** Norm type (default layernorm). */
  normType?: NormType;
  /** Pre-norm (default true) vs post-norm. */
  prenorm?: boolean;
  /** Affine norm parameters (default true). */
  normAffine?: boolean;
  /** Feature (channel) dropout instead of standard dropout (default false). */
  featureDropout?: boolean;
  /** Relative positional bias kind (default simple). */
  relPosBias?: 'simple' | 'rotary';
  /** Parameter dtype (default f32). */
  dtype?: FloatDType;
  /** Generator for the initialisation and dropout (default: the process-wide one). */
  gen?: Generator;
}

/** `activation` if it is an attention function (docs/MEGA.md §2), else a ConfigError naming `layer`. */
export function checkAttentionActivation(layer: string, activation: AttentionActivation): AttentionActivation {
  if (!['softmax', 'laplace', 'relu2'].includes(activation)) {
    throw new ConfigError(`${layer}: unknown attention activation '${activation}' (expected softmax, laplace, relu2)`);
  }
  return activation;
}

/**
 * Element attention weights before masking (docs/MEGA.md §2): laplace or relu2 of `q kᵀ / lengths
 * + bias`; `causal`: the causal mask follows, so the products above the diagonal are not computed
 * (`causalScores`). (Softmax attention: `F.softmaxAttention`, scores to probabilities in one node.)
 */
export function elementWeights(activation: AttentionActivation, q: Tensor, kT: Tensor, lengths: Tensor | number, bias: Tensor, causal = false): Tensor {
  const qk = F.add(F.div(causal ? F.causalScores(q, kT) : F.matmul(q, kT), lengths), bias);
  return activation === 'laplace' ? F.laplace(qk) : F.relu2(qk);
}

/** The gated output of both layers: `x + u ⊙ (h − x)`, i.e. `u ⊙ h + (1 − u) ⊙ x`. */
export function gatedResidual(x: Tensor, u: Tensor, h: Tensor): Tensor {
  return F.add(x, F.mul(u, F.sub(h, x)));
}

/** Layer activations the fused `gateOut` kernel applies itself, by option name. */
export const GATE_ACTIVATIONS: Readonly<Record<string, GateActivation>> = { silu: 'silu', swish: 'silu', relu: 'relu', linear: 'linear' };

let fusedGates = true;

/**
 * Chooses between the fused gate kernels of the Mega layer (`gateQK`, `siluMul`, `gateOut`: the
 * default) and their unfused compositions of primitive ops (the reference they are tested
 * against). Returns the previous setting.
 */
export function setFusedGates(on: boolean): boolean {
  const prev = fusedGates;
  fusedGates = on;
  return prev;
}

/** Whether the fused gate kernels are in use (see {@link setFusedGates}; the cross attention follows it too). */
export function fusedGatesOn(): boolean {
  return fusedGates;
}

let causalProducts = true;

/**
 * Chooses whether attention under a {@link causalMask} skips the products the mask makes zero
 * (`causalScores`, `causalWeighted`: the default) or computes the full ones (the reference they
 * are tested against). Returns the previous setting.
 */
export function setCausalProducts(on: boolean): boolean {
  const prev = causalProducts;
  causalProducts = on;
  return prev;
}

/** The masks made by {@link causalMask}, by tensor: whether additive (softmax) or multiplicative. */
const causalMasks = new WeakMap<Tensor, { additive: boolean }>();

/**
 * Whether `attnMask` (`n × n`) masks every entry above the diagonal — all −∞ there (additive, for
 * softmax) or all 0 (multiplicative) — so that the weights there are 0 and the products may skip
 * them. A mask made by {@link causalMask} is known; another host mask is read at every call (its
 * values may change between calls; n²/2 reads at most); a device mask is not read back (the
 * answer is no).
 */
function masksAbove(attnMask: Tensor, additive: boolean): boolean {
  const known = causalMasks.get(attnMask);
  if (known) return known.additive === additive;
  if (attnMask.device || attnMask.ndim !== 2 || attnMask.shape[0] !== attnMask.shape[1]) return false;
  const n = attnMask.shape[0];
  const c = attnMask.isContiguous() ? attnMask : K.copy(attnMask);
  const x = c.storage,
    o = c.offset;
  const want = additive ? -Infinity : 0;
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) if (x[o + i * n + j] !== want) return false;
  return true;
}

/** Incremental record name of the attention cache (golden `state:<path>.attn_state.<key>`). */
export const ATTN_STATE = 'attn_state';

/**
 * The reference decoder's causal mask (`buffered_future_mask`) of size `n × n`: for softmax an
 * additive mask (0 on/below the diagonal, −∞ above), for laplace / relu2 a multiplicative
 * lower-triangular mask of ones.
 */
export function causalMask(n: number, activation: AttentionActivation, dtype: FloatDType = 'f32'): Tensor {
  const t = full([n, n], 0, dtype);
  const s = t.storage;
  // row i: columns ≤ i kept, the rest masked (one fill per row)
  for (let i = 0; i < n; i++) {
    if (activation === 'softmax') s.fill(-Infinity, i * n + i + 1, (i + 1) * n);
    else s.fill(1, i * n, i * n + i + 1);
  }
  causalMasks.set(t, { additive: activation === 'softmax' });
  return t;
}

/**
 * Number of chunks and chunk length for a sequence of length `T` under chunk size `C` (§6.3):
 * `C < 0` or `T < C` → one chunk of length `T`; otherwise `T / C` chunks of `C` (T must be a
 * multiple of C, as in the reference's reshape).
 */
export function chunkLayout(T: number, C: number, what = 'sequence'): { n: number; len: number } {
  if (C < 0 || T < C) return { n: 1, len: T };
  if (T % C !== 0) {
    throw new ShapeError(
      `MovingAverageGatedAttention: ${what} length ${T} is not a multiple of chunk_size ${C} ` +
        `(lengths >= chunk_size must be multiples of it; pad the input to ${Math.ceil(T / C) * C})`,
    );
  }
  return { n: T / C, len: C };
}

/** `B × T × X` → `B × n × len × X` (differentiable). */
function toChunks(t: Tensor, n: number, len: number): Tensor {
  return F.reshape(t, [t.shape[0], n, len, t.shape[2]]);
}

/** Bool `B × K × C` mask with the rows of fully padded chunks cleared (the softmax exception). */
function dropFullyPadded(mask: Tensor): Tensor {
  const [B, Kc, C] = mask.shape;
  const src = K.copy(mask).storage;
  const out = new Uint8Array(src.length);
  for (let g = 0; g < B * Kc; g++) {
    let all = true;
    for (let j = 0; j < C; j++) if (!src[g * C + j]) all = false;
    if (!all) for (let j = 0; j < C; j++) out[g * C + j] = src[g * C + j];
  }
  return fromStorage(out, [B, Kc, C]);
}

/** `1 − mask` as floats. */
function inverseMask(mask: Tensor, dtype: DType): Tensor {
  return K.cast(K.unary(mask, 'not'), dtype);
}

/** Constructor options of `MovingAverageGatedAttention` (the reference kwargs in camelCase). */
export interface MegaOptions extends GatedAttentionOptions {
  /** Value / reset-gate width `H`. */
  hdim: number;
  /** EMA expansion dimension `N` (default 2). */
  ndim?: number;
  /** Dropout on the EMA output and the layer output (default 0). */
  dropout?: number;
  /** Bidirectional EMA (encoders; default false). */
  bidirectional?: boolean;
  /** Chunk size `C` (< 0: no chunking; default −1). */
  chunkSize?: number;
  /** EMA kernel truncation (null: none). */
  truncation?: number | null;
  /** Bias size when not chunking (default 1024; `C` is used when `C > 0`). */
  maxPositions?: number;
}

/** Call options of `MovingAverageGatedAttention.forward`. */
export interface MegaForwardOptions {
  /** `B × L` bool, true = padding (or null). */
  paddingMask?: Tensor | null;
  /** Causal mask `n × n` (additive for softmax, multiplicative for laplace / relu2). */
  attnMask?: Tensor | null;
  /** Incremental decoding state (EMA state and the key/value cache). */
  state?: IncrementalState | null;
  /** Return the attention weights (before dropout). */
  needWeights?: boolean;
}

/**
 * The Mega layer. Parameters (reference names): `gamma`, `beta` `[2, Z]`, `norm.norm.*`,
 * `move.{delta,alpha,beta,gamma,omega}`, `v_proj` (D→H), `mx_proj` (D→Z+H+2D), `h_proj` (H→D),
 * `rel_pos_bias.*`.
 */
export class MovingAverageGatedAttention extends Module {
  readonly embedDim: number;
  readonly zdim: number;
  readonly hdim: number;
  readonly ndim: number;
  readonly chunkSize: number;
  readonly prenorm: boolean;
  readonly attentionActivation: AttentionActivation;
  /** `Z^(−1/2)` (softmax only). */
  readonly scaling: number;
  /** `[2, Z]`: row 0 scales q, row 1 scales k. */
  readonly gamma: Tensor;
  /** `[2, Z]`: row 0 offsets q, row 1 offsets k. */
  readonly beta: Tensor;
  readonly norm: SequenceNorm;
  readonly move: MultiHeadEMA;
  readonly v_proj: Linear;
  readonly mx_proj: Linear;
  readonly h_proj: Linear;
  readonly rel_pos_bias: RelPosBias;
  private readonly act: (x: Tensor) => Tensor;
  /** The activation as the fused `gateOut` kernel names it (null: one it does not fuse). */
  private readonly gateAct: GateActivation | null;
  private readonly dropout: Dropout | FeatureDropout;
  private readonly hiddenDropout: Dropout | FeatureDropout;
  private readonly attentionDropout: Dropout;

  constructor(o: MegaOptions) {
    super();
    const dtype = o.dtype ?? 'f32';
    const gen = o.gen ?? defaultGenerator;
    const D = (this.embedDim = o.embedDim),
      Z = (this.zdim = o.zdim),
      H = (this.hdim = o.hdim);
    this.ndim = o.ndim ?? 2;
    this.chunkSize = o.chunkSize ?? -1;
    if (this.chunkSize === 0 || !Number.isInteger(this.chunkSize))
      throw new ConfigError(`MovingAverageGatedAttention: chunk_size must be a non-zero integer (negative = no chunking), got ${this.chunkSize}`);
    this.prenorm = o.prenorm ?? true;
    this.attentionActivation = checkAttentionActivation('MovingAverageGatedAttention', o.attentionActivation ?? 'softmax');
    this.scaling = 1 / Math.sqrt(Z);
    this.act = F.activation(o.activation ?? 'silu');
    this.gateAct = GATE_ACTIVATIONS[o.activation ?? 'silu'] ?? null;
    const feature = o.featureDropout ?? false;
    this.dropout = this.child('dropout', makeDropout(o.dropout ?? 0, feature, gen));
    this.hiddenDropout = this.child('hidden_dropout', makeDropout(o.hiddenDropout ?? 0, feature, gen));
    this.attentionDropout = this.child('attention_dropout', new Dropout(o.attentionDropout ?? 0, gen));
    const lin = { init: { std: 0.02 }, dtype, gen } as const;
    this.v_proj = this.child('v_proj', new Linear(D, H, lin));
    this.mx_proj = this.child('mx_proj', new Linear(D, Z + H + 2 * D, lin));
    this.h_proj = this.child('h_proj', new Linear(H, D, lin));
    this.gamma = this.param('gamma', normal([2, Z], 0.02, dtype, gen));
    this.beta = this.param('beta', zeros([2, Z], dtype));
    this.move = this.child('move', new MultiHeadEMA(D, this.ndim, { bidirectional: o.bidirectional ?? false, truncation: o.truncation ?? null, dtype, gen }));
    this.norm = this.child('norm', new SequenceNorm(o.normType ?? 'layernorm', D, { affine: o.normAffine ?? true, dtype }));
    const maxPos = this.chunkSize > 0 ? this.chunkSize : (o.maxPositions ?? 1024);
    this.rel_pos_bias = this.child('rel_pos_bias', makeRelPosBias(o.relPosBias ?? 'simple', Z, maxPos, { dtype, gen }));
  }

  /**
   * x: `L × B × D` → `{out: L × B × D, attnWeights: B × K × Cq × Ck | null}` (docs/MEGA.md §6.2–6.7).
   * With `state`, new keys/values are appended to the cache `attn_state` (`prev_key`,
   * `prev_value`, `prev_key_padding_mask`), which is cleared whenever a chunk completes.
   */
  forward(x: Tensor, opts: MegaForwardOptions = {}): { out: Tensor; attnWeights: Tensor | null } {
    const { paddingMask = null, attnMask = null, state = null, needWeights = false } = opts;
    if (x.ndim !== 3 || x.shape[2] !== this.embedDim)
      throw new ShapeError(`MovingAverageGatedAttention: expected input L × B × ${this.embedDim}, got [${x.shape}]`);
    const [L, B, D] = x.shape;
    const Z = this.zdim,
      H = this.hdim,
      C = this.chunkSize;
    if (paddingMask && (paddingMask.ndim !== 2 || paddingMask.shape[0] !== B || paddingMask.shape[1] !== L)) {
      throw new ShapeError(`MovingAverageGatedAttention: padding mask [${paddingMask.shape}] does not match B × L = ${B} × ${L}`);
    }
    const qLayout = chunkLayout(L, C, 'query');

    const residual = x;
    const xn = this.prenorm ? this.norm.forward(x) : x;
    const v0 = this.act(this.v_proj.forward(xn)); // L × B × H
    const mx = this.dropout.forward(this.move.forward(xn, paddingMask, state)); // L × B × D
    const base = this.mx_proj.forward(mx); // L × B × (D + Z + H + D)
    const [uRaw, zRaw, rRaw, hx] = F.split(base, [D, Z, H, D], -1); // pre-activation u, z, r; hx
    const fused = fusedGates && this.gateAct !== null;
    const [qT, kT] = fused ? gateQK(zRaw, this.gamma, this.beta) : this.queryKey(zRaw); // L × B × Z
    const q = F.transpose(qT, 0, 1); // B × L × Z
    let k = F.transpose(kT, 0, 1); // B × L × Z
    let v = F.transpose(v0, 0, 1); // B × L × H

    let mask = paddingMask; // B × T_ctx
    if (state) ({ k, v, mask } = this.updateCache(state, k, v, paddingMask, L));
    const T = k.shape[1];
    const kLayout = chunkLayout(T, C, 'context');

    const qc = toChunks(q, qLayout.n, qLayout.len); // B × Kq × Cq × Z
    const kc = toChunks(k, kLayout.n, kLayout.len); // B × K × Ck × Z
    let vc = toChunks(v, kLayout.n, kLayout.len); // B × K × Ck × H
    const mc = mask ? V.reshape(mask, [B, kLayout.n, kLayout.len]) : null; // B × K × Ck
    const { P, causal } = this.attention(qc, kc, mc, attnMask); // B × K × Cq × Ck

    vc = this.hiddenDropout.forward(vc, true);
    const Pd = this.attentionDropout.forward(P);
    const O = causal ? F.causalWeighted(Pd, vc) : F.matmul(Pd, vc); // B × K × Cq × H
    const h = F.transpose(F.reshape(O, [B, L, H]), 0, 1); // L × B × H
    let out: Tensor; // L × B × D
    if (fused) {
      const y = this.h_proj.forward(siluMul(h, rRaw));
      out = gateOut(residual, uRaw, hx, y, this.dropout.mask(y), this.gateAct!);
    } else {
      const hh = this.dropout.forward(this.act(F.add(hx, this.h_proj.forward(F.mul(h, F.silu(rRaw))))));
      out = gatedResidual(residual, F.sigmoid(uRaw), hh);
    }
    if (!this.prenorm) out = this.norm.forward(out);
    return { out, attnWeights: needWeights ? P : null };
  }

  /** Unfused §6.2 steps 7–8 (the reference of `gateQK`): `silu(z) ⊙ gamma[i] + beta[i]` for q (i = 0) and k (i = 1). */
  private queryKey(zRaw: Tensor): [Tensor, Tensor] {
    const z = F.silu(zRaw);
    const row = (p: Tensor, i: number) => F.narrow(p, 0, i, 1); // 1 × Z
    return [F.add(F.mul(z, row(this.gamma, 0)), row(this.beta, 0)), F.add(F.mul(z, row(this.gamma, 1)), row(this.beta, 1))];
  }

  /** §6.7: prepends cached keys/values, writes (or clears at chunk ends) the cache. */
  private updateCache(state: IncrementalState, k: Tensor, v: Tensor, paddingMask: Tensor | null, L: number): { k: Tensor; v: Tensor; mask: Tensor | null } {
    const saved = state.get(this, ATTN_STATE) ?? {};
    const prevK = saved.prev_key,
      prevV = saved.prev_value;
    if (prevK && typeof prevK !== 'number') k = F.concat([prevK, k], 1);
    if (prevV && typeof prevV !== 'number') v = F.concat([prevV, v], 1);
    const T = k.shape[1];
    // The reference reads the cached mask under a name it never writes: only the current
    // call's mask counts, left-filled with "not padding" for the cached positions.
    let mask = paddingMask;
    if (paddingMask && T > L) mask = K.concat([full([paddingMask.shape[0], T - L], 0, 'bool'), paddingMask], 1);
    const C = this.chunkSize;
    if (C > 0 && T % C === 0) state.delete(this, ATTN_STATE);
    else {
      const rec: Record<string, Tensor> = { prev_key: k, prev_value: v };
      if (mask) rec.prev_key_padding_mask = mask;
      state.set(this, ATTN_STATE, rec);
    }
    return { k, v, mask };
  }

  /**
   * Attention weights per chunk: q `B × Kq × Cq × Z`, k `B × K × Ck × Z` → P `B × K × Cq × Ck`;
   * `causal`: P is zero above the diagonal (a {@link causalMask} on square chunks) and its
   * products skip those terms.
   */
  private attention(q: Tensor, k: Tensor, mask: Tensor | null, attnMask: Tensor | null): { P: Tensor; causal: boolean } {
    const Cq = q.shape[2],
      Ck = k.shape[2];
    let bias = this.rel_pos_bias.forward(Ck); // Ck × Ck
    if (Cq !== Ck) {
      if (Cq !== 1)
        throw new ShapeError(`MovingAverageGatedAttention: ${Cq} queries against ${Ck} keys per chunk (only single-token incremental steps may differ)`);
      bias = F.narrow(bias, 0, Ck - 1, 1); // 1 × Ck
    }
    if (attnMask && (attnMask.ndim !== 2 || attnMask.shape[0] !== Cq || attnMask.shape[1] !== Ck)) {
      throw new ShapeError(`MovingAverageGatedAttention: attention mask [${attnMask.shape}] does not match the chunk ${Cq} × ${Ck}`);
    }
    const kT = F.transpose(k, 2, 3); // B × K × Z × Ck
    const causal = causalProducts && Cq === Ck && attnMask !== null && masksAbove(attnMask, this.attentionActivation === 'softmax');
    if (this.attentionActivation === 'softmax') {
      const fill = mask ? V.unsqueeze(dropFullyPadded(mask), 2) : null; // B × K × 1 × Ck
      return { P: F.softmaxAttention(q, kT, this.scaling, bias, causal, attnMask, fill), causal }; // B × K × Cq × Ck
    }
    // element attention: qkᵀ / n + bias, n = causal row counts, else non-pad key counts, else Ck
    let lengths: Tensor | number = Ck;
    let inv: Tensor | null = null;
    if (mask) {
      inv = inverseMask(mask, q.dtype); // B × K × Ck
      lengths = V.unsqueeze(K.binary(K.reduce(inv, 'sum', [2], true), scalar(1, q.dtype), 'max'), 3); // B × K × 1 × 1
    }
    if (attnMask) lengths = K.reduce(attnMask, 'sum', [1], true); // Cq × 1
    let P = elementWeights(this.attentionActivation, q, kT, lengths, bias, causal);
    if (inv) P = F.mul(P, V.unsqueeze(inv, 2));
    if (attnMask) P = F.mul(P, attnMask);
    return { P, causal };
  }
}
