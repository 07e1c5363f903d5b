/** Bit-level comparisons the CPU kernel tests share. */
import { expect } from 'vitest';
import { copyCpu } from '../../../../src/tensor/backends/cpu/elementwise.js';
import type { Tensor } from '../../../../src/tensor/tensor.js';

/** Whether `a` and `b` (any layouts, same shape) hold the same bit patterns, −0 and NaN payloads included. */
export function sameBits(a: Tensor, b: Tensor): boolean {
  expect(a.shape).toEqual(b.shape);
  // contiguous copies from element 0 (a view's storage may start elsewhere)
  const x = copyCpu(a).storage,
    y = copyCpu(b).storage;
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength));
}

/** Row-major elements of view `t`, read one by one through its strides. */
export function gathered(t: Tensor): number[] {
  const out: number[] = [];
  const idx = new Array<number>(t.ndim).fill(0);
  for (let k = 0; k < t.size; k++) {
    let p = t.offset;
    for (let a = 0; a < t.ndim; a++) p += idx[a] * t.strides[a];
    out.push(t.storage[p]);
    for (let a = t.ndim - 1; a >= 0; a--) {
      if (++idx[a] < t.shape[a]) break;
      idx[a] = 0;
    }
  }
  return out;
}
