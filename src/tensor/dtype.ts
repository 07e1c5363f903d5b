/**
 * Element types. `f32`/`f64` hold values; `i32` holds token ids and indices (the golden files'
 * int64 ids are range-checked into it); `bool` holds masks as bytes 0/1.
 */
export type DType = 'f32' | 'f64' | 'i32' | 'bool';
/** The floating element types (the only ones autograd differentiates). */
export type FloatDType = 'f32' | 'f64';
/** Typed-array storage of one tensor. */
export type Storage = Float32Array | Float64Array | Int32Array | Uint8Array;
/** Floating storage. */
export type FloatStorage = Float32Array | Float64Array;

/** Allocates zeroed storage of `n` elements. */
export function allocate(dtype: DType, n: number): Storage {
  switch (dtype) {
    case 'f32':
      return new Float32Array(n);
    case 'f64':
      return new Float64Array(n);
    case 'i32':
      return new Int32Array(n);
    case 'bool':
      return new Uint8Array(n);
  }
}

/** Whether `dtype` is floating. */
export function isFloat(dtype: DType): dtype is FloatDType {
  return dtype === 'f32' || dtype === 'f64';
}

/** The dtype of a storage array. */
export function dtypeOf(s: Storage): DType {
  if (s instanceof Float32Array) return 'f32';
  if (s instanceof Float64Array) return 'f64';
  if (s instanceof Int32Array) return 'i32';
  return 'bool';
}
