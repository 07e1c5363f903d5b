/**
 * `MultiHeadEMA` (docs/MEGA.md §5, reference `fairseq/modules/exponential_moving_average.py`): a damped,
 * N-dimensional exponential moving average per channel, realised as a long convolution whose
 * kernel is `k[d, l] = Σ_n p·beta·q^l·gamma·scale`. Everything is composed from differentiable
 * ops (the convolution is `F.fftConv`), so gradients reach the input and all five parameters.
 */
import * as F from '../autograd/index.js';
import { emaCoeffs, emaKernel } from '../autograd/ops/fused.js';
import { arange, fromArray } from '../tensor/create.js';
import { allocate, type FloatDType } from '../tensor/dtype.js';
import { defaultGenerator, type Generator } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import { ShapeError } from '../tensor/errors.js';
import { ConfigError } from '../nn/errors.js';
import { normal } from '../nn/init.js';
import { Module } from '../nn/module.js';
import type { IncrementalState } from './incremental.js';

/** Construction options of `MultiHeadEMA`. */
export interface MultiHeadEMAOptions {
  /** Add a second, anti-causal kernel (rows `D..2D−1`); encoders use it. Default false. */
  bidirectional?: boolean;
  /**
   * Kernel length limit of the full-sequence path (`K = min(truncation, L)`); null/undefined =
   * unlimited. **A value ≤ 0 is also treated as unlimited** (docs/MEGA.md §10 item 4: the MT README passes
   * `--truncation-length 0`, which in the reference gives an empty kernel or an error; "no
   * truncation" is what was meant). The incremental path always ignores truncation (§5.4).
   */
  truncation?: number | null;
  /** Parameter dtype (default f32). */
  dtype?: FloatDType;
  /** Generator for the initialisation (default: the process-wide one). */
  gen?: Generator;
}

/** Incremental record name and key (golden name `state:<path>.ema_state.prev_state`). */
export const EMA_STATE = 'ema_state';

/**
 * Multi-dimensional damped EMA over `L × B × D` (docs/MEGA.md §5). Parameters (state_dict names of the
 * reference), with `D' = 2D` when bidirectional else `D`:
 * `delta`, `alpha`, `beta` `[D', N, 1]`, `gamma` `[D', N]`, `omega` `[D]`.
 */
export class MultiHeadEMA extends Module {
  /** `[D', N, 1]`: p = σ(delta) (the paper's α, weight of the new input). */
  readonly delta: Tensor;
  /** `[D', N, 1]`: σ(alpha) is the damping factor (the paper's δ). */
  readonly alpha: Tensor;
  /** `[D', N, 1]`: input expansion (init N(0, 0.02²) + alternating ±1). */
  readonly beta: Tensor;
  /** `[D', N]`: output projection (scaled by 1/√N). */
  readonly gamma: Tensor;
  /** `[D]`: residual weight, `out = silu(conv + omega ⊙ x)`. */
  readonly omega: Tensor;
  readonly bidirectional: boolean;
  /** Full-sequence kernel limit; null = unlimited (values ≤ 0 are stored as null). */
  readonly truncation: number | null;
  /** `√(1/N)`. */
  readonly scale: number;
  readonly dtype: FloatDType;

  constructor(
    readonly embedDim: number,
    readonly ndim: number = 2,
    opts: MultiHeadEMAOptions = {},
  ) {
    super();
    if (!Number.isInteger(embedDim) || embedDim < 1) throw new ConfigError(`MultiHeadEMA: embed_dim must be a positive integer, got ${embedDim}`);
    if (!Number.isInteger(ndim) || ndim < 1) throw new ConfigError(`MultiHeadEMA: ndim must be a positive integer, got ${ndim}`);
    const t = opts.truncation;
    if (t !== null && t !== undefined && !Number.isInteger(t)) throw new ConfigError(`MultiHeadEMA: truncation must be an integer or null, got ${t}`);
    this.bidirectional = opts.bidirectional ?? false;
    this.truncation = t === null || t === undefined || t <= 0 ? null : t;
    this.scale = Math.sqrt(1 / ndim);
    this.dtype = opts.dtype ?? 'f32';
    const gen = opts.gen ?? defaultGenerator;
    const Dk = this.bidirectional ? 2 * embedDim : embedDim; // D'
    const dt = this.dtype;
    this.delta = this.param('delta', normal([Dk, ndim, 1], 0.2, dt, gen));
    this.alpha = this.param('alpha', normal([Dk, ndim, 1], 0.2, dt, gen));
    const beta = normal([Dk, ndim, 1], 0.02, dt, gen);
    for (let d = 0; d < Dk; d++) for (let n = 0; n < ndim; n++) beta.storage[d * ndim + n] += n % 2 === 0 ? 1 : -1;
    this.beta = this.param('beta', beta);
    this.gamma = this.param('gamma', normal([Dk, ndim], 1, dt, gen));
    this.omega = this.param('omega', normal([embedDim], 1, dt, gen));
  }

  /** `p = σ(delta)`, `q = 1 − p·σ(alpha)`, each `D' × N × 1` (§5.2). */
  coeffs(): { p: Tensor; q: Tensor } {
    const p = F.sigmoid(this.delta);
    const q = F.sub(1, F.mul(p, F.sigmoid(this.alpha)));
    return { p, q };
  }

  /** `q^l = exp(l·ln q)` for `l = 0..length−1` (the reference's evaluation): `D' × N × length`. */
  private vander(q: Tensor, length: number): Tensor {
    const l = F.reshape(arange(0, length, 1, this.dtype), [1, 1, length]);
    return F.exp(F.mul(l, F.log(q)));
  }

  /** `Σ_n w[d, n, l] · gamma[d, n] · scale`: `D' × N × L` → `D' × L`. */
  private project(w: Tensor): Tensor {
    return F.sum(F.mul(w, F.unsqueeze(F.mul(this.gamma, this.scale), -1)), 1);
  }

  /**
   * The kernel of length `length` (no truncation applied here): `D' × length` (§5.3), by the
   * fused op `emaKernel` (one pass, no `D' × N × length` intermediates):
   * `Σ_n (p·beta·gamma·scale)[d, n] · q[d, n]^l`.
   */
  computeKernel(length: number): Tensor {
    const { coef, q } = emaCoeffs(this.delta, this.alpha, this.beta, this.gamma, this.scale); // D' × N each
    return emaKernel(coef, q, length); // D' × K
  }

  /** The full-sequence kernel for a call of length `seqLen`: `K = min(truncation, seqLen)`. */
  kernel(seqLen: number): Tensor {
    return this.computeKernel(this.truncation === null ? seqLen : Math.min(this.truncation, seqLen));
  }

  /**
   * x: `L × B × D`; paddingMask: `B × L` bool (true = padding; zeroes only the EMA input, not the
   * residual); state: when given, the incremental path (§5.7, causal only, untruncated) reading
   * and writing the record `ema_state` / `prev_state` `B × D × N`. Returns `L × B × D`.
   */
  forward(x: Tensor, paddingMask?: Tensor | null, state?: IncrementalState | null): Tensor {
    if (x.ndim !== 3 || x.shape[2] !== this.embedDim) {
      throw new ShapeError(`MultiHeadEMA: expected input L × B × ${this.embedDim}, got [${x.shape}]`);
    }
    const [L, B] = x.shape;
    if (paddingMask && (paddingMask.ndim !== 2 || paddingMask.shape[0] !== B || paddingMask.shape[1] !== L)) {
      throw new ShapeError(`MultiHeadEMA: padding mask must be B × L = [${B}, ${L}], got [${paddingMask.shape}]`);
    }
    if (state && this.bidirectional) throw new ConfigError('MultiHeadEMA: a bidirectional EMA does not support incremental state');
    const residual = F.mul(x, this.omega); // L × B × D (unmasked input)
    let xt = F.permute(x, [1, 2, 0]); // B × D × L
    if (paddingMask) xt = F.maskedFill(xt, F.reshape(paddingMask, [B, 1, L]), 0);
    let y: Tensor; // B × D × L
    if (state) {
      const rec = state.get(this, EMA_STATE);
      const hPrev = (rec?.prev_state ?? null) as Tensor | null;
      const { out, h } = L === 1 ? this.oneStep(xt, hPrev) : this.step(xt, hPrev);
      state.set(this, EMA_STATE, { ...(rec ?? {}), prev_state: h });
      y = out;
    } else y = this.convolve(xt);
    return F.silu(F.add(F.permute(y, [2, 0, 1]), residual)); // L × B × D
  }

  /** Full-sequence causal or bidirectional convolution (§5.5): `B × D × L` → `B × D × L`. */
  private convolve(xt: Tensor): Tensor {
    const L = xt.shape[2],
      D = this.embedDim;
    const k = this.kernel(L); // D' × K
    const K = k.shape[1];
    if (!this.bidirectional) return F.fftConv(xt, k, 0, L);
    // one combined kernel kk[m] = k_f[m − (K−1)] (m ≥ K−1) + k_b[K−1−m] (m ≤ K−1): D × (2K−1)
    const kf = F.narrow(k, 0, 0, D),
      kb = F.narrow(k, 0, D, D);
    const kk = F.add(
      F.pad(kf, [
        [0, 0],
        [K - 1, 0],
      ]),
      F.pad(F.flip(kb, -1), [
        [0, 0],
        [0, K - 1],
      ]),
    );
    return F.fftConv(xt, kk, K - 1, L);
  }

  /**
   * One incremental step (§5.7, L = 1): `h = p·beta·x + q·h_prev`, `y = Σ_n h·gamma·scale`.
   * xt `B × D × 1`, hPrev `B × D × N` → out `B × D × 1`, h `B × D × N`.
   */
  private oneStep(xt: Tensor, hPrev: Tensor | null): { out: Tensor; h: Tensor } {
    const { p, q } = this.coeffs();
    let h = F.mul(F.squeeze(F.mul(p, this.beta), -1), xt); // (D × N) ⊙ (B × D × 1) → B × D × N
    if (hPrev) h = F.add(h, F.mul(F.squeeze(q, -1), hPrev));
    const out = F.sum(F.mul(h, F.mul(this.gamma, this.scale)), -1, true); // B × D × 1
    return { out, h };
  }

  /**
   * Several incremental steps at once (§5.7, L > 1), untruncated:
   * `y_t = Σ_{j≤t} k[t−j]·x_j + Σ_n gamma·scale·q^(t+1)·h_prev`,
   * `h = Σ_j p·beta·q^(L−1−j)·x_j + q^L·h_prev`. xt `B × D × L` → out `B × D × L`, h `B × D × N`.
   */
  private step(xt: Tensor, hPrev: Tensor | null): { out: Tensor; h: Tensor } {
    const [B, D, L] = xt.shape;
    const N = this.ndim;
    const { p, q } = this.coeffs();
    const vander = this.vander(q, L + 1); // D × N × (L+1)
    const kernel = F.mul(F.mul(p, this.beta), F.narrow(vander, 2, 0, L)); // D × N × L
    let out = F.fftConv(xt, this.project(kernel), 0, L); // B × D × L
    // (B × D × 1 × L) · (D × L × N) → B × D × 1 × N
    let h = F.reshape(F.matmul(F.unsqueeze(xt, 2), F.transpose(F.flip(kernel, 2), 1, 2)), [B, D, N]);
    if (hPrev) {
      const kh = F.mul(F.narrow(vander, 2, 1, L), F.unsqueeze(F.mul(this.gamma, this.scale), -1)); // D × N × L
      const ox = F.matmul(F.unsqueeze(hPrev, 2), kh); // (B × D × 1 × N) · (D × N × L) → B × D × 1 × L
      out = F.add(out, F.reshape(ox, [B, D, L]));
      h = F.add(h, F.mul(F.squeeze(F.narrow(vander, 2, L, 1), -1), hPrev)); // q^L ⊙ h_prev
    }
    return { out, h };
  }
}

/** A bool `B × L` padding mask from per-row lengths (right padding); a test and data helper. */
export function lengthsToPaddingMask(lengths: readonly number[], L: number): Tensor {
  const m = allocate('bool', lengths.length * L);
  lengths.forEach((n, b) => m.fill(1, b * L + n, (b + 1) * L));
  return fromArray(m, [lengths.length, L]);
}
