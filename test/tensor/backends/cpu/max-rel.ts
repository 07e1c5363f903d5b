/** The relative error measure the fused-kernel tests compare with. */
import { expect } from 'vitest';
import * as K from '../../../../src/tensor/kernels.js';
import type { Tensor } from '../../../../src/tensor/tensor.js';

/** max |a − b| / max |b| (b the reference; the absolute error when b is all zero), shapes equal. */
export function maxRel(a: Tensor, b: Tensor): number {
  expect(a.shape).toEqual(b.shape);
  // contiguous copies from element 0 (a view's storage may start elsewhere)
  const x = K.copy(K.cast(a, 'f64')).storage,
    y = K.copy(K.cast(b, 'f64')).storage;
  let err = 0,
    mx = 0;
  for (let i = 0; i < y.length; i++) {
    err = Math.max(err, Math.abs(x[i] - y[i]));
    mx = Math.max(mx, Math.abs(y[i]));
  }
  return mx === 0 ? err : err / mx;
}
