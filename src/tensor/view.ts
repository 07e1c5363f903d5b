/**
 * Zero-copy views: reshape (copies only when strides do not allow a view), permute, transpose,
 * narrow, expand, squeeze/unsqueeze, flip. None of these record gradients; the differentiable
 * versions in src/autograd wrap them.
 */
import { IndexError, ShapeError } from './errors.js';
import { copy } from './kernels.js';
import { broadcastShapes, checkShape, contiguousStrides, normAxis, normAxes, sizeOf, type Shape } from './shape.js';
import { Tensor } from './tensor.js';

/** Resolves one `-1` entry of a requested shape against `size` elements. */
export function resolveShape(shape: Shape, size: number, op: string): number[] {
  const out = [...shape];
  const neg = out.indexOf(-1);
  if (neg >= 0) {
    const rest = sizeOf(out.filter((_, i) => i !== neg));
    if (rest === 0 || size % rest !== 0) throw new ShapeError(`${op}: cannot infer -1 in [${shape}] for ${size} elements`);
    out[neg] = size / rest;
  }
  checkShape(out, op);
  if (sizeOf(out) !== size) throw new ShapeError(`${op}: cannot view ${size} elements as [${shape}]`);
  return out;
}

/** Strides for viewing `t` as `shape` without copying, or null (PyTorch's computeStride). */
function viewStrides(t: Tensor, shape: number[]): number[] | null {
  const oldShape = t.shape,
    oldStrides = t.strides;
  if (t.size === 0 || t.ndim === 0) return null;
  const newStrides = new Array<number>(shape.length);
  let viewD = shape.length - 1;
  let chunkBase = oldStrides[oldStrides.length - 1] ?? 1;
  let tensorNumel = 1,
    viewNumel = 1;
  for (let d = oldShape.length - 1; d >= 0; d--) {
    tensorNumel *= oldShape[d];
    if (d === 0 || (oldShape[d - 1] !== 1 && oldStrides[d - 1] !== tensorNumel * chunkBase)) {
      while (viewD >= 0 && (viewNumel < tensorNumel || shape[viewD] === 1)) {
        newStrides[viewD] = viewNumel * chunkBase;
        viewNumel *= shape[viewD];
        viewD--;
      }
      if (viewNumel !== tensorNumel) return null;
      if (d > 0) {
        chunkBase = oldStrides[d - 1];
        tensorNumel = 1;
        viewNumel = 1;
      }
    }
  }
  if (viewD !== -1) return null;
  return newStrides;
}

/** `t` with a new shape (one entry may be -1); a view when the strides allow, else a copy. */
export function reshape(t: Tensor, shape: Shape): Tensor {
  const s = resolveShape(shape, t.size, 'reshape');
  if (t.isContiguous()) return new Tensor(t.data, s, contiguousStrides(s), t.offset);
  const strides = viewStrides(t, s);
  if (strides) return new Tensor(t.data, s, strides, t.offset);
  return new Tensor(copy(t).data, s, contiguousStrides(s), 0);
}

/** Reorders axes: result axis i is input axis `axes[i]`. */
export function permute(t: Tensor, axes: readonly number[]): Tensor {
  if (axes.length !== t.ndim) throw new ShapeError(`permute: ${axes.length} axes given for a tensor of ${t.ndim} dimensions`);
  const norm = axes.map((a) => normAxis(a, t.ndim, 'permute'));
  if (new Set(norm).size !== norm.length) throw new ShapeError(`permute: repeated axes in [${axes}]`);
  return new Tensor(
    t.data,
    norm.map((a) => t.shape[a]),
    norm.map((a) => t.strides[a]),
    t.offset,
  );
}

/** Swaps two axes. */
export function transpose(t: Tensor, a: number, b: number): Tensor {
  const axes = Array.from({ length: t.ndim }, (_, i) => i);
  const x = normAxis(a, t.ndim, 'transpose'),
    y = normAxis(b, t.ndim, 'transpose');
  [axes[x], axes[y]] = [axes[y], axes[x]];
  return permute(t, axes);
}

/** Elements `start .. start+length-1` along `axis` (start may be negative). */
export function narrow(t: Tensor, axis: number, start: number, length: number): Tensor {
  const a = normAxis(axis, t.ndim, 'narrow');
  const n = t.shape[a];
  const s = start < 0 ? start + n : start;
  if (s < 0 || length < 0 || s + length > n) {
    throw new IndexError(`narrow: range [${start}, ${start + length}) is outside axis ${axis} of size ${n}`);
  }
  const shape = [...t.shape];
  shape[a] = length;
  return new Tensor(t.data, shape, t.strides, t.offset + s * t.strides[a]);
}

/** Broadcasts `t` to `shape` (size-1 axes get stride 0; new leading axes are added). */
export function expand(t: Tensor, shape: Shape): Tensor {
  const target = broadcastShapes(t.shape, shape, 'expand');
  if (target.length !== shape.length || target.some((d, i) => d !== shape[i])) {
    throw new ShapeError(`expand: cannot expand [${t.shape}] to [${shape}]`);
  }
  const lead = shape.length - t.ndim;
  const strides = shape.map((d, i) => (i < lead ? 0 : t.shape[i - lead] === 1 && d !== 1 ? 0 : t.strides[i - lead]));
  return new Tensor(t.data, [...shape], strides, t.offset);
}

/** Removes size-1 axes (the given ones, or all). */
export function squeeze(t: Tensor, axes?: number | readonly number[]): Tensor {
  const drop = axes === undefined ? t.shape.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0) : normAxes(axes, t.ndim, 'squeeze');
  for (const a of drop) if (t.shape[a] !== 1) throw new ShapeError(`squeeze: axis ${a} has size ${t.shape[a]}, expected 1`);
  const keep = t.shape.map((_, i) => i).filter((i) => !drop.includes(i));
  return new Tensor(
    t.data,
    keep.map((i) => t.shape[i]),
    keep.map((i) => t.strides[i]),
    t.offset,
  );
}

/** Inserts a size-1 axis at `axis` (may be negative, counted on the result). */
export function unsqueeze(t: Tensor, axis: number): Tensor {
  const a = normAxis(axis, t.ndim + 1, 'unsqueeze');
  const shape = [...t.shape],
    strides = [...t.strides];
  shape.splice(a, 0, 1);
  strides.splice(a, 0, a < t.ndim ? t.strides[a] * t.shape[a] : 1);
  return new Tensor(t.data, shape, strides, t.offset);
}

/** Reverses the order of elements along the given axes (negative strides, no copy). */
export function flip(t: Tensor, axes: number | readonly number[]): Tensor {
  const list = normAxes(axes, t.ndim, 'flip');
  let offset = t.offset;
  const strides = [...t.strides];
  for (const a of list) {
    if (t.shape[a] > 0) offset += (t.shape[a] - 1) * t.strides[a];
    strides[a] = -strides[a];
  }
  return new Tensor(t.data, t.shape, strides, offset);
}

/** `t` itself when contiguous, else a contiguous copy. */
export function contiguous(t: Tensor): Tensor {
  return t.isContiguous() && t.offset >= 0 ? t : copy(t);
}
