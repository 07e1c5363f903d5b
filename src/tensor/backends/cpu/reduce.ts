/** CPU kernels: reduce (sum/max/min), argmax, softmax / log-softmax along the last axis. */
import { allocateOut } from './resident.js';
import type { ReduceOp } from '../../backend.js';
import { isFloat, type Storage } from '../../dtype.js';
import { DTypeError } from '../../errors.js';
import { fromStorage, Tensor } from '../../tensor.js';
import { copyCpu } from './elementwise.js';

/** `t` with axes reordered (no copy). */
function permuted(t: Tensor, axes: readonly number[]): Tensor {
  return new Tensor(
    t.storage,
    axes.map((a) => t.shape[a]),
    axes.map((a) => t.strides[a]),
    t.offset,
  );
}

/** Contiguous data of `t` with `moved` axes placed last (copies when needed). */
function moveLast(t: Tensor, moved: readonly number[]): { data: Storage; outer: number; inner: number; keptShape: number[] } {
  const kept = t.shape.map((_, i) => i).filter((i) => !moved.includes(i));
  let p = permuted(t, [...kept, ...moved]);
  if (!p.isContiguous()) p = copyCpu(p);
  const inner = moved.reduce((n, a) => n * t.shape[a], 1);
  const keptShape = kept.map((a) => t.shape[a]);
  const outer = keptShape.reduce((n, d) => n * d, 1);
  return { data: p.offset === 0 ? p.storage : (p.storage.subarray(p.offset) as Storage), outer, inner, keptShape };
}

/** CPU `reduce`; sums accumulate in double precision. */
export function reduceCpu(x: Tensor, op: ReduceOp, axes: number[], keepdims: boolean): Tensor {
  const { data, outer, inner, keptShape } = moveLast(x, axes);
  const out = allocateOut(x.dtype === 'bool' ? 'i32' : x.dtype, outer);
  for (let i = 0; i < outer; i++) {
    const base = i * inner;
    let acc: number;
    if (op === 'sum') {
      acc = 0;
      for (let j = 0; j < inner; j++) acc += data[base + j];
    } else if (op === 'max') {
      acc = -Infinity;
      for (let j = 0; j < inner; j++) {
        const v = data[base + j];
        if (v > acc || v !== v) acc = v;
      }
    } else {
      acc = Infinity;
      for (let j = 0; j < inner; j++) {
        const v = data[base + j];
        if (v < acc || v !== v) acc = v;
      }
    }
    out[i] = acc;
  }
  const shape = keepdims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : keptShape;
  return fromStorage(out, shape);
}

/** CPU `argmax` (first maximal index). */
export function argmaxCpu(x: Tensor, axis: number): Tensor {
  const { data, outer, inner, keptShape } = moveLast(x, [axis]);
  const out = new Int32Array(outer);
  for (let i = 0; i < outer; i++) {
    let best = -Infinity,
      arg = 0;
    for (let j = 0; j < inner; j++) {
      const v = data[i * inner + j];
      if (v > best) {
        best = v;
        arg = j;
      }
    }
    out[i] = arg;
  }
  return fromStorage(out, keptShape);
}

/** CPU `softmax` along the last axis (log-softmax when `log`). Rows of all −∞ give NaN, as PyTorch. */
export function softmaxCpu(x: Tensor, log: boolean): Tensor {
  if (!isFloat(x.dtype)) throw new DTypeError(`softmax: expected a floating tensor, got ${x.dtype}`);
  const nd = x.ndim;
  const { data, outer, inner } = moveLast(x, [nd - 1]);
  const out = allocateOut(x.dtype, outer * inner, false);
  for (let i = 0; i < outer; i++) {
    const b = i * inner;
    let m = -Infinity;
    for (let j = 0; j < inner; j++) if (data[b + j] > m) m = data[b + j];
    let s = 0;
    for (let j = 0; j < inner; j++) s += Math.exp(data[b + j] - m);
    if (log) {
      const ls = Math.log(s) + m;
      for (let j = 0; j < inner; j++) out[b + j] = data[b + j] - ls;
    } else {
      for (let j = 0; j < inner; j++) out[b + j] = Math.exp(data[b + j] - m) / s;
    }
  }
  return fromStorage(out, x.shape);
}
