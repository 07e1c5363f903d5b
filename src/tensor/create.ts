import { allocate, type DType, type Storage } from './dtype.js';
import { ShapeError } from './errors.js';
import { checkShape, sizeOf, type Shape } from './shape.js';
import { fromStorage, Tensor } from './tensor.js';

/** Default floating dtype of creation helpers. */
export const DEFAULT_DTYPE: DType = 'f32';

/** A tensor of zeros. */
export function zeros(shape: Shape, dtype: DType = DEFAULT_DTYPE): Tensor {
  checkShape(shape, 'zeros');
  return fromStorage(allocate(dtype, sizeOf(shape)), shape);
}

/** A tensor filled with `value`. */
export function full(shape: Shape, value: number, dtype: DType = DEFAULT_DTYPE): Tensor {
  checkShape(shape, 'full');
  const s = allocate(dtype, sizeOf(shape));
  s.fill(value);
  return fromStorage(s, shape);
}

/** A tensor of ones. */
export function ones(shape: Shape, dtype: DType = DEFAULT_DTYPE): Tensor {
  return full(shape, 1, dtype);
}

/** A 0-d tensor. */
export function scalar(value: number, dtype: DType = DEFAULT_DTYPE): Tensor {
  return full([], value, dtype);
}

/** `[start, start+step, ...)` below `end`. */
export function arange(start: number, end?: number, step = 1, dtype: DType = 'i32'): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (step === 0) throw new ShapeError('arange: step must be non-zero');
  const n = Math.max(0, Math.ceil((end - start) / step));
  const s = allocate(dtype, n);
  for (let i = 0; i < n; i++) s[i] = start + i * step;
  return fromStorage(s, [n]);
}

/** A nested number array (or flat data with an explicit shape) as a tensor. */
export function tensor(data: number[] | ArrayLike<number> | NestedArray, shapeOrDtype?: Shape | DType, dtype?: DType): Tensor {
  let shape: number[];
  let flat: number[];
  let dt: DType = DEFAULT_DTYPE;
  if (typeof shapeOrDtype === 'string') dt = shapeOrDtype;
  else if (dtype) dt = dtype;
  if (Array.isArray(shapeOrDtype)) {
    shape = [...shapeOrDtype];
    flat = Array.from(data as ArrayLike<number>);
    if (flat.length !== sizeOf(shape)) throw new ShapeError(`tensor: ${flat.length} values do not fill shape [${shape}]`);
  } else {
    shape = [];
    let probe: unknown = data;
    while (Array.isArray(probe)) {
      shape.push(probe.length);
      probe = probe[0];
    }
    flat = (data as NestedArray[]).flat(Infinity as 1) as number[];
    if (flat.length !== sizeOf(shape)) throw new ShapeError(`tensor: ragged nested array for shape [${shape}]`);
    if (!Array.isArray(data)) {
      shape = [flat.length];
      flat = Array.from(data as ArrayLike<number>);
    }
  }
  const s = allocate(dt, flat.length);
  for (let i = 0; i < flat.length; i++) s[i] = flat[i];
  return fromStorage(s, shape);
}

/** Nested arrays of numbers. */
export type NestedArray = number | NestedArray[];

/** Wraps a typed array (no copy) with a shape. */
export function fromArray(data: Storage, shape: Shape): Tensor {
  if (data.length !== sizeOf(shape)) throw new ShapeError(`fromArray: ${data.length} values do not fill shape [${shape}]`);
  return fromStorage(data, shape);
}
