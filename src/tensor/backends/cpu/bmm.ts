/** CPU kernel `matmul`: `[..., M, K] · [..., K, N]` with broadcast batch axes, on top of `gemm`. */
import { allocate, isFloat, type FloatStorage } from '../../dtype.js';
import { DTypeError, ShapeError } from '../../errors.js';
import { broadcastShapes, sizeOf } from '../../shape.js';
import { fromStorage, Tensor } from '../../tensor.js';
import { copyCpu } from './elementwise.js';
import { gemm } from './matmul.js';

/** One gemm operand: data from index 0, whether the matrix is stored transposed, batch stride. */
interface GemmOperand { data: FloatStorage; trans: boolean; batchStride: number }

/**
 * Views `t` (`[...batch, R, C]`, broadcast to `batch`) as a gemm operand without copying when
 * its matrices are row-major or column-major and its batch axes are either all broadcast or
 * uniformly strided; otherwise copies.
 */
function asOperand(t: Tensor, batch: readonly number[]): GemmOperand {
  const nd = t.ndim, R = t.shape[nd - 2], C = t.shape[nd - 1];
  const rs = t.strides[nd - 2], cs = t.strides[nd - 1];
  const lead = batch.length - (nd - 2);
  const bStrides = batch.map((d, i) => (i < lead || t.shape[i - lead] === 1 ? 0 : t.strides[i - lead]));
  const rowMajor = cs === 1 && (rs === C || R === 1);
  const colMajor = !rowMajor && rs === 1 && (cs === R || C === 1);
  if ((rowMajor || colMajor) && t.offset >= 0) {
    const allBroadcast = bStrides.every((s) => s === 0);
    let uniform = true;
    let expect = R * C;
    for (let i = batch.length - 1; i >= 0; i--) {
      if (batch[i] === 1) continue;
      if (bStrides[i] !== expect) uniform = false;
      expect *= batch[i];
    }
    if (allBroadcast || uniform) {
      const data = t.storage.subarray(t.offset) as FloatStorage;
      return { data, trans: colMajor, batchStride: allBroadcast ? 0 : R * C };
    }
  }
  const full = new Tensor(t.storage, [...batch, R, C], [...bStrides, rs, cs], t.offset);
  return { data: copyCpu(full).storage as FloatStorage, trans: false, batchStride: R * C };
}

/** CPU `matmul`. */
export function matmulCpu(a: Tensor, b: Tensor): Tensor {
  if (a.dtype !== b.dtype || !isFloat(a.dtype)) throw new DTypeError(`matmul: expected two floating tensors of one dtype, got ${a.dtype} and ${b.dtype}`);
  if (a.ndim < 2 || b.ndim < 2) throw new ShapeError(`matmul: operands need at least 2 dimensions, got [${a.shape}] and [${b.shape}]`);
  const M = a.shape[a.ndim - 2], K = a.shape[a.ndim - 1], K2 = b.shape[b.ndim - 2], N = b.shape[b.ndim - 1];
  if (K !== K2) throw new ShapeError(`matmul: inner dimensions differ: [${a.shape}] · [${b.shape}] (${K} vs ${K2})`);
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'matmul');
  const nb = sizeOf(batch);
  const out = allocate(a.dtype, nb * M * N) as FloatStorage;
  if (nb * M * N > 0) {
    if (K === 0) out.fill(0);
    else {
      const A = asOperand(a, batch), B = asOperand(b, batch);
      gemm(A.data, B.data, out, nb, M, N, K, A.trans, B.trans, A.batchStride, B.batchStride);
    }
  }
  return fromStorage(out, [...batch, M, N]);
}
