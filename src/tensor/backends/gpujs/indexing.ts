/**
 * gpujs indexing and layout kernels: `indexSelect` / `indexAdd`, `gather` / `scatterAdd` (each
 * output element sums its sources, so no atomics are needed), `concat` and `pad`.
 */
import { DTypeError, IndexError, ShapeError } from '../../errors.js';
import { sizeOf } from '../../shape.js';
import type { Tensor } from '../../tensor.js';
import { checkGatherShapes, concatShape, padShape, splitAxis } from '../checks.js';
import { concatCpu, gatherCpu, indexAddCpu, indexSelectCpu, padCpu, scatterAddCpu } from '../cpu/indexing.js';
import { GpuData, releaseData } from './device.js';
import { copyGpu } from './elementwise.js';
import { dev, done, emptyHost, fallback, fn, grid, MAX_XY, MAX_Z, operandOf, types, uploadHost, wrap, type Operand } from './launch.js';
/** Host values of an i32 index tensor when it lives on the host (then it can be range-checked). */
function hostIndex(index: Tensor): Int32Array | null {
  if (index.device instanceof GpuData && !index.device.hostCopy) return null;
  return index.toTypedArray() as Int32Array;
}

function checkRange(idx: Int32Array | null, n: number, op: string, axis: number): void {
  if (!idx) return;
  for (let i = 0; i < idx.length; i++) {
    const r = idx[i];
    if (r < 0 || r >= n) throw new IndexError(`${op}: index ${r} is out of range for axis ${axis} of size ${n}`);
  }
}

function fits3(inner: number, mid: number, outer: number): boolean {
  return inner <= MAX_XY && mid <= MAX_XY && outer <= MAX_Z;
}

/** A contiguous device operand (copying views). */
function denseOperand(t: Tensor, temps: GpuData[]): Operand {
  if (t.device instanceof GpuData && !t.device.disposed && t.isContiguous() && t.offset >= 0)
    return { data: t.device, offset: t.offset, strides: [...t.strides] };
  if (!(t.device instanceof GpuData) && t.isContiguous()) return operandOf(t, temps);
  const c = copyGpu(t);
  temps.push(c.device as GpuData);
  return { data: c.device as GpuData, offset: 0, strides: [...c.strides] };
}

/** gpujs `indexSelect`. */
export function indexSelectGpu(x: Tensor, axis: number, index: Tensor): Tensor {
  if (index.ndim !== 1) throw new ShapeError(`indexSelect: index must be 1-D, got shape [${index.shape}]`);
  if (index.dtype !== 'i32') throw new DTypeError(`indexSelect: index must be i32, got ${index.dtype}`);
  const [outer, n, inner] = splitAxis(x.shape, axis);
  checkRange(hostIndex(index), n, 'indexSelect', axis);
  const cpu = () => indexSelectCpu(x, axis, index);
  if (x.dtype === 'f64') return fallback('indexSelect', 'f64', cpu);
  const m = index.shape[0];
  const shape = [...x.shape];
  shape[axis] = m;
  if (sizeOf(shape) === 0) return emptyHost(shape, x.dtype);
  if (!fits3(inner, m, outer)) return fallback('indexSelect', 'grid limits', cpu);
  const temps: GpuData[] = [];
  try {
    const X = denseOperand(x, temps),
      I = operandOf(index, temps);
    const src = () =>
      fn(['t0', 't1', 'o0', 'o1', 'is', 'n', 'inner'], 'return t0[o0 + (this.thread.z * n + (t1[o1 + this.thread.y * is] | 0)) * inner + this.thread.x];');
    const out = dev().run(
      'indexSelect',
      src,
      types(['t0', 't1'], ['o0', 'o1', 'is', 'n', 'inner']),
      [inner, m, outer],
      [X.data, I.data, X.offset, I.offset, I.strides[0], n, inner],
      x.dtype,
    );
    return wrap(out, shape);
  } finally {
    done(temps);
  }
}

/** gpujs `indexAdd`: the index is turned into per-row lists on the host (CSR), so no atomics are needed. */
export function indexAddGpu(shape: readonly number[], axis: number, index: Tensor, src: Tensor): Tensor {
  if (index.dtype !== 'i32') throw new DTypeError(`indexAdd: index must be i32, got ${index.dtype}`);
  const [outer, n, inner] = splitAxis(shape, axis);
  const m = index.size;
  if (src.shape[axis] !== m || sizeOf(src.shape) !== outer * m * inner) {
    throw new ShapeError(`indexAdd: source [${src.shape}] does not match [${shape}] with ${m} indices on axis ${axis}`);
  }
  const cpu = () => indexAddCpu(shape, axis, index, src);
  if (src.dtype === 'f64') return fallback('indexAdd', 'f64', cpu);
  if (sizeOf(shape) === 0) return emptyHost(shape, src.dtype);
  if (!fits3(inner, n, outer)) return fallback('indexAdd', 'grid limits', cpu);
  const idx = index.toTypedArray() as Int32Array;
  checkRange(idx, n, 'indexAdd', axis);
  // one upload: the row pointers [0, n] then the source positions (CSR), offset n + 1
  const csr = new Float32Array(n + 1 + Math.max(1, m));
  for (let i = 0; i < m; i++) csr[idx[i] + 1]++;
  for (let r = 0; r < n; r++) csr[r + 1] += csr[r];
  const fill = csr.slice(0, n);
  for (let i = 0; i < m; i++) csr[n + 1 + fill[idx[i]]++] = i;
  const temps: GpuData[] = [];
  try {
    const S = denseOperand(src, temps);
    const P = uploadHost(csr, 'i32', temps); // cached: fixed index lists (relative positions) cross once
    const body = [
      'let acc = 0;',
      'const lo = t1[this.thread.y];',
      'const cnt = t1[this.thread.y + 1] - lo;',
      'for (let q = 0; q < (cnt | 0); q++) {',
      'acc += t0[o0 + (this.thread.z * m + (t1[cs + (lo | 0) + q] | 0)) * inner + this.thread.x];',
      '}',
      'return acc;',
    ].join('\n');
    const out = dev().run(
      'indexAdd',
      () => fn(['t0', 't1', 'o0', 'cs', 'm', 'inner'], body),
      types(['t0', 't1'], ['o0', 'cs', 'm', 'inner']),
      [inner, n, outer],
      [S.data, P, S.offset, n + 1, m, inner],
      src.dtype,
    );
    return wrap(out, shape);
  } finally {
    done(temps);
  }
}

/** gpujs `gather`. */
export function gatherGpu(x: Tensor, axis: number, index: Tensor): Tensor {
  checkGatherShapes('gather', x.shape, index, axis);
  if (index.dtype !== 'i32') throw new DTypeError(`gather: index must be i32, got ${index.dtype}`);
  const [outer, n, inner] = splitAxis(x.shape, axis);
  checkRange(hostIndex(index), n, 'gather', axis);
  const cpu = () => gatherCpu(x, axis, index);
  if (x.dtype === 'f64') return fallback('gather', 'f64', cpu);
  const m = index.shape[axis];
  if (index.size === 0) return emptyHost(index.shape, x.dtype);
  if (!fits3(inner, m, outer)) return fallback('gather', 'grid limits', cpu);
  const temps: GpuData[] = [];
  try {
    const X = denseOperand(x, temps),
      I = denseOperand(index, temps);
    const src = () =>
      fn(
        ['t0', 't1', 'o0', 'o1', 'n', 'm', 'inner'],
        'return t0[o0 + (this.thread.z * n + (t1[o1 + (this.thread.z * m + this.thread.y) * inner + this.thread.x] | 0)) * inner + this.thread.x];',
      );
    const out = dev().run(
      'gather',
      src,
      types(['t0', 't1'], ['o0', 'o1', 'n', 'm', 'inner']),
      [inner, m, outer],
      [X.data, I.data, X.offset, I.offset, n, m, inner],
      x.dtype,
    );
    return wrap(out, index.shape);
  } finally {
    done(temps);
  }
}

/** gpujs `scatterAdd`: each output element sums the sources whose index points at it. */
export function scatterAddGpu(shape: readonly number[], axis: number, index: Tensor, src: Tensor): Tensor {
  checkGatherShapes('scatterAdd', shape, index, axis);
  if (index.dtype !== 'i32') throw new DTypeError(`scatterAdd: index must be i32, got ${index.dtype}`);
  const [outer, n, inner] = splitAxis(shape, axis);
  checkRange(hostIndex(index), n, 'scatterAdd', axis);
  const cpu = () => scatterAddCpu(shape, axis, index, src);
  if (src.dtype === 'f64') return fallback('scatterAdd', 'f64', cpu);
  const m = index.shape[axis];
  if (sizeOf(shape) === 0) return emptyHost(shape, src.dtype);
  if (!fits3(inner, n, outer)) return fallback('scatterAdd', 'grid limits', cpu);
  const temps: GpuData[] = [];
  try {
    const S = denseOperand(src, temps),
      I = denseOperand(index, temps);
    const at = '(this.thread.z * m + i) * inner + this.thread.x';
    const body = [
      'let acc = 0;',
      'for (let i = 0; i < m; i++) {',
      `if ((t1[o1 + ${at}] | 0) === this.thread.y) {`,
      `acc += t0[o0 + ${at}];`,
      '}',
      '}',
      'return acc;',
    ].join('\n');
    const out = dev().run(
      'scatterAdd',
      () => fn(['t0', 't1', 'o0', 'o1', 'm', 'inner'], body),
      types(['t0', 't1'], ['o0', 'o1', 'm', 'inner']),
      [inner, n, outer],
      [S.data, I.data, S.offset, I.offset, m, inner],
      src.dtype,
    );
    return wrap(out, shape);
  } finally {
    done(temps);
  }
}

// ---- concat, pad ------------------------------------------------------------------------------

const CONCAT_MAX = 6;

/** gpujs `concat`: up to six inputs per kernel, more in groups. */
export function concatGpu(xs: readonly Tensor[], axis: number): Tensor {
  const shape = concatShape(xs, axis);
  const first = xs[0];
  const cpu = () => concatCpu(xs, axis);
  if (first.dtype === 'f64') return fallback('concat', 'f64', cpu);
  if (sizeOf(shape) === 0) return emptyHost(shape, first.dtype);
  const parts = xs.filter((t) => t.size > 0);
  if (parts.length === 1) return copyGpu(parts[0]);
  if (parts.length > CONCAT_MAX) {
    const groups: Tensor[] = [];
    for (let i = 0; i < parts.length; i += CONCAT_MAX) groups.push(concatGpu(parts.slice(i, i + CONCAT_MAX), axis));
    try {
      return concatGpu(groups, axis);
    } finally {
      for (const g of groups) if (g.device instanceof GpuData) releaseData(g.device);
    }
  }
  const [outer, total, inner] = splitAxis(shape, axis);
  const flat = outer === 1;
  if (!flat && !fits3(inner, total, outer)) return fallback('concat', 'grid limits', cpu);
  const temps: GpuData[] = [];
  try {
    const ops = parts.map((t) => denseOperand(t, temps));
    const k = ops.length;
    const tn = ops.map((_, i) => `t${i}`),
      on = ops.map((_, i) => `o${i}`);
    const bn = ops.map((_, i) => `e${i}`),
      ln = ops.map((_, i) => `l${i}`);
    const bounds: number[] = [],
      lens: number[] = [];
    let acc = 0;
    for (const t of parts) {
      lens.push(t.shape[axis]);
      bounds.push(acc);
      acc += t.shape[axis];
    }
    let expr = '';
    for (let i = k - 1; i >= 0; i--) {
      const read = flat
        ? `t${i}[o${i} + this.thread.x - e${i} * inner]`
        : `t${i}[o${i} + (this.thread.z * l${i} + this.thread.y - e${i}) * inner + this.thread.x]`;
      const lim = flat ? `this.thread.x < (e${i} + l${i}) * inner` : `this.thread.y < e${i} + l${i}`;
      expr = i === k - 1 ? read : `(${lim} ? ${read} : ${expr})`;
    }
    const key = `concat:${k}:${flat ? 1 : 3}`;
    const ints = [...on, ...bn, ...ln, 'inner'];
    const out = dev().run(
      key,
      () => fn([...tn, ...ints], `return ${expr};`),
      types(tn, ints),
      flat ? [total * inner] : [inner, total, outer],
      [...ops.map((o) => o.data), ...ops.map((o) => o.offset), ...bounds, ...lens, inner],
      first.dtype,
    );
    return wrap(out, shape);
  } finally {
    done(temps);
  }
}

/** gpujs `pad` (negative amounts crop). */
export function padGpu(x: Tensor, pads: readonly (readonly [number, number])[], value: number): Tensor {
  const shape = padShape(x, pads);
  const cpu = () => padCpu(x, pads, value);
  if (x.dtype === 'f64') return fallback('pad', 'f64', cpu);
  if (sizeOf(shape) === 0) return emptyHost(shape, x.dtype);
  if (x.ndim === 0 || x.size === 0) return fallback('pad', 'empty or 0-d input', cpu);
  const g = grid(shape);
  if (!g) return fallback('pad', 'grid limits', cpu);
  const temps: GpuData[] = [];
  try {
    const X = operandOf(x, temps);
    const r = x.ndim;
    const conds = g.coords.map((c, i) => `${c} - b${i} >= 0 && ${c} - b${i} < n${i}`).join(' && ');
    const idx = ['o0', ...g.coords.map((c, i) => `(${c} - b${i}) * s0_${i}`)].join(' + ');
    const ints = ['o0', ...Array.from({ length: r }, (_, i) => [`s0_${i}`, `b${i}`, `n${i}`]).flat(), ...g.foldArgs];
    const out = dev().run(
      `pad:${r}`,
      () => fn(['t0', ...ints, 'value'], [g.pre, `return (${conds}) ? t0[${idx}] : value;`].join('\n')),
      types(['t0'], ints, ['value']),
      g.output,
      [X.data, X.offset, ...Array.from({ length: r }, (_, i) => [X.strides[i], pads[i][0], x.shape[i]]).flat(), ...g.foldVals, value],
      x.dtype,
    );
    return wrap(out, shape);
  } finally {
    done(temps);
  }
}
