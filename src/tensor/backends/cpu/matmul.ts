/** CPU kernel `matmul`: `[..., M, K] · [..., K, N]` with broadcast batch axes, on top of `gemm`. */
import { allocateOut, isResident, residentDispose } from './resident.js';
import { type FloatStorage } from '../../dtype.js';
import { sizeOf } from '../../shape.js';
import { ShapeError } from '../../errors.js';
import { fromStorage, Tensor } from '../../tensor.js';
import type { Triangle } from '../../backend.js';
import { checkTriMatmul, matmulShape } from '../checks.js';
import { binaryCpu, copyCpu } from './elementwise.js';
import { binarySimd } from './simd.js';
import { gemmStrided, TRI, type StridedOperand, type Tri } from './gemm.js';

/** `t`'s strides over `batch` (right-aligned broadcast: size-1 and missing axes get 0). */
function batchStrides(t: Tensor, batch: readonly number[]): number[] {
  const lead = batch.length - (t.ndim - 2);
  return batch.map((d, i) => (i < lead || t.shape[i - lead] === 1 ? 0 : t.strides[i - lead]));
}

/**
 * The one stride of batch axes `[from, end)` (sizes `batch`, strides `bs`) when they nest
 * uniformly with non-negative strides (or are all broadcast), else -1.
 */
function collapseBatch(batch: readonly number[], bs: readonly number[], from: number): number {
  let stride = 0,
    expect = -1;
  for (let i = batch.length - 1; i >= from; i--) {
    if (batch[i] === 1) continue;
    if (bs[i] < 0) return -1;
    if (expect < 0) {
      stride = bs[i];
      expect = stride * batch[i];
    } else if (bs[i] !== expect || stride === 0) return -1;
    else expect *= batch[i];
  }
  return stride;
}

/** Matrix strides of `t` (0 for a size-1 axis), or null when one is negative. */
function matrixStrides(t: Tensor): [number, number] | null {
  const nd = t.ndim;
  const rs = t.shape[nd - 2] === 1 ? 0 : t.strides[nd - 2],
    cs = t.shape[nd - 1] === 1 ? 0 : t.strides[nd - 1];
  return rs >= 0 && cs >= 0 && t.offset >= 0 ? [rs, cs] : null;
}

/**
 * Views `t` (`[...batch, R, C]`, broadcast to `batch`) as a strided gemm operand without copying
 * when its matrix strides are non-negative and its batch axes collapse to one stride (all
 * broadcast, or nested uniformly); otherwise copies the broadcast operand to contiguous.
 */
function asOperand(t: Tensor, batch: readonly number[]): StridedOperand {
  const ms = matrixStrides(t);
  const bStrides = batchStrides(t, batch);
  const bs = ms ? collapseBatch(batch, bStrides, 0) : -1;
  // t.data, not t.storage: the gemm reads a resident operand in wasm code, after any job before it
  // (wasm/runtime.ts), and settles before its own JavaScript reads one (gemm.ts)
  if (ms && bs >= 0) return { data: t.data as FloatStorage, off: t.offset, rs: ms[0], cs: ms[1], bs };
  const nd = t.ndim,
    R = t.shape[nd - 2],
    C = t.shape[nd - 1];
  const full = new Tensor(t.data, [...batch, R, C], [...bStrides, t.strides[nd - 2], t.strides[nd - 1]], t.offset);
  const data = copyCpu(full).storage as FloatStorage;
  return { data, off: 0, rs: C, cs: 1, bs: R * C };
}

/** Smallest product (multiply-adds) per gemm call worth splitting a batch into several calls. */
const MIN_SPLIT_WORK = 1 << 16;

/**
 * A product whose batch axes do not collapse to one stride per operand (e.g. `[B, chunks, C, D]`
 * views of a time-major `[L, B, D]` tensor) but whose operands are already in the wasm memory
 * (resident): one gemm per index of the leading batch axes, each reading the operands in place,
 * instead of copying them to contiguous first. Returns false (nothing done) when that does not
 * apply: operands not resident or not collapsible after a split, or calls too small.
 */
function gemmSplit(a: Tensor, b: Tensor, batch: readonly number[], out: FloatStorage, M: number, N: number, K: number, tri: Tri): boolean {
  const ma = matrixStrides(a),
    mb = matrixStrides(b);
  if (!ma || !mb || !isResident(a.data as FloatStorage) || !isResident(b.data as FloatStorage)) return false;
  const sa = batchStrides(a, batch),
    sb = batchStrides(b, batch);
  if (sa.some((v) => v < 0) || sb.some((v) => v < 0)) return false;
  if (collapseBatch(batch, sa, 0) >= 0 && collapseBatch(batch, sb, 0) >= 0) return false;
  let k = 1;
  while (k < batch.length && (collapseBatch(batch, sa, k) < 0 || collapseBatch(batch, sb, k) < 0)) k++;
  if (k >= batch.length) return false;
  const inner = sizeOf(batch.slice(k)),
    outer = sizeOf(batch.slice(0, k));
  if (inner * M * N * K < MIN_SPLIT_WORK) return false;
  const ia = collapseBatch(batch, sa, k),
    ib = collapseBatch(batch, sb, k);
  const idx = new Array<number>(k).fill(0);
  let oa = a.offset,
    ob = b.offset;
  const mat = M * N;
  for (let o = 0; o < outer; o++) {
    const A: StridedOperand = { data: a.data as FloatStorage, off: oa, rs: ma[0], cs: ma[1], bs: ia };
    const B: StridedOperand = { data: b.data as FloatStorage, off: ob, rs: mb[0], cs: mb[1], bs: ib };
    gemmStrided(A, B, out.subarray(o * inner * mat, (o + 1) * inner * mat), inner, M, N, K, tri, null, true);
    for (let i = k - 1; i >= 0; i--) {
      idx[i]++;
      oa += sa[i];
      ob += sb[i];
      if (idx[i] < batch[i]) break;
      oa -= sa[i] * batch[i];
      ob -= sb[i] * batch[i];
      idx[i] = 0;
    }
  }
  return true;
}

let flops = 0;

/**
 * Diagnostics: floating-point operations (2 per multiply-add; for `triMatmul` the terms its
 * triangle leaves) of every CPU `matmul` since the process started — what the training-step
 * benchmark divides by the SIMD ceiling to bound a step's time from below.
 */
export function matmulStats(): { flops: number } {
  return { flops };
}

/** CPU `matmul`. */
export function matmulCpu(a: Tensor, b: Tensor): Tensor {
  return product(a, b, matmulShape(a, b), TRI.NONE);
}

/**
 * CPU `matmulBias`: a `[M, K]` · b `[K, N]` + bias `[N]` in one gemm that adds the (contiguous,
 * same dtype) bias as it stores C; other operands get the product and then the `add` kernel (the
 * product's block freed at once in a resident scope).
 */
export function matmulBiasCpu(a: Tensor, b: Tensor, bias: Tensor): Tensor {
  const shape = matmulShape(a, b);
  if (bias.ndim !== 1 || bias.shape[0] !== shape.N) throw new ShapeError(`matmulBias: bias of shape [${bias.shape}] for a product with ${shape.N} columns`);
  if (a.ndim === 2 && b.ndim === 2 && bias.dtype === a.dtype && bias.isContiguous()) return product(a, b, shape, TRI.NONE, bias);
  const p = product(a, b, shape, TRI.NONE);
  const y = binarySimd(p, bias, 'add') ?? binaryCpu(p, bias, 'add');
  residentDispose(p);
  return y;
}

/** Multiply-adds of one M × N × K product that its triangle leaves. */
function terms(M: number, N: number, K: number, tri: Tri): number {
  let n = 0;
  if (tri === TRI.NONE) return M * N * K;
  if (tri === TRI.B_LOWER) {
    for (let j = 0; j < N; j++) n += Math.max(K - j, 0);
    return n * M;
  }
  for (let i = 0; i < M; i++) n += tri === TRI.OUT_LOWER ? Math.min(i + 1, N) : tri === TRI.A_LOWER ? Math.min(i + 1, K) : Math.max(K - i, 0);
  return n * (tri === TRI.OUT_LOWER ? K : N);
}

const TRIANGLE: Record<Triangle, Tri> = { lower: TRI.OUT_LOWER, 'a-lower': TRI.A_LOWER, 'a-upper': TRI.A_UPPER, 'b-lower': TRI.B_LOWER };

/** CPU `triMatmul`: the SIMD gemm skips the triangle's terms (the plain-TS path computes them all). */
export function triMatmulCpu(a: Tensor, b: Tensor, tri: Triangle): Tensor {
  return product(a, b, checkTriMatmul(a, b, tri), TRIANGLE[tri]);
}

/**
 * The product of checked operands of sizes `batch, M, K, N` with a triangle (`TRI.NONE`: all of
 * it); `bias` (contiguous, N values, only with `TRI.NONE` and no batch) is added to every row.
 */
function product(a: Tensor, b: Tensor, { batch, M, K, N }: { batch: number[]; M: number; K: number; N: number }, tri: Tri, bias?: Tensor): Tensor {
  const nb = sizeOf(batch);
  flops += 2 * nb * terms(M, N, K, tri);
  const out = allocateOut(a.dtype, nb * M * N, false) as FloatStorage;
  const row = bias ? { data: bias.data as FloatStorage, off: bias.offset } : null;
  if (nb * M * N > 0) {
    // (gemmStrided fills a K = 0 product with zeros, or with the bias rows)
    if (K === 0 && !row) out.fill(0);
    else if (row || !gemmSplit(a, b, batch, out, M, N, K, tri)) gemmStrided(asOperand(a, batch), asOperand(b, batch), out, nb, M, N, K, tri, row, true);
  }
  return fromStorage(out, [...batch, M, N]);
}
