/**
 * gpujs reductions: `reduce`, `argmax` and `softmax`, one thread per kept position looping over
 * the reduced axes ({@link rowKernel}).
 */
import type { ReduceOp } from '../../backend.js';
import { isFloat, type DType } from '../../dtype.js';
import { DTypeError } from '../../errors.js';
import { sizeOf } from '../../shape.js';
import { Tensor } from '../../tensor.js';
import { argmaxCpu, reduceCpu, softmaxCpu } from '../cpu/reduce.js';
import { releaseData, type GpuData } from './device.js';
import { copyGpu, elementwise } from './elementwise.js';
import { gpuKernels, softmaxWgsl } from './wgsl.js';
import { coalesce, dev, done, emptyHost, fallback, fn, grid, indexExpr, operandOf, types, wrap, type Operand } from './launch.js';

/** Kept / reduced split of `x`'s axes, coalesced. */
function splitAxes(x: Tensor, xo: Operand, axes: readonly number[]) {
  const keptAxes = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const kept = coalesce(
    keptAxes.map((a) => x.shape[a]),
    [keptAxes.map((a) => xo.strides[a])],
  );
  const red = coalesce(
    axes.map((a) => x.shape[a]),
    [axes.map((a) => xo.strides[a])],
  );
  return { keptAxes, kept, red };
}

/**
 * A kernel with one output per kept position that loops over the reduced axes (at most two after
 * coalescing; more are made contiguous first). `body(idx)` gets the inline index expression of
 * element (i, j) of the reduced block and returns the kernel body after the prelude.
 */
function rowKernel(
  name: string,
  x: Tensor,
  axes: readonly number[],
  outShape: readonly number[],
  dtype: DType,
  body: (at: (i: string, j: string) => string) => string,
): Tensor | null {
  const temps: GpuData[] = [];
  try {
    let xo = operandOf(x, temps);
    let { kept, red } = splitAxes(x, xo, axes);
    if (red.shape.length > 2) {
      // make the reduced block contiguous: copy the view [kept..., reduced...]
      const keptAxes = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
      const perm = [...keptAxes, ...axes];
      const pv = new Tensor(
        xo.data,
        perm.map((a) => x.shape[a]),
        perm.map((a) => xo.strides[a]),
        xo.offset,
      );
      const c = copyGpu(pv);
      temps.push(c.device as GpuData);
      xo = { data: c.device as GpuData, offset: 0, strides: [...c.strides] };
      const newAxes = axes.map((_, i) => keptAxes.length + i);
      ({ kept, red } = splitAxes(c, xo, newAxes));
    }
    const g = grid(kept.shape);
    if (!g) return null;
    const r = g.coords.length;
    const ks = kept.shape.length ? kept.strides[0] : [0];
    const R = [...red.shape, 1, 1].slice(0, 2),
      RS = [...red.strides[0], 0, 0].slice(0, 2);
    const sn = Array.from({ length: r }, (_, i) => `s0_${i}`);
    const base = indexExpr(0, g.coords);
    const at = (i: string, j: string) => `t0[${base} + ${i} * rs0 + ${j} * rs1]`;
    const key = `row:${name}:${r}`;
    const src = () => fn(['t0', 'o0', ...sn, 'rn0', 'rs0', 'rn1', 'rs1', ...g.foldArgs], [g.pre, body(at)].join('\n'));
    const out = dev().run(
      key,
      src,
      types(['t0'], ['o0', ...sn, 'rn0', 'rs0', 'rn1', 'rs1', ...g.foldArgs]),
      g.output,
      [xo.data, xo.offset, ...ks, R[0], RS[0], R[1], RS[1], ...g.foldVals],
      dtype,
    );
    return wrap(out, outShape);
  } finally {
    done(temps);
  }
}

/** A double loop over the reduced block; `u` makes the loop variables unique (WGSL hoists them). */
const loop2 = (inner: string, u = '') => `for (let i${u} = 0; i${u} < rn0; i${u}++) {\nfor (let j${u} = 0; j${u} < rn1; j${u}++) {\n${inner}\n}\n}`;

/** gpujs `reduce`. */
export function reduceGpu(x: Tensor, op: ReduceOp, axes: number[], keepdims: boolean): Tensor {
  const cpu = () => reduceCpu(x, op, axes, keepdims);
  if (x.dtype === 'f64') return fallback('reduce', 'f64', cpu);
  const R = axes.reduce((n, a) => n * x.shape[a], 1);
  const shape = keepdims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
  const dtype: DType = x.dtype === 'bool' ? 'i32' : x.dtype;
  if (sizeOf(shape) === 0) return emptyHost(shape, dtype);
  if (R === 0) return fallback('reduce', 'empty reduction', cpu);
  const r = rowKernel(`reduce:${op}`, x, axes, shape, dtype, (at) => {
    const comb = op === 'sum' ? 'acc += v;' : op === 'max' ? 'acc = Math.max(acc, v);' : 'acc = Math.min(acc, v);';
    return [`let acc = ${op === 'sum' ? '0' : at('0', '0')};`, loop2(`const v = ${at('i', 'j')};\n${comb}`), 'return acc;'].join('\n');
  });
  return r ?? fallback('reduce', 'grid limits', cpu);
}

/** gpujs `argmax` (first maximal index, as i32). */
export function argmaxGpu(x: Tensor, axis: number): Tensor {
  const cpu = () => argmaxCpu(x, axis);
  if (x.dtype === 'f64') return fallback('argmax', 'f64', cpu);
  const shape = x.shape.filter((_, i) => i !== axis);
  if (sizeOf(shape) === 0) return emptyHost(shape, 'i32');
  if (x.shape[axis] === 0) return fallback('argmax', 'empty axis', cpu);
  const r = rowKernel('argmax', x, [axis], shape, 'i32', (at) =>
    [`let best = ${at('0', '0')};`, 'let arg = 0;', loop2(`const v = ${at('i', 'j')};\nif (v > best) {\nbest = v;\narg = i;\n}`), 'return arg;'].join('\n'),
  );
  return r ?? fallback('argmax', 'grid limits', cpu);
}

/**
 * gpujs `softmax`: the WGSL shader (wgsl.ts) where selected, else one gpu.js kernel for each
 * row's log-sum-exp and one elementwise kernel for the output.
 */
export function softmaxGpu(x: Tensor, log: boolean): Tensor {
  if (!isFloat(x.dtype)) throw new DTypeError(`softmax: expected a floating tensor, got ${x.dtype}`);
  const cpu = () => softmaxCpu(x, log);
  if (x.dtype === 'f64') return fallback('softmax', 'f64', cpu);
  if (x.size === 0) return emptyHost(x.shape, x.dtype);
  const nd = x.ndim;
  if (nd === 0) return fallback('softmax', '0-d input', cpu);
  const w = gpuKernels() === 'wgsl' ? softmaxWgsl(x, log) : null;
  if (w) return w;
  const lseShape = x.shape.map((d, i) => (i === nd - 1 ? 1 : d));
  const lse = rowKernel('lse', x, [nd - 1], lseShape, 'f32', (at) =>
    [
      `let m = ${at('0', '0')};`,
      loop2(`m = Math.max(m, ${at('i', 'j')});`),
      'let s = 0;',
      loop2(`s += Math.exp(${at('i2', 'j2')} - m);`, '2'),
      'return m + Math.log(s);',
    ].join('\n'),
  );
  if (!lse) return fallback('softmax', 'grid limits', cpu);
  try {
    const out = elementwise(log ? 'logsoftmax' : 'softmax', { expr: log ? 'v0 - v1' : 'Math.exp(v0 - v1)' }, [x, lse], x.shape, x.dtype);
    return out ?? fallback('softmax', 'grid limits', cpu);
  } finally {
    releaseData(lse.device as GpuData);
  }
}
