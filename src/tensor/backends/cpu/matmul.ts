/** CPU kernel `matmul`: `[..., M, K] · [..., K, N]` with broadcast batch axes, on top of `gemm`. */
import { allocateOut } from './resident.js';
import { type FloatStorage } from '../../dtype.js';
import { sizeOf } from '../../shape.js';
import { fromStorage, Tensor } from '../../tensor.js';
import { matmulShape } from '../checks.js';
import { copyCpu } from './elementwise.js';
import { gemmStrided, type StridedOperand } from './gemm.js';

/**
 * Views `t` (`[...batch, R, C]`, broadcast to `batch`) as a strided gemm operand without copying
 * when its matrix strides are non-negative and its batch axes collapse to one stride (all
 * broadcast, or nested uniformly); otherwise copies the broadcast operand to contiguous.
 */
function asOperand(t: Tensor, batch: readonly number[]): StridedOperand {
  const nd = t.ndim,
    R = t.shape[nd - 2],
    C = t.shape[nd - 1];
  let rs = t.strides[nd - 2],
    cs = t.strides[nd - 1];
  if (R === 1) rs = 0;
  if (C === 1) cs = 0;
  const lead = batch.length - (nd - 2);
  const bStrides = batch.map((d, i) => (i < lead || t.shape[i - lead] === 1 ? 0 : t.strides[i - lead]));
  if (rs >= 0 && cs >= 0 && t.offset >= 0) {
    // collapse the batch axes: the innermost non-trivial one sets the stride, outer ones must nest
    let bs = -1;
    let ok = true;
    let expect = -1;
    for (let i = batch.length - 1; i >= 0; i--) {
      if (batch[i] === 1) continue;
      if (bs < 0) {
        bs = bStrides[i];
        expect = bs * batch[i];
      } else if (bStrides[i] !== expect || bs === 0) {
        ok = false;
      } else expect *= batch[i];
    }
    if (ok) return { data: t.storage as FloatStorage, off: t.offset, rs, cs, bs: Math.max(bs, 0) };
  }
  const full = new Tensor(t.storage, [...batch, R, C], [...bStrides, t.strides[nd - 2], t.strides[nd - 1]], t.offset);
  const data = copyCpu(full).storage as FloatStorage;
  return { data, off: 0, rs: C, cs: 1, bs: R * C };
}

/** CPU `matmul`. */
export function matmulCpu(a: Tensor, b: Tensor): Tensor {
  const { batch, M, K, N } = matmulShape(a, b);
  const nb = sizeOf(batch);
  const out = allocateOut(a.dtype, nb * M * N, false) as FloatStorage;
  if (nb * M * N > 0) {
    if (K === 0) out.fill(0);
    else gemmStrided(asOperand(a, batch), asOperand(b, batch), out, nb, M, N, K);
  }
  return fromStorage(out, [...batch, M, N]);
}
