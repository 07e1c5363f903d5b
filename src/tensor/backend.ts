/**
 * The kernel registry: a kernel is a name; each backend registers an implementation for it
 * (tfjs-core's habit). Ops call kernels through `kernel(name)`, which resolves against the
 * active backend, so a second backend (gpu.js) implements the same names.
 */
import type { DType } from './dtype.js';
import { TensorError } from './errors.js';
import type { Tensor } from './tensor.js';

/** Elementwise unary operations of the `unary` kernel. */
export type UnaryOp =
  | 'neg' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'sigmoid' | 'tanh' | 'erf' | 'abs' | 'relu' | 'sign'
  | 'sin' | 'cos' | 'square' | 'recip' | 'silu' | 'gelu' | 'geluGrad' | 'step' | 'not' | 'isfinite';
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

/** A kernel name. */
export type KernelName = keyof Kernels;

const registry = new Map<string, Kernels[KernelName]>();
let active = 'cpu';

/** Registers `impl` as kernel `name` of `backend`. */
export function registerKernel<K extends KernelName>(name: K, backend: string, impl: Kernels[K]): void {
  registry.set(`${backend}/${name}`, impl);
}

/** The implementation of kernel `name` on the active backend. */
export function kernel<K extends KernelName>(name: K): Kernels[K] {
  const impl = registry.get(`${active}/${name}`);
  if (!impl) throw new TensorError(`kernel '${name}' is not registered for backend '${active}'`);
  return impl as Kernels[K];
}

/** Names of the backends with at least one registered kernel. */
export function registeredBackends(): string[] {
  return [...new Set([...registry.keys()].map((k) => k.split('/')[0]))];
}

/** Selects the backend used by subsequent kernel calls. */
export function setBackend(name: string): void {
  if (!registeredBackends().includes(name)) throw new TensorError(`unknown backend '${name}' (registered: ${registeredBackends().join(', ')})`);
  active = name;
}

/** The active backend's name. */
export function getBackend(): string {
  return active;
}
