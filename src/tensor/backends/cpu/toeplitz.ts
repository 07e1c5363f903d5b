/**
 * CPU `toeplitz` / `toeplitzGrad` (the simple relative-position bias, see `FusedKernels`): row i
 * of the `[n, n]` matrix is the slice `w[M − 1 − i, M − 1 − i + n)`, so the forward copies n
 * slices and the backward adds row i of the gradient into that slice, rows in increasing i — for
 * every entry of w the `indexAdd` of the Toeplitz index sums the same terms in the same order, in
 * the same dtype, so the results are bitwise the ones of the generic kernels.
 */
import type { FloatStorage } from '../../dtype.js';
import { fromStorage, type Tensor } from '../../tensor.js';
import { checkToeplitz, checkToeplitzGrad } from '../checks.js';
import { dense } from './elementwise.js';
import { allocateOut } from './resident.js';

/** `[n, n]`, `out[i, j] = w[M − 1 + j − i]`. */
export function toeplitzCpu(w: Tensor, n: number): Tensor {
  const M = checkToeplitz(w, n);
  const src = dense(w) as FloatStorage; // [2M − 1]
  const out = allocateOut(w.dtype, n * n, false) as FloatStorage;
  for (let i = 0; i < n; i++) out.set(src.subarray(M - 1 - i, M - 1 - i + n), i * n);
  return fromStorage(out, [n, n]);
}

/** `[2M − 1]` diagonal sums of `g` `[n, n]`: `out[M − 1 + j − i] += g[i, j]`, i increasing. */
export function toeplitzGradCpu(g: Tensor, length: number): Tensor {
  const M = checkToeplitzGrad(g, length);
  const n = g.shape[0];
  const src = dense(g) as FloatStorage; // [n·n]
  const out = allocateOut(g.dtype, length) as FloatStorage; // zeros
  for (let i = 0; i < n; i++) {
    const o = M - 1 - i,
      r = i * n;
    for (let j = 0; j < n; j++) out[o + j] += src[r + j];
  }
  return fromStorage(out, [length]);
}
