/**
 * The kernel registry: a kernel is a name; each backend registers an implementation for it
 * (tfjs-core's habit). Ops call kernels through `kernel(name)`, which resolves against the
 * active backend, so a second backend (gpu.js) implements the same names.
 *
 * docs/KERNELS.md is the table of every kernel: its file on each backend (cpu, wasm SIMD, gpujs;
 * named after the kernel family, the same everywhere) and the autograd file holding its gradient.
 */
import type { DType } from './dtype.js';
import { TensorError } from './errors.js';
import type { Tensor } from './tensor.js';

/** Elementwise unary operations of the `unary` kernel. */
export type UnaryOp =
  | 'neg'
  | 'exp'
  | 'log'
  | 'sqrt'
  | 'rsqrt'
  | 'sigmoid'
  | 'tanh'
  | 'erf'
  | 'abs'
  | 'relu'
  | 'sign'
  | 'sin'
  | 'cos'
  | 'square'
  | 'recip'
  | 'silu'
  | 'gelu'
  | 'geluGrad'
  | 'step'
  | 'not'
  | 'isfinite';
/** Elementwise binary operations of the `binary` kernel (comparisons return bool). */
export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'max' | 'min' | 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge' | 'and' | 'or';
/** Reductions of the `reduce` kernel. */
export type ReduceOp = 'sum' | 'max' | 'min';

/** The primitive kernels every backend implements (about 20 names; everything else is composed). */
export interface Kernels {
  /** Elementwise `op(x)`; same shape and dtype (bool for `not`/`isfinite`). */
  unary(x: Tensor, op: UnaryOp): Tensor;
  /** Elementwise `op(a, b)` with NumPy broadcasting; operands share a dtype. */
  binary(a: Tensor, b: Tensor, op: BinaryOp): Tensor;
  /** `cond ? a : b` with broadcasting of all three. */
  where(cond: Tensor, a: Tensor, b: Tensor): Tensor;
  /** Reduction over `axes` (sorted, normalised); keeps reduced axes as size 1 when `keepdims`. */
  reduce(x: Tensor, op: ReduceOp, axes: number[], keepdims: boolean): Tensor;
  /** Index of the maximum along `axis` (i32, axis removed). */
  argmax(x: Tensor, axis: number): Tensor;
  /** Softmax (or log-softmax) along the last axis, max-shifted. */
  softmax(x: Tensor, log: boolean): Tensor;
  /** Batched matrix product `[..., M, K] · [..., K, N]` with broadcast batch axes. */
  matmul(a: Tensor, b: Tensor): Tensor;
  /** Rows of `x` along `axis` picked by the 1-D i32 `index`. */
  indexSelect(x: Tensor, axis: number, index: Tensor): Tensor;
  /** Zeros of `shape` with `src` slices added at `index` along `axis` (inverse of indexSelect). */
  indexAdd(shape: readonly number[], axis: number, index: Tensor, src: Tensor): Tensor;
  /** torch.gather: `out[..i..] = x[..index[..i..] on axis..]`. */
  gather(x: Tensor, axis: number, index: Tensor): Tensor;
  /** Zeros of `shape` with `src` scattered-added at `index` along `axis` (inverse of gather). */
  scatterAdd(shape: readonly number[], axis: number, index: Tensor, src: Tensor): Tensor;
  /** Concatenation along `axis`. */
  concat(xs: readonly Tensor[], axis: number): Tensor;
  /** Constant padding: `pads[i] = [before, after]` for axis i (negative values crop). */
  pad(x: Tensor, pads: readonly (readonly [number, number])[], value: number): Tensor;
  /** Conversion to another dtype. */
  cast(x: Tensor, dtype: DType): Tensor;
  /** A contiguous copy. */
  copy(x: Tensor): Tensor;
  /**
   * Linear convolution along the last axis, output window `[start, start+length)`:
   * `y[..., r, t] = Σ_j k[..., r, j] · x[..., r, start + t − j]` (x is zero outside its range);
   * leading axes of x and k broadcast.
   */
  fftConv(x: Tensor, k: Tensor, start: number, length: number): Tensor;
}

/**
 * Fused kernels: one pass where the composition of primitives makes several (each is tested
 * equal to its unfused composition). Optional for a backend: without its own implementation it
 * gets the generic one registered under {@link ANY_BACKEND}.
 */
export interface FusedKernels {
  /**
   * The EMA kernel build of MultiHeadEMA (docs/MEGA.md §5.3) in one pass:
   * `k[d, l] = Σ_n coef[d, n] · exp(l · ln q[d, n])` for `l < length`; coef, q `[D, N]` → `[D, length]`.
   */
  emaKernel(coef: Tensor, q: Tensor, length: number): Tensor;
  /**
   * Vector-Jacobian product of `emaKernel` for the output gradient `g` `[D, L]`:
   * `[2, D, N]` = (`Σ_l g·q^l`, `coef · Σ_l g · l · q^(l−1)`).
   */
  emaKernelGrad(coef: Tensor, q: Tensor, g: Tensor): Tensor;
  /**
   * MultiHeadEMA's kernel coefficients (docs/MEGA.md §5.2–5.3) from its parameters `delta`,
   * `alpha`, `beta` `[D, N, 1]` and `gamma` `[D, N]`: `[2, D, N]` = (coef, q) with `p = σ(delta)`,
   * `q = 1 − p·σ(alpha)`, `coef = ((p·beta)·gamma)·scale`, each step rounded to the dtype as the
   * composition of primitive kernels does it.
   */
  emaCoeffs(delta: Tensor, alpha: Tensor, beta: Tensor, gamma: Tensor, scale: number): Tensor;
  /**
   * VJP of `emaCoeffs` for the gradients `gcoef`, `gq` `[D, N]` (any layout): `[dδ, dα, dβ, dγ]`
   * (shapes of the parameters) with `dδ = (gcoef·β·γ·scale − gq·a)·p(1 − p)`,
   * `dα = −gq·p·a(1 − a)`, `dβ = gcoef·p·γ·scale`, `dγ = gcoef·p·β·scale`, `a = σ(alpha)`.
   */
  emaCoeffsGrad(delta: Tensor, alpha: Tensor, beta: Tensor, gamma: Tensor, scale: number, gcoef: Tensor, gq: Tensor): [Tensor, Tensor, Tensor, Tensor];
  /**
   * Softmax backward along the last axis from the forward output `y`: `y ⊙ (g − Σ y·g)`, or for
   * log-softmax `g − e^y · Σ g`.
   */
  softmaxGrad(y: Tensor, g: Tensor, log: boolean): Tensor;
  /**
   * One fairseq Adam update of a contiguous parameter θ with gradient g and moments m, v (see
   * train/optim.ts): returns new tensors `[θ', m', v']` with `m' = β1·m + (1−β1)·g`,
   * `v' = β2·v + (1−β2)·g²`, `θ' = (θ − decay·θ) − stepSize · m' / (√v' + eps)`.
   * Optimizers use it for device-resident parameters (host ones are updated in place). It
   * consumes θ, m, v: a device backend frees their buffers and keeps the results past scopes.
   */
  adamUpdate(param: Tensor, grad: Tensor, expAvg: Tensor, expAvgSq: Tensor, h: AdamHyper): [Tensor, Tensor, Tensor];
  /**
   * Mega's laplace attention function elementwise: `0.5·(1 + erf(z))`, `z = (x − mu)/den`
   * (den = σ·√2; docs/MEGA.md, element attention). Any layout in, contiguous out.
   */
  laplace(x: Tensor, mu: number, den: number): Tensor;
  /** Vector-Jacobian product of `laplace` for the output gradient `g` (shape of x): `g · exp(−z²)/(√π·den)`. */
  laplaceGrad(x: Tensor, g: Tensor, mu: number, den: number): Tensor;
  /**
   * Training-mode batch normalisation of the rows of `x` `[N, D]` (per-channel statistics over N):
   * `[y, stats]` with stats `[2, D]` = (mean, biased variance) and
   * `y = (x − mean) · rsqrt(var + eps)`, then `· weight + bias` when given (`[D]` each). Values
   * as the composition `mean(x, 0)`, `mean(square(x − mean), 0)`, … computes them.
   */
  batchNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number): [Tensor, Tensor];
  /**
   * Vector-Jacobian product of `batchNorm` for the output gradient `g` `[N, D]`, from `stats`:
   * `[dx, dwb]`, `dx = r · (ĝ − mean(ĝ) − x̂ · mean(ĝ · x̂))` with `r = rsqrt(var + eps)`,
   * `x̂ = (x − mean) · r`, `ĝ = g · weight` (g when weight is null), means over N; dwb `[2, D]` =
   * (Σ g · x̂, Σ g), the gradients of weight and bias.
   */
  batchNormGrad(x: Tensor, g: Tensor, stats: Tensor, weight: Tensor | null, eps: number): [Tensor, Tensor];
  /**
   * Layer normalisation of the rows of `x` `[R, D]` (statistics over D): `[y, stats]` with stats
   * `[R, 2]` = (mean, r), `r = rsqrt(var + eps)` (biased variance), and `y = (x − mean) · r`,
   * then `· weight` and `+ bias` when given (`[D]` each). Without `center` the mean is 0 (RMS
   * normalisation: `x · rsqrt(mean(x²) + eps)`). Values as the composition `mean(x, -1)`,
   * `x − mean`, `square`, `mean`, `+ eps`, `rsqrt`, … computes them.
   */
  layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number, center: boolean): [Tensor, Tensor];
  /**
   * Vector-Jacobian product of `layerNorm` for the output gradient `g` `[R, D]`, from `stats`:
   * `[dx, dw, db]`, `dx = r · (ĝ − mean(ĝ) − x̂ · mean(ĝ · x̂))` (no `mean(ĝ)` term without
   * `center`) with `x̂ = (x − mean) · r`, `ĝ = g · weight` (g when weight is null), means over D;
   * `dw = Σ g · x̂` over the rows when `weight` is given, `db = Σ g` when `bias` (else null).
   */
  layerNormGrad(x: Tensor, g: Tensor, stats: Tensor, weight: Tensor | null, bias: boolean, center: boolean): [Tensor, Tensor | null, Tensor | null];
  /**
   * Mega's shared query/key projection (docs/MEGA.md §6.2 steps 7–8) from the pre-activation
   * `z` `[..., Z]` (any layout) and `gamma`, `beta` `[2, Z]`: `s = silu(z)`, output
   * `[..., 2Z]` = `[s ⊙ gamma[0] + beta[0] | s ⊙ gamma[1] + beta[1]]` (q then k), contiguous.
   */
  gateQK(z: Tensor, gamma: Tensor, beta: Tensor): Tensor;
  /**
   * VJP of `gateQK` for the gradients `gq`, `gk` of its two halves (shape of z, any layout):
   * `[dz, dgamma, dbeta]` with `dz = (gq ⊙ gamma[0] + gk ⊙ gamma[1]) ⊙ silu'(z)`,
   * `dgamma = [Σ gq ⊙ s, Σ gk ⊙ s]`, `dbeta = [Σ gq, Σ gk]` (sums over every leading axis, `[2, Z]`).
   */
  gateQKGrad(z: Tensor, gamma: Tensor, gq: Tensor, gk: Tensor): [Tensor, Tensor, Tensor];
  /** silu backward in one pass: `g ⊙ silu'(x)`, `silu'(x) = σ(x)·(1 + x·(1 − σ(x)))`; same shapes, any layout in, contiguous out. */
  siluGrad(x: Tensor, g: Tensor): Tensor;
  /** `h ⊙ silu(r)` (Mega's reset gate, docs/MEGA.md §6.2 steps 7 and 15), same shapes, any layout in, contiguous out. */
  siluMul(h: Tensor, r: Tensor): Tensor;
  /** VJP of `siluMul`: `[g ⊙ silu(r), g ⊙ h ⊙ silu'(r)]`. */
  siluMulGrad(h: Tensor, r: Tensor, g: Tensor): [Tensor, Tensor];
  /**
   * Mega's gated output (docs/MEGA.md §6.2 steps 6, 15–17): `x + σ(u) ⊙ (act(hx + y) ⊙ mask − x)`,
   * x, u, hx, y of one shape (any layout), `mask` (the scaled dropout mask) broadcastable to it or
   * null; contiguous out.
   */
  gateOut(x: Tensor, u: Tensor, hx: Tensor, y: Tensor, mask: Tensor | null, act: GateActivation): Tensor;
  /**
   * VJP of `gateOut`: `[dx, du, da]` with `dx = g ⊙ (1 − σ(u))`,
   * `du = g ⊙ (act(a) ⊙ mask − x) ⊙ σ(u)(1 − σ(u))` and `da = g ⊙ σ(u) ⊙ mask ⊙ act'(a)` for
   * `a = hx + y` (the gradient of both hx and y).
   */
  gateOutGrad(x: Tensor, u: Tensor, hx: Tensor, y: Tensor, mask: Tensor | null, act: GateActivation, g: Tensor): [Tensor, Tensor, Tensor];
  /**
   * The Toeplitz matrix of Mega's simple relative-position bias (docs/MEGA.md §4.1): from `w`
   * `[2M − 1]` (floating, contiguous or not) and `n ≤ M`, `[n, n]` with `out[i, j] = w[M − 1 + j − i]`.
   * Equals `indexSelect(w, 0, idx)` with that index, reshaped.
   */
  toeplitz(w: Tensor, n: number): Tensor;
  /**
   * VJP of `toeplitz` for the output gradient `g` `[n, n]`: `[length]` (= `2M − 1`) with
   * `out[M − 1 + d] = Σ_{j − i = d} g[i, j]`, each sum taken in increasing `i` in g's dtype — the
   * `indexAdd` of the same index, bit for bit.
   */
  toeplitzGrad(g: Tensor, length: number): Tensor;
  /**
   * `matmul` with the triangle of square-chunk causal attention, per matrix (rows i, columns j,
   * sum index k): `'lower'` gives tril(a·b) (0 where j > i); `'a-lower'`, `'a-upper'` and
   * `'b-lower'` give a·b for operands the caller guarantees zero where k > i in a, k < i in a,
   * k < j in b — a backend may skip those terms (the CPU SIMD gemm does), so the guarantee must hold.
   */
  triMatmul(a: Tensor, b: Tensor, tri: Triangle): Tensor;
  /**
   * `a·b + bias` for a `[M, K]`, b `[K, N]`, bias `[N]` added to every row: the values of
   * `binary(matmul(a, b), bias, 'add')` (each element the stored product plus the bias, rounded
   * once), without the product as a tensor of its own (the CPU gemm adds the bias as it stores C).
   */
  matmulBias(a: Tensor, b: Tensor, bias: Tensor): Tensor;
}

/** The triangles of {@link FusedKernels.triMatmul}. */
export type Triangle = 'lower' | 'a-lower' | 'a-upper' | 'b-lower';

/** Activations `gateOut` applies itself (the Mega layers use silu unless configured otherwise). */
export type GateActivation = 'silu' | 'relu' | 'linear';

/** Scalars of one {@link FusedKernels.adamUpdate}. */
export interface AdamHyper {
  beta1: number;
  beta2: number;
  eps: number;
  decay: number;
  stepSize: number;
}

/** Every kernel, primitive and fused. */
export type AllKernels = Kernels & FusedKernels;

/** A primitive kernel name. */
export type KernelName = keyof Kernels;
/** Any kernel name, primitive or fused. */
export type AnyKernelName = keyof AllKernels;

const registry = new Map<string, AllKernels[AnyKernelName]>();
/** Pseudo-backend of generic implementations, used when the active backend lacks a kernel. */
export const ANY_BACKEND = '*';
const starters = new Map<string, () => void>();
let active = 'cpu';
/** Kernels of the active backend resolved so far, by name (cleared on any registration or switch). */
const resolved = new Map<string, AllKernels[AnyKernelName]>();

/**
 * Registers a start-up hook of `backend` (e.g. opening its device), run by `setBackend(backend)`
 * before the switch; if it throws, the active backend stays as it was.
 */
export function registerBackendStart(backend: string, start: () => void): void {
  starters.set(backend, start);
}

/**
 * Registers `impl` as kernel `name` of `backend`, once: a second registration of the same name on
 * the same backend is refused (two files claiming one kernel is a bug, and the later one would
 * silently win).
 * @throws TensorError when `name` is already registered for `backend`
 */
export function registerKernel<K extends AnyKernelName>(name: K, backend: string, impl: AllKernels[K]): void {
  const key = `${backend}/${name}`;
  if (registry.has(key)) throw new TensorError(`kernel '${name}' is already registered for backend '${backend}'`);
  registry.set(key, impl);
  resolved.clear();
}

/** The implementation of kernel `name` on the active backend. */
export function kernel<K extends AnyKernelName>(name: K): AllKernels[K] {
  const hit = resolved.get(name); // no key string built per call
  if (hit) return hit as AllKernels[K];
  const impl = registry.get(`${active}/${name}`) ?? registry.get(`${ANY_BACKEND}/${name}`);
  if (!impl) throw new TensorError(`kernel '${name}' is not registered for backend '${active}'`);
  resolved.set(name, impl);
  return impl as AllKernels[K];
}

/** Names of the backends with at least one registered kernel. */
export function registeredBackends(): string[] {
  return [...new Set([...registry.keys()].map((k) => k.split('/')[0]))].filter((b) => b !== ANY_BACKEND);
}

/** Selects the backend used by subsequent kernel calls. */
export function setBackend(name: string): void {
  if (!registeredBackends().includes(name)) throw new TensorError(`unknown backend '${name}' (registered: ${registeredBackends().join(', ')})`);
  starters.get(name)?.();
  active = name;
  resolved.clear();
}

/** The active backend's name. */
export function getBackend(): string {
  return active;
}
