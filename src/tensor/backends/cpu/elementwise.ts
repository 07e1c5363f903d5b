/** CPU kernels: unary, binary, where, cast, copy (all through generated strided loops). */
import { allocateOut } from './resident.js';
import type { BinaryOp, UnaryOp } from '../../backend.js';
import { isFloat, type DType, type Storage } from '../../dtype.js';
import { DTypeError } from '../../errors.js';
import { broadcastShapes, contiguousStrides, sizeOf } from '../../shape.js';
import { fromStorage, Tensor } from '../../tensor.js';
import { elementwiseLoop, type Operand } from './codegen.js';
import { copyStrided } from './copy-fast.js';
import { copySimd } from './copy-simd.js';

const UNARY: Record<UnaryOp, string> = {
  neg: '-v0',
  exp: 'Math.exp(v0)',
  log: 'Math.log(v0)',
  sqrt: 'Math.sqrt(v0)',
  rsqrt: '1 / Math.sqrt(v0)',
  sigmoid: '1 / (1 + Math.exp(-v0))',
  tanh: 'Math.tanh(v0)',
  erf: 'erf(v0)',
  abs: 'Math.abs(v0)',
  relu: '(v0 > 0 ? v0 : (v0 !== v0 ? v0 : 0))',
  sign: 'Math.sign(v0)',
  sin: 'Math.sin(v0)',
  cos: 'Math.cos(v0)',
  square: 'v0 * v0',
  recip: '1 / v0',
  silu: 'v0 / (1 + Math.exp(-v0))',
  gelu: '0.5 * v0 * (1 + erf(v0 * 0.7071067811865476))',
  geluGrad: '0.5 * (1 + erf(v0 * 0.7071067811865476)) + v0 * Math.exp(-0.5 * v0 * v0) * 0.3989422804014327',
  step: '(v0 > 0 ? 1 : 0)',
  not: '(v0 ? 0 : 1)',
  isfinite: '(Number.isFinite(v0) ? 1 : 0)',
};

const BINARY: Record<BinaryOp, string> = {
  add: 'v0 + v1',
  sub: 'v0 - v1',
  mul: 'v0 * v1',
  div: 'v0 / v1',
  pow: 'Math.pow(v0, v1)',
  max: '(v0 >= v1 || v0 !== v0 ? v0 : v1)',
  min: '(v0 <= v1 || v0 !== v0 ? v0 : v1)',
  eq: '(v0 === v1 ? 1 : 0)',
  ne: '(v0 !== v1 ? 1 : 0)',
  lt: '(v0 < v1 ? 1 : 0)',
  le: '(v0 <= v1 ? 1 : 0)',
  gt: '(v0 > v1 ? 1 : 0)',
  ge: '(v0 >= v1 ? 1 : 0)',
  and: '(v0 && v1 ? 1 : 0)',
  or: '(v0 || v1 ? 1 : 0)',
};

const BOOL_RESULT = new Set<string>(['eq', 'ne', 'lt', 'le', 'gt', 'ge', 'and', 'or', 'not', 'isfinite']);

/** `t`'s strides over `shape` (right-aligned broadcasting; size-1 axes get stride 0). */
export function broadcastStrides(t: Tensor, shape: readonly number[]): number[] {
  const lead = shape.length - t.ndim;
  return shape.map((d, i) => (i < lead ? 0 : t.shape[i - lead] === 1 && d !== 1 ? 0 : t.strides[i - lead]));
}

/** `t` addressed over `shape` (right-aligned broadcasting; size-1 axes get stride 0). */
export function operand(t: Tensor, shape: readonly number[]): Operand {
  const lead = shape.length - t.ndim;
  const strides = broadcastStrides(t, shape);
  const cs = contiguousStrides(shape);
  const contig = lead === 0 && strides.every((s, i) => s === cs[i] || shape[i] === 1);
  return { data: t.storage, offset: t.offset, strides, contig };
}

/** Runs a generated loop over `inputs` broadcast to `shape`, producing a new `outDtype` tensor. */
export function runLoop(name: string, expr: string, inputs: Tensor[], shape: readonly number[], outDtype: DType): Tensor {
  const out = allocateOut(outDtype, sizeOf(shape), false);
  const key = `${name}|${inputs.map((t) => t.dtype).join(',')}|${outDtype}`;
  elementwiseLoop(key, inputs.length, expr)(
    out,
    shape,
    inputs.map((t) => operand(t, shape)),
  );
  return fromStorage(out, shape);
}

/** CPU `unary`. */
export function unaryCpu(x: Tensor, op: UnaryOp): Tensor {
  if (!BOOL_RESULT.has(op) && !isFloat(x.dtype) && op !== 'neg' && op !== 'abs' && op !== 'sign' && op !== 'square') {
    throw new DTypeError(`${op}: expected a floating tensor, got ${x.dtype}`);
  }
  // f32 erf in float32 arithmetic (special.ts erf32: what the SIMD laplace computes); f64 erf in float64
  const expr = op === 'erf' && x.dtype === 'f32' ? 'erf32(v0)' : UNARY[op];
  return runLoop(`u:${op}`, expr, [x], x.shape, BOOL_RESULT.has(op) ? 'bool' : x.dtype);
}

/** CPU `binary`. */
export function binaryCpu(a: Tensor, b: Tensor, op: BinaryOp): Tensor {
  if (a.dtype !== b.dtype) throw new DTypeError(`${op}: operands have different dtypes (${a.dtype} and ${b.dtype}); cast one first`);
  const shape = broadcastShapes(a.shape, b.shape, op);
  return runLoop(`b:${op}`, BINARY[op], [a, b], shape, BOOL_RESULT.has(op) ? 'bool' : a.dtype);
}

/** CPU `where`. */
export function whereCpu(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  if (a.dtype !== b.dtype) throw new DTypeError(`where: branches have different dtypes (${a.dtype} and ${b.dtype})`);
  const shape = broadcastShapes(broadcastShapes(cond.shape, a.shape, 'where'), b.shape, 'where');
  return runLoop('where', '(v0 ? v1 : v2)', [cond, a, b], shape, a.dtype);
}

/** CPU `cast` (float → int truncates toward zero; anything → bool is `!= 0`). */
export function castCpu(x: Tensor, dtype: DType): Tensor {
  const expr = dtype === 'bool' ? '(v0 ? 1 : 0)' : dtype === 'i32' ? 'Math.trunc(v0)' : 'v0';
  return runLoop(`cast`, expr, [x], x.shape, dtype);
}

/**
 * CPU `copy`: the wasm copy kernels for a resident view inside a resident scope (copy-simd.ts),
 * else the strided loops of copy-fast.ts (the generic loop for empty tensors). The same bits either way.
 */
export function copyCpu(x: Tensor): Tensor {
  return copySimd(x) ?? copyStrided(x) ?? runLoop('copy', 'v0', [x], x.shape, x.dtype);
}

/** The elements of `t` in row-major order: a view of its storage when contiguous, else of a copy. */
export function dense(t: Tensor): Storage {
  const c = t.isContiguous() ? t : copyCpu(t);
  return c.offset === 0 && c.storage.length === c.size ? c.storage : c.storage.subarray(c.offset, c.offset + c.size);
}
