/** RawTensor (io floor) ⇄ Tensor conversions for the golden runner. */
import type { RawTensor } from '../io/raw.js';
import { cast } from '../tensor/kernels.js';
import type { FloatDType } from '../tensor/dtype.js';
import { fromStorage, type Tensor } from '../tensor/tensor.js';

/** A tensor over the raw data; floating data is cast to `dtype` (a fresh copy). */
export function toTensor(r: RawTensor, dtype: FloatDType): Tensor {
  const t = fromStorage(r.data, r.shape);
  return r.dtype === 'f32' || r.dtype === 'f64' ? (r.dtype === dtype ? fromStorage(r.data.slice(), r.shape) : cast(t, dtype)) : t;
}

/** Whether a raw tensor is floating. */
export function isFloatRaw(r: RawTensor): boolean {
  return r.dtype === 'f32' || r.dtype === 'f64';
}
