/** CPU kernels: indexSelect / indexAdd, gather / scatterAdd, concat, pad. */
import { allocateOut } from './resident.js';

import { DTypeError, IndexError, ShapeError } from '../../errors.js';
import { contiguousStrides, sizeOf } from '../../shape.js';
import { fromStorage, Tensor } from '../../tensor.js';
import { checkGatherShapes, concatShape, padShape, splitAxis } from '../checks.js';
import { copyCpu, dense } from './elementwise.js';

/** Contiguous storage of `t` starting at index 0. */
function checkIndex(index: Tensor, op: string): Int32Array {
  if (index.dtype !== 'i32') throw new DTypeError(`${op}: index must be i32, got ${index.dtype}`);
  return dense(index) as Int32Array;
}

/** CPU `indexSelect`. */
export function indexSelectCpu(x: Tensor, axis: number, index: Tensor): Tensor {
  if (index.ndim !== 1) throw new ShapeError(`indexSelect: index must be 1-D, got shape [${index.shape}]`);
  const idx = checkIndex(index, 'indexSelect');
  const src = dense(x);
  const [outer, n, inner] = splitAxis(x.shape, axis);
  const m = idx.length;
  const out = allocateOut(x.dtype, outer * m * inner);
  for (let i = 0; i < m; i++) {
    const r = idx[i];
    if (r < 0 || r >= n) throw new IndexError(`indexSelect: index ${r} is out of range for axis ${axis} of size ${n}`);
  }
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < m; i++) {
      const s = (o * n + idx[i]) * inner,
        d = (o * m + i) * inner;
      for (let j = 0; j < inner; j++) out[d + j] = src[s + j];
    }
  }
  const shape = [...x.shape];
  shape[axis] = m;
  return fromStorage(out, shape);
}

/** CPU `indexAdd`. */
export function indexAddCpu(shape: readonly number[], axis: number, index: Tensor, src: Tensor): Tensor {
  const idx = checkIndex(index, 'indexAdd');
  const s = dense(src);
  const [outer, n, inner] = splitAxis(shape, axis);
  const m = idx.length;
  if (src.shape[axis] !== m || sizeOf(src.shape) !== outer * m * inner) {
    throw new ShapeError(`indexAdd: source [${src.shape}] does not match [${shape}] with ${m} indices on axis ${axis}`);
  }
  const out = allocateOut(src.dtype, sizeOf(shape));
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < m; i++) {
      const r = idx[i];
      if (r < 0 || r >= n) throw new IndexError(`indexAdd: index ${r} is out of range for axis ${axis} of size ${n}`);
      const d = (o * n + r) * inner,
        q = (o * m + i) * inner;
      for (let j = 0; j < inner; j++) out[d + j] += s[q + j];
    }
  }
  return fromStorage(out, shape);
}

/** CPU `gather` (index has the shape of x except along `axis`). */
export function gatherCpu(x: Tensor, axis: number, index: Tensor): Tensor {
  checkGatherShapes('gather', x.shape, index, axis);
  const idx = checkIndex(index, 'gather');
  const src = dense(x);
  const [outer, n, inner] = splitAxis(x.shape, axis);
  const m = index.shape[axis];
  const out = allocateOut(x.dtype, outer * m * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < inner; j++) {
        const p = (o * m + i) * inner + j;
        const r = idx[p];
        if (r < 0 || r >= n) throw new IndexError(`gather: index ${r} is out of range for axis ${axis} of size ${n}`);
        out[p] = src[(o * n + r) * inner + j];
      }
    }
  }
  return fromStorage(out, index.shape);
}

/** CPU `scatterAdd`. */
export function scatterAddCpu(shape: readonly number[], axis: number, index: Tensor, src: Tensor): Tensor {
  checkGatherShapes('scatterAdd', shape, index, axis);
  const idx = checkIndex(index, 'scatterAdd');
  const s = dense(src);
  const [outer, n, inner] = splitAxis(shape, axis);
  const m = index.shape[axis];
  const out = allocateOut(src.dtype, sizeOf(shape));
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < inner; j++) {
        const p = (o * m + i) * inner + j;
        const r = idx[p];
        if (r < 0 || r >= n) throw new IndexError(`scatterAdd: index ${r} is out of range for axis ${axis} of size ${n}`);
        out[(o * n + r) * inner + j] += s[p];
      }
    }
  }
  return fromStorage(out, shape);
}

/** CPU `concat`. */
export function concatCpu(xs: readonly Tensor[], axis: number): Tensor {
  const shape = concatShape(xs, axis);
  const total = shape[axis];
  const [outer, , inner] = splitAxis(shape, axis);
  const out = allocateOut(xs[0].dtype, sizeOf(shape), false); // every element is written
  let at = 0;
  for (const t of xs) {
    const s = dense(t);
    const w = t.shape[axis] * inner;
    for (let o = 0; o < outer; o++) {
      const d = o * total * inner + at * inner;
      if (w >= 16)
        out.set(s.subarray(o * w, o * w + w), d); // a block copy beats an element loop over a storage union
      else for (let j = 0; j < w; j++) out[d + j] = s[o * w + j];
    }
    at += t.shape[axis];
  }
  return fromStorage(out, shape);
}

/** CPU `pad` (negative amounts crop). */
export function padCpu(x: Tensor, pads: readonly (readonly [number, number])[], value: number): Tensor {
  const shape = padShape(x, pads);
  const out = allocateOut(x.dtype, sizeOf(shape));
  if (value !== 0) out.fill(value);
  // region of x that survives, and where it lands
  const srcStart = pads.map((p) => Math.max(0, -p[0]));
  const region = x.shape.map((d, i) => Math.max(0, Math.min(d - srcStart[i], shape[i] - Math.max(0, pads[i][0]))));
  if (sizeOf(region) === 0) return fromStorage(out, shape);
  let srcOff = x.offset;
  for (let i = 0; i < x.ndim; i++) srcOff += srcStart[i] * x.strides[i];
  const src = copyCpu(new Tensor(x.storage, region, x.strides, srcOff));
  const s = src.storage;
  const ds = contiguousStrides(shape);
  let dstOff = 0;
  for (let i = 0; i < x.ndim; i++) dstOff += Math.max(0, pads[i][0]) * ds[i];
  const nd = region.length;
  const n = nd === 0 ? 1 : region[nd - 1];
  const outer = sizeOf(region) / n;
  const idx = new Array<number>(Math.max(0, nd - 1)).fill(0);
  let d = dstOff;
  for (let r = 0; r < outer; r++) {
    for (let j = 0; j < n; j++) out[d + j] = s[r * n + j];
    for (let a = nd - 2; a >= 0; a--) {
      idx[a]++;
      d += ds[a];
      if (idx[a] < region[a]) break;
      d -= ds[a] * region[a];
      idx[a] = 0;
    }
  }
  return fromStorage(out, shape);
}
