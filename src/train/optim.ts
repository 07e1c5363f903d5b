/**
 * fairseq's `Adam` (`fairseq/optim/adam.py`, docs/MEGA.md §9.4) and `clip_grad_norm_` (`fairseq/utils.py`,
 * docs/MEGA.md §9.3).
 *
 * Adam, per parameter tensor θ with gradient g (parameters whose `.grad` is null are skipped
 * entirely, no decay):
 *
 * ```
 * t ← t + 1
 * m ← β1·m + (1−β1)·g
 * v ← β2·v + (1−β2)·g²
 * denom    = √v + eps                        (eps on the raw, not bias-corrected, √v)
 * stepSize = lr · √(1 − β2^t) / (1 − β1^t)
 * θ ← θ − wd·lr·θ                            (decoupled decay scaled by the current lr)
 * θ ← θ − stepSize · m / denom
 * ```
 *
 * The arithmetic is done in float64 per element and stored in the parameter's own dtype (for f32
 * parameters this is at least as accurate as PyTorch's f32 in-place ops). Parameters are updated
 * in place (their storage is overwritten), so modules keep seeing their own tensors. On the CPU
 * with the WebAssembly kernels the update is one SIMD pass per parameter over moments kept in
 * the wasm memory (backends/cpu/optim-wasm.ts; bitwise the values of the loop in `step`).
 */
import { adamUpdate, binary, reduce, unary } from '../tensor/kernels.js';
import { adamWasm, persistentZeros, persistParameter, scaleClipWasm, type AdamItem } from '../tensor/backends/cpu/optim-wasm.js';
import { scalar, zeros } from '../tensor/create.js';
import type { Storage } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { ConfigError } from './errors.js';

/** Hyper-parameters of fairseq Adam (argparse names in the comments). */
export interface AdamOptions {
  /** `--lr[0]`; set per update from the schedule with `setLr`. */
  lr: number;
  /** `--adam-betas` (default (0.9, 0.999)). */
  betas?: readonly [number, number];
  /** `--adam-eps` (default 1e-8). */
  eps?: number;
  /** `--weight-decay` (default 0). */
  weightDecay?: number;
}

/** Per-parameter optimizer state (torch names). */
export interface AdamParamState {
  step: number;
  exp_avg: Tensor;
  exp_avg_sq: Tensor;
}

/** Serialisable optimizer state, shaped like torch's `Optimizer.state_dict()`. */
export interface AdamStateDict {
  state: Record<number, AdamParamState>;
  param_groups: { lr: number; betas: [number, number]; eps: number; weight_decay: number; amsgrad: false; params: number[] }[];
}

/** Parses fairseq's `--adam-betas` string, e.g. `"(0.9, 0.98)"`. */
export function parseBetas(s: string | readonly number[]): [number, number] {
  const v =
    typeof s === 'string'
      ? s
          .replace(/[()[\]\s]/g, '')
          .split(',')
          .filter((t) => t.length)
          .map(Number)
      : [...s];
  if (v.length !== 2 || !v.every((x) => Number.isFinite(x) && x >= 0 && x < 1)) {
    throw new ConfigError(`--adam-betas = ${JSON.stringify(s)}: expected two numbers in [0, 1), e.g. "(0.9, 0.98)"`);
  }
  return [v[0], v[1]];
}

/** `t`'s values in row-major order: a view of its storage when contiguous (no copy), else a copy. */
function flatValues(t: Tensor): Storage {
  return t.isContiguous() ? (t.storage.subarray(t.offset, t.offset + t.size) as Storage) : t.toTypedArray();
}

/** One fairseq Adam update of one parameter in TypeScript (the reference of the wasm kernel). */
function adamPlain({ p, g: grad, m: mt, v: vt }: AdamItem, b1: number, b2: number, eps: number, decay: number, stepSize: number): void {
  const g = flatValues(grad);
  const m = mt.storage,
    v = vt.storage,
    th = p.storage,
    off = p.offset;
  for (let i = 0; i < g.length; i++) {
    const gi = g[i];
    m[i] = b1 * m[i] + (1 - b1) * gi;
    v[i] = b2 * v[i] + (1 - b2) * gi * gi;
    const denom = Math.sqrt(v[i]) + eps;
    let t = th[off + i];
    if (decay !== 0) t = t - decay * t;
    th[off + i] = t - (stepSize * m[i]) / denom;
  }
}

function checkLeaf(p: Tensor, what: string): void {
  if (!p.isContiguous()) throw new ConfigError(`${what}: parameter of shape [${p.shape}] is not contiguous (optimizers update storage in place)`);
}

/** fairseq `Adam` over one parameter group holding every parameter (no exclusions from decay). */
export class Adam {
  /** The parameters (distinct tensors, in order; the state dict indexes them by position). */
  readonly params: Tensor[];
  lr: number;
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  private readonly state = new Map<Tensor, AdamParamState>();
  /**
   * Zeroed moment storage reserved when the optimizer is made (in the wasm memory when the
   * kernels are on: at the bottom of the resident heap, below the blocks of training steps, which
   * then keep reusing the memory above them); taken by a parameter's state when it is created.
   */
  private readonly reserved = new Map<Tensor, [Tensor, Tensor]>();

  constructor(params: Iterable<Tensor>, opts: AdamOptions) {
    this.params = [...new Set(params)];
    this.params.forEach((p) => checkLeaf(p, 'Adam'));
    this.lr = opts.lr;
    this.betas = opts.betas ? [opts.betas[0], opts.betas[1]] : [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    if (!(this.lr >= 0)) throw new ConfigError(`Adam: lr = ${this.lr}: expected >= 0`);
    if (!(this.eps >= 0)) throw new ConfigError(`Adam: eps = ${this.eps}: expected >= 0`);
    if (!(this.weightDecay >= 0)) throw new ConfigError(`Adam: weight decay = ${this.weightDecay}: expected >= 0`);
    parseBetas(this.betas);
    for (const p of this.params) {
      persistParameter(p);
      const m = p.device ? null : persistentZeros(p);
      const v = m ? persistentZeros(p) : null;
      if (m && v) this.reserved.set(p, [m, v]);
    }
  }

  /** Zeroed moments for `p`: the reserved pair (once), else new arrays. */
  private moments(p: Tensor): [Tensor, Tensor] {
    const r = this.reserved.get(p);
    if (!r) return [zeros(p.shape, p.dtype), zeros(p.shape, p.dtype)];
    this.reserved.delete(p);
    return r;
  }

  /** Sets the learning rate used by the next `step()` (fairseq's `set_lr`). */
  setLr(lr: number): void {
    this.lr = lr;
  }

  /** Sets every gradient to null (fairseq's `zero_grad`). */
  zeroGrad(): void {
    for (const p of this.params) p.grad = null;
  }

  /** The state of parameter `p` (undefined before its first update). */
  getState(p: Tensor): AdamParamState | undefined {
    return this.state.get(p);
  }

  /** One update of every parameter that has a gradient. */
  step(): void {
    const [b1, b2] = this.betas;
    const eps = this.eps,
      decay = this.weightDecay * this.lr;
    /** CPU parameters by their state's step (one step size each: one wasm call) */
    const byStep = new Map<number, AdamItem[]>();
    for (const p of this.params) {
      if (!p.grad) continue;
      let st = this.state.get(p);
      if (!st) {
        const [m, v] = this.moments(p);
        st = { step: 0, exp_avg: m, exp_avg_sq: v };
        this.state.set(p, st);
      }
      st.step += 1;
      if (p.device) {
        this.deviceStep(p, st);
        continue;
      }
      if (p.grad.size !== p.size) throw new ConfigError(`Adam: gradient of shape [${p.grad.shape}] for parameter [${p.shape}]`);
      const items = byStep.get(st.step) ?? byStep.set(st.step, []).get(st.step)!;
      items.push({ p, g: p.grad, m: st.exp_avg, v: st.exp_avg_sq });
    }
    for (const [step, items] of byStep) {
      const stepSize = (this.lr * Math.sqrt(1 - b2 ** step)) / (1 - b1 ** step);
      const moved = adamWasm(items, { beta1: b1, beta2: b2, eps, decay, stepSize });
      items.forEach((it, i) => {
        const st = this.state.get(it.p)!;
        if (moved) [st.exp_avg, st.exp_avg_sq] = moved[i];
        else adamPlain(it, b1, b2, eps, decay, stepSize);
      });
    }
  }

  /**
   * The update of a device-resident parameter: the backend's `adamUpdate` kernel (f32 arithmetic
   * on the device, nothing read back); the parameter and its moments are rebound to the results.
   */
  private deviceStep(p: Tensor, st: AdamParamState): void {
    const [b1, b2] = this.betas;
    const stepSize = (this.lr * Math.sqrt(1 - b2 ** st.step)) / (1 - b1 ** st.step);
    const [th, m, v] = adamUpdate(p, p.grad!, st.exp_avg, st.exp_avg_sq, { beta1: b1, beta2: b2, eps: this.eps, decay: this.weightDecay * this.lr, stepSize });
    p.rebind(th.data);
    st.exp_avg = m;
    st.exp_avg_sq = v;
  }

  /** torch-style state dict: per parameter index `{step, exp_avg, exp_avg_sq}` plus the group. */
  stateDict(): AdamStateDict {
    const state: Record<number, AdamParamState> = {};
    this.params.forEach((p, i) => {
      const s = this.state.get(p);
      if (s) state[i] = { step: s.step, exp_avg: cloneT(s.exp_avg), exp_avg_sq: cloneT(s.exp_avg_sq) };
    });
    return {
      state,
      param_groups: [
        { lr: this.lr, betas: [...this.betas], eps: this.eps, weight_decay: this.weightDecay, amsgrad: false, params: this.params.map((_, i) => i) },
      ],
    };
  }

  /**
   * Restores a state dict (own or fairseq's `last_optimizer_state`): per-parameter state by index
   * (cast to the parameter dtype) and the group's hyper-parameters.
   * @throws ConfigError on a parameter-count or shape mismatch
   */
  loadStateDict(sd: {
    state: Record<number | string, { step: number; exp_avg: Tensor; exp_avg_sq: Tensor }>;
    param_groups?: { lr?: number; betas?: readonly number[]; eps?: number; weight_decay?: number; params?: number[] }[];
  }): void {
    const g = sd.param_groups?.[0];
    if (g?.params && g.params.length !== this.params.length) {
      throw new ConfigError(`Adam.loadStateDict: the state has ${g.params.length} parameters, the optimizer ${this.params.length}`);
    }
    this.state.clear();
    for (const [k, s] of Object.entries(sd.state)) {
      const i = Number(k);
      const p = this.params[i];
      if (!p) throw new ConfigError(`Adam.loadStateDict: state for parameter ${k}, but there are ${this.params.length}`);
      for (const t of [s.exp_avg, s.exp_avg_sq]) {
        if (t.size !== p.size) throw new ConfigError(`Adam.loadStateDict: parameter ${k} has shape [${p.shape}], its state [${t.shape}]`);
      }
      const [m, v] = this.moments(p);
      m.storage.set(s.exp_avg.toTypedArray());
      v.storage.set(s.exp_avg_sq.toTypedArray());
      this.state.set(p, { step: s.step, exp_avg: m, exp_avg_sq: v });
    }
    if (g) {
      if (g.lr !== undefined) this.lr = g.lr;
      if (g.betas) [this.betas[0], this.betas[1]] = parseBetas(g.betas);
      if (g.eps !== undefined) (this as { eps: number }).eps = g.eps;
      if (g.weight_decay !== undefined) (this as { weightDecay: number }).weightDecay = g.weight_decay;
    }
  }
}

function cloneT(t: Tensor): Tensor {
  const z = zeros(t.shape, t.dtype);
  z.storage.set(t.toTypedArray());
  return z;
}

/**
 * fairseq `clip_grad_norm_`: the global L2 norm of every gradient (parameters without one are
 * ignored), computed in float64; if `maxNorm > 0` every gradient is multiplied by
 * `min(1, maxNorm / (norm + 1e-6))` (gradients are replaced, not mutated, since a gradient tensor
 * may be shared). `maxNorm = 0` only measures. `scale` (e.g. 1 / sample size) first multiplies
 * every gradient (rounded to its dtype; the norm is the scaled gradients'). Returns the norm before
 * clipping. On the CPU with the WebAssembly kernels this is two passes over all gradients at once
 * (backends/cpu/optim-wasm.ts; the same values as the loop here).
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number, scale = 1): number {
  const ps = [...new Set(params)].filter((p) => p.grad);
  if (ps.some((p) => p.grad!.device)) {
    scaleGrads(ps, scale);
    return clipGradNormDevice(ps, maxNorm).item();
  }
  const fused = scaleClipWasm(
    ps.map((p) => p.grad!),
    scale,
    maxNorm,
  );
  if (fused) {
    ps.forEach((p, i) => (p.grad = fused.grads[i] ?? p.grad));
    return fused.norm;
  }
  scaleGrads(ps, scale);
  let ss = 0;
  for (const p of ps) {
    const g = flatValues(p.grad!);
    for (let i = 0; i < g.length; i++) ss += g[i] * g[i];
  }
  const norm = Math.sqrt(ss);
  if (maxNorm > 0) {
    const coef = Math.min(1, maxNorm / (norm + 1e-6));
    for (const p of ps) p.grad = binary(p.grad!, scalar(coef, p.grad!.dtype), 'mul');
  }
  return norm;
}

/** `grad ← grad · scale` (scale rounded to the gradient's dtype) for every parameter; nothing when scale is 1. */
function scaleGrads(ps: readonly Tensor[], scale: number): void {
  if (scale !== 1) for (const p of ps) p.grad = binary(p.grad!, scalar(scale, p.grad!.dtype), 'mul');
}

/**
 * `clipGradNorm` for gradients on a device: the norm and the clip coefficient are computed by
 * kernels (f32) and stay on the device, so clipping reads nothing back. Returns the norm as a
 * 0-d tensor (read it only when it is needed).
 */
export function clipGradNormDevice(params: Iterable<Tensor>, maxNorm: number): Tensor {
  const ps = [...new Set(params)].filter((p) => p.grad);
  if (!ps.length) return scalar(0, 'f32');
  const dtype = ps[0].grad!.dtype;
  let ss: Tensor | null = null;
  for (const p of ps) {
    const g = p.grad!;
    const s = reduce(
      binary(g, g, 'mul'),
      'sum',
      g.shape.map((_, i) => i),
      false,
    );
    ss = ss ? binary(ss, s, 'add') : s;
  }
  const norm = unary(ss!, 'sqrt');
  if (maxNorm > 0) {
    const coef = binary(binary(scalar(maxNorm, dtype), binary(norm, scalar(1e-6, dtype), 'add'), 'div'), scalar(1, dtype), 'min');
    for (const p of ps) p.grad = binary(p.grad!, coef, 'mul');
  }
  return norm;
}
