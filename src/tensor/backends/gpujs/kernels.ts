/**
 * gpu.js implementations of the primitive kernels (see backend.ts for their semantics).
 *
 * Every kernel is a gpu.js kernel function (JavaScript, translated by gpu.js to WGSL or GLSL),
 * generated here as source text per operation and rank, so one compiled kernel serves every
 * shape of that rank: shapes, strides and offsets are integer arguments, outputs are resized
 * with `setOutput` (dynamicOutput). Inputs are read through their strides and offsets, so views
 * (transposed, sliced, broadcast, flipped) need no copy.
 *
 * Index arithmetic stays in 32-bit integers: gpu.js keeps `this.thread.*`, integer arguments and
 * products of them as i32, but turns `/`, `%` and every declared variable into f32. So indices
 * are written inline (never stored in a variable), outputs use gpu.js's 1-, 2- or 3-D thread
 * grid for up to three coalesced axes, and further leading axes are folded into `z` and split
 * again with exact small float divisions (z < 65536).
 *
 * Values are f32 on the device (i32 and bool are stored as exact f32 integers below 2^24). What
 * gpu.js cannot express runs the CPU kernel instead, explicitly, and is counted ({@link fallbacks}):
 * f64 tensors (f64 stays a CPU feature), `isfinite` (NaN tests are folded away by the shader
 * compilers), integer `div`/`pow`, and shapes beyond the dispatch limits.
 */
import type { BinaryOp, Kernels, ReduceOp, UnaryOp } from '../../backend.js';
import { allocate, isFloat, type DType } from '../../dtype.js';
import { DTypeError, IndexError, ShapeError } from '../../errors.js';
import { broadcastShapes, contiguousStrides, sizeOf } from '../../shape.js';
import { fromStorage, Tensor } from '../../tensor.js';
import { matmulCpu } from '../cpu/bmm.js';
import { binaryCpu, castCpu, copyCpu, unaryCpu, whereCpu } from '../cpu/elementwise.js';
import { fftConvCpu } from '../cpu/fftconv.js';
import { concatCpu, gatherCpu, indexAddCpu, indexSelectCpu, padCpu, scatterAddCpu } from '../cpu/index.js';
import { argmaxCpu, reduceCpu, softmaxCpu } from '../cpu/reduce.js';
import { GpuData, GpuDevice, GpuError, releaseData } from './device.js';

// ---- fallbacks ---------------------------------------------------------------------------------

const fallbackCounts = new Map<string, number>();

/** CPU fallbacks taken so far, by `kernel: reason`. */
export function fallbacks(): Record<string, number> {
  return Object.fromEntries(fallbackCounts);
}

/** Forgets the fallback counts. */
export function resetFallbacks(): void {
  fallbackCounts.clear();
}

const debug = /gpujs/.test(process.env.MEGA_DEBUG ?? '');

/** Runs the CPU kernel instead, counting it (and logging the first one of each kind under MEGA_DEBUG=gpujs). */
function fallback(kernel: string, reason: string, run: () => Tensor): Tensor {
  const key = `${kernel}: ${reason}`;
  const n = (fallbackCounts.get(key) ?? 0) + 1;
  fallbackCounts.set(key, n);
  if (debug && n === 1) process.stderr.write(`[gpujs] CPU fallback ${key}\n`);
  return run();
}

// ---- operands ---------------------------------------------------------------------------------

function dev(): GpuDevice {
  const d = GpuDevice.get();
  if (!d) throw new GpuError("the gpujs backend is not started (select it with setBackend('gpujs') / selectBackend)");
  return d;
}

/** A tensor as a device buffer + offset + strides; host tensors are uploaded (span only) as temporaries. */
interface Operand { data: GpuData; offset: number; strides: number[] }

function operandOf(t: Tensor, temps: GpuData[]): Operand {
  if (t.device instanceof GpuData && !t.device.disposed) return { data: t.device, offset: t.offset, strides: [...t.strides] };
  if (t.size === 0) {
    const d = dev().upload(new Float32Array(1), t.dtype); // never read: the kernel's loops are empty
    temps.push(d);
    return { data: d, offset: 0, strides: t.strides.map(() => 0) };
  }
  const s = t.storage;
  let lo = t.offset, hi = t.offset;
  for (let i = 0; i < t.ndim; i++) {
    const e = (t.shape[i] - 1) * t.strides[i];
    if (e < 0) lo += e;
    else hi += e;
  }
  const f = new Float32Array(hi - lo + 1);
  f.set(s.subarray(lo, hi + 1));
  const d = dev().upload(f, t.dtype);
  temps.push(d);
  return { data: d, offset: t.offset - lo, strides: [...t.strides] };
}

function done(temps: GpuData[]): void {
  for (const d of temps) releaseData(d);
}

/** Strides of `t` broadcast to `shape` (right-aligned; stretched axes get stride 0). */
function bstrides(t: { shape: readonly number[] }, strides: readonly number[], shape: readonly number[]): number[] {
  const lead = shape.length - t.shape.length;
  return shape.map((d, i) => (i < lead ? 0 : t.shape[i - lead] === 1 && d !== 1 ? 0 : strides[i - lead]));
}

/** Drops size-1 axes and merges neighbours that every operand walks contiguously. */
function coalesce(shape: readonly number[], strideSets: number[][]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strideSets.map(() => []);
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && strideSets.every((s, k) => outStrides[k][last] === s[i] * shape[i])) {
      outShape[last] *= shape[i];
      strideSets.forEach((s, k) => (outStrides[k][last] = s[i]));
    } else {
      outShape.push(shape[i]);
      strideSets.forEach((s, k) => outStrides[k].push(s[i]));
    }
  }
  return { shape: outShape, strides: outStrides };
}

/** Output grid of a (coalesced) shape: gpu.js output, coordinate expressions, prelude, fold args. */
interface Grid { output: number[]; coords: string[]; pre: string; foldArgs: string[]; foldVals: number[] }

const MAX_XY = 65535 * 8;
const MAX_Z = 65535;

function grid(D: number[]): Grid | null {
  const r = D.length;
  if (r === 0) return grid([1]);
  if (r === 1) return { output: [D[0]], coords: ['this.thread.x'], pre: '', foldArgs: [], foldVals: [] };
  const X = D[r - 1], Y = D[r - 2];
  if (X > MAX_XY || Y > MAX_XY) return null;
  if (r === 2) return { output: [X, Y], coords: ['this.thread.y', 'this.thread.x'], pre: '', foldArgs: [], foldVals: [] };
  const Z = sizeOf(D.slice(0, r - 2));
  if (Z > MAX_Z) return null;
  if (r === 3) return { output: [X, Y, Z], coords: ['this.thread.z', 'this.thread.y', 'this.thread.x'], pre: '', foldArgs: [], foldVals: [] };
  // fold D[0..r-3] into z; split it again from the innermost folded axis outwards
  const nf = r - 2;
  const lines = ['const q0 = this.thread.z;'];
  const foldArgs: string[] = [], foldVals: number[] = [];
  for (let i = nf - 1, q = 0; i >= 1; i--, q++) {
    foldArgs.push(`f${i}`);
    foldVals.push(D[i]);
    lines.push(`const q${q + 1} = Math.floor((q${q} + 0.5) / f${i});`, `const c${i} = q${q} - q${q + 1} * f${i};`);
  }
  lines.push(`const c0 = q${nf - 1};`);
  const coords = Array.from({ length: nf }, (_, i) => `(c${i} | 0)`);
  coords.push('this.thread.y', 'this.thread.x');
  return { output: [X, Y, Z], coords, pre: lines.join('\n'), foldArgs, foldVals };
}

/** Inline i32 index expression of operand k over coordinates `coords`. */
function indexExpr(k: number, coords: string[]): string {
  return [`o${k}`, ...coords.map((c, i) => `${c} * s${k}_${i}`)].join(' + ');
}

/** A new contiguous device tensor. */
function wrap(d: GpuData, shape: readonly number[]): Tensor {
  return new Tensor(d, [...shape], contiguousStrides(shape), 0);
}

function emptyHost(shape: readonly number[], dtype: DType): Tensor {
  return fromStorage(allocate(dtype, sizeOf(shape)), shape);
}

/** Builds the source of a kernel from its argument names and body. */
function fn(args: string[], body: string): string {
  return `function (${args.join(', ')}) {\n${body}\n}`;
}

function types(arrays: string[], ints: string[], floats: string[] = []): Record<string, string> {
  const t: Record<string, string> = {};
  for (const a of arrays) t[a] = 'Array';
  for (const a of ints) t[a] = 'Integer';
  for (const a of floats) t[a] = 'Float';
  return t;
}

// ---- elementwise ------------------------------------------------------------------------------

const ERF = (x: string, out: string) => `const ea_${out} = Math.abs(${x});
const et_${out} = 1 / (1 + 0.3275911 * ea_${out});
const ey_${out} = 1 - ((((1.061405429 * et_${out} - 1.453152027) * et_${out} + 1.421413741) * et_${out} - 0.284496736) * et_${out} + 0.254829592) * et_${out} * Math.exp(-ea_${out} * ea_${out});
const ${out} = ${x} < 0 ? -ey_${out} : ey_${out};`;

interface Expr { pre?: string; expr: string }

const UNARY: Partial<Record<UnaryOp, Expr>> = {
  neg: { expr: '-v0' }, exp: { expr: 'Math.exp(v0)' }, log: { expr: 'Math.log(v0)' }, sqrt: { expr: 'Math.sqrt(v0)' },
  rsqrt: { expr: '1 / Math.sqrt(v0)' }, sigmoid: { expr: '1 / (1 + Math.exp(-v0))' },
  tanh: { expr: 'Math.tanh(Math.min(Math.max(v0, -15), 15))' },
  erf: { pre: ERF('v0', 'erfv'), expr: 'erfv' }, abs: { expr: 'Math.abs(v0)' }, relu: { expr: '(v0 > 0 ? v0 : 0)' },
  sign: { expr: 'Math.sign(v0)' }, sin: { expr: 'Math.sin(v0)' }, cos: { expr: 'Math.cos(v0)' }, square: { expr: 'v0 * v0' },
  recip: { expr: '1 / v0' }, silu: { expr: 'v0 / (1 + Math.exp(-v0))' },
  gelu: { pre: `const gx = v0 * 0.7071067811865476;\n${ERF('gx', 'erfv')}`, expr: '0.5 * v0 * (1 + erfv)' },
  geluGrad: { pre: `const gx = v0 * 0.7071067811865476;\n${ERF('gx', 'erfv')}`, expr: '0.5 * (1 + erfv) + v0 * Math.exp(-0.5 * v0 * v0) * 0.3989422804014327' },
  step: { expr: '(v0 > 0 ? 1 : 0)' }, not: { expr: '(v0 !== 0 ? 0 : 1)' },
};

const BINARY: Record<BinaryOp, Expr> = {
  add: { expr: 'v0 + v1' }, sub: { expr: 'v0 - v1' }, mul: { expr: 'v0 * v1' }, div: { expr: 'v0 / v1' },
  pow: {
    pre: 'const pa = Math.pow(Math.abs(v0), v1);\nconst pf = Math.floor(v1);\nconst ph = pf * 0.5;\nconst podd = Math.abs(ph - Math.floor(ph)) > 0.25 ? 1 : 0;',
    expr: '(v0 < 0 ? (v1 === pf ? (podd > 0 ? -pa : pa) : Math.sqrt(v0)) : pa)',
  },
  max: { expr: '(v0 >= v1 ? v0 : v1)' }, min: { expr: '(v0 <= v1 ? v0 : v1)' },
  eq: { expr: '(v0 === v1 ? 1 : 0)' }, ne: { expr: '(v0 !== v1 ? 1 : 0)' }, lt: { expr: '(v0 < v1 ? 1 : 0)' },
  le: { expr: '(v0 <= v1 ? 1 : 0)' }, gt: { expr: '(v0 > v1 ? 1 : 0)' }, ge: { expr: '(v0 >= v1 ? 1 : 0)' },
  and: { expr: '((v0 !== 0 && v1 !== 0) ? 1 : 0)' }, or: { expr: '((v0 !== 0 || v1 !== 0) ? 1 : 0)' },
};

const BOOL_RESULT = new Set<string>(['eq', 'ne', 'lt', 'le', 'gt', 'ge', 'and', 'or', 'not', 'isfinite']);

/** Launches an elementwise kernel over `inputs` broadcast to `shape`. Null when the grid does not fit. */
function elementwise(name: string, e: Expr, inputs: readonly Tensor[], shape: readonly number[], dtype: DType): Tensor | null {
  const n = inputs.length;
  if (sizeOf(shape) === 0) return emptyHost(shape, dtype);
  const temps: GpuData[] = [];
  try {
    const ops = inputs.map((t) => operandOf(t, temps));
    const c = coalesce(shape, ops.map((o, k) => bstrides(inputs[k], o.strides, shape)));
    const g = grid(c.shape);
    if (!g) return null;
    const r = g.coords.length;
    const strides = c.shape.length ? c.strides : c.strides.map(() => [0]);
    const tn = ops.map((_, k) => `t${k}`), on = ops.map((_, k) => `o${k}`);
    const sn = ops.flatMap((_, k) => Array.from({ length: r }, (_, i) => `s${k}_${i}`));
    const key = `ew:${name}:${n}:${r}`;
    const src = () => fn([...tn, ...on, ...sn, ...g.foldArgs], [
      g.pre,
      ...ops.map((_, k) => `const v${k} = t${k}[${indexExpr(k, g.coords)}];`),
      e.pre ?? '',
      `return ${e.expr};`,
    ].join('\n'));
    const args: (number | GpuData)[] = [...ops.map((o) => o.data), ...ops.map((o) => o.offset), ...strides.flat(), ...g.foldVals];
    const out = dev().run(key, src, types(tn, [...on, ...sn, ...g.foldArgs]), g.output, args, dtype);
    return wrap(out, shape);
  } finally {
    done(temps);
  }
}

/** gpujs `copy`: a contiguous device copy. */
export function copyGpu(x: Tensor): Tensor {
  if (x.dtype === 'f64') return fallback('copy', 'f64', () => copyCpu(x));
  return elementwise('copy', { expr: 'v0' }, [x], x.shape, x.dtype) ?? fallback('copy', 'grid limits', () => copyCpu(x));
}

/** `t` itself if it is a contiguous device tensor from offset 0, else a contiguous device copy. */
function dense(t: Tensor): Tensor {
  if (t.device instanceof GpuData && !t.device.disposed && t.isContiguous() && t.offset >= 0) return t;
  return copyGpu(t);
}

/** gpujs `unary`. */
export function unaryGpu(x: Tensor, op: UnaryOp): Tensor {
  if (!BOOL_RESULT.has(op) && !isFloat(x.dtype) && op !== 'neg' && op !== 'abs' && op !== 'sign' && op !== 'square') {
    throw new DTypeError(`${op}: expected a floating tensor, got ${x.dtype}`);
  }
  if (x.dtype === 'f64') return fallback('unary', 'f64', () => unaryCpu(x, op));
  const e = UNARY[op];
  if (!e) return fallback('unary', `${op} (not expressible: NaN tests are folded by shader compilers)`, () => unaryCpu(x, op));
  return elementwise(`u:${op}`, e, [x], x.shape, BOOL_RESULT.has(op) ? 'bool' : x.dtype) ?? fallback('unary', 'grid limits', () => unaryCpu(x, op));
}

/** gpujs `binary`. */
export function binaryGpu(a: Tensor, b: Tensor, op: BinaryOp): Tensor {
  if (a.dtype !== b.dtype) throw new DTypeError(`${op}: operands have different dtypes (${a.dtype} and ${b.dtype}); cast one first`);
  const shape = broadcastShapes(a.shape, b.shape, op);
  if (a.dtype === 'f64') return fallback('binary', 'f64', () => binaryCpu(a, b, op));
  if (a.dtype === 'i32' && (op === 'div' || op === 'pow')) return fallback('binary', `i32 ${op}`, () => binaryCpu(a, b, op));
  return elementwise(`b:${op}`, BINARY[op], [a, b], shape, BOOL_RESULT.has(op) ? 'bool' : a.dtype) ?? fallback('binary', 'grid limits', () => binaryCpu(a, b, op));
}

/** gpujs `where`. */
export function whereGpu(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  if (a.dtype !== b.dtype) throw new DTypeError(`where: branches have different dtypes (${a.dtype} and ${b.dtype})`);
  const shape = broadcastShapes(broadcastShapes(cond.shape, a.shape, 'where'), b.shape, 'where');
  if (a.dtype === 'f64' || cond.dtype === 'f64') return fallback('where', 'f64', () => whereCpu(cond, a, b));
  return elementwise('where', { expr: '(v0 !== 0 ? v1 : v2)' }, [cond, a, b], shape, a.dtype) ?? fallback('where', 'grid limits', () => whereCpu(cond, a, b));
}

/** gpujs `cast` (to f64: the CPU, f64 being a CPU feature). */
export function castGpu(x: Tensor, dtype: DType): Tensor {
  // f64 tensors only exist on the host: a cast from f64 is a host conversion (the result is
  // uploaded when a kernel uses it), a cast to f64 reads the values back. Neither is a fallback.
  if (dtype === 'f64' || x.dtype === 'f64') return castCpu(x, dtype);
  const expr = dtype === 'bool' ? '(v0 !== 0 ? 1 : 0)' : dtype === 'i32' ? '(v0 < 0 ? Math.ceil(v0) : Math.floor(v0))' : 'v0';
  return elementwise(`cast:${dtype}`, { expr }, [x], x.shape, dtype) ?? fallback('cast', 'grid limits', () => castCpu(x, dtype));
}

// ---- reductions -------------------------------------------------------------------------------

/** Kept / reduced split of `x`'s axes, coalesced. */
function splitAxes(x: Tensor, xo: Operand, axes: readonly number[]) {
  const keptAxes = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const kept = coalesce(keptAxes.map((a) => x.shape[a]), [keptAxes.map((a) => xo.strides[a])]);
  const red = coalesce(axes.map((a) => x.shape[a]), [axes.map((a) => xo.strides[a])]);
  return { keptAxes, kept, red };
}

/**
 * A kernel with one output per kept position that loops over the reduced axes (at most two after
 * coalescing; more are made contiguous first). `body(idx)` gets the inline index expression of
 * element (i, j) of the reduced block and returns the kernel body after the prelude.
 */
function rowKernel(name: string, x: Tensor, axes: readonly number[], outShape: readonly number[], dtype: DType, body: (at: (i: string, j: string) => string) => string): Tensor | null {
  const temps: GpuData[] = [];
  try {
    let xo = operandOf(x, temps);
    let { kept, red } = splitAxes(x, xo, axes);
    if (red.shape.length > 2) {
      // make the reduced block contiguous: copy the view [kept..., reduced...]
      const keptAxes = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
      const perm = [...keptAxes, ...axes];
      const pv = new Tensor(xo.data, perm.map((a) => x.shape[a]), perm.map((a) => xo.strides[a]), xo.offset);
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
    const R = [...red.shape, 1, 1].slice(0, 2), RS = [...red.strides[0], 0, 0].slice(0, 2);
    const sn = Array.from({ length: r }, (_, i) => `s0_${i}`);
    const base = indexExpr(0, g.coords);
    const at = (i: string, j: string) => `t0[${base} + ${i} * rs0 + ${j} * rs1]`;
    const key = `row:${name}:${r}`;
    const src = () => fn(['t0', 'o0', ...sn, 'rn0', 'rs0', 'rn1', 'rs1', ...g.foldArgs], [g.pre, body(at)].join('\n'));
    const out = dev().run(key, src, types(['t0'], ['o0', ...sn, 'rn0', 'rs0', 'rn1', 'rs1', ...g.foldArgs]), g.output,
      [xo.data, xo.offset, ...ks, R[0], RS[0], R[1], RS[1], ...g.foldVals], dtype);
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
    [`let best = ${at('0', '0')};`, 'let arg = 0;', loop2(`const v = ${at('i', 'j')};\nif (v > best) {\nbest = v;\narg = i;\n}`), 'return arg;'].join('\n'));
  return r ?? fallback('argmax', 'grid limits', cpu);
}

/** gpujs `softmax`: one kernel for each row's log-sum-exp, one elementwise kernel for the output. */
export function softmaxGpu(x: Tensor, log: boolean): Tensor {
  if (!isFloat(x.dtype)) throw new DTypeError(`softmax: expected a floating tensor, got ${x.dtype}`);
  const cpu = () => softmaxCpu(x, log);
  if (x.dtype === 'f64') return fallback('softmax', 'f64', cpu);
  if (x.size === 0) return emptyHost(x.shape, x.dtype);
  const nd = x.ndim;
  if (nd === 0) return fallback('softmax', '0-d input', cpu);
  const lseShape = x.shape.map((d, i) => (i === nd - 1 ? 1 : d));
  const lse = rowKernel('lse', x, [nd - 1], lseShape, 'f32', (at) => [
    `let m = ${at('0', '0')};`, loop2(`m = Math.max(m, ${at('i', 'j')});`),
    'let s = 0;', loop2(`s += Math.exp(${at('i2', 'j2')} - m);`, '2'), 'return m + Math.log(s);',
  ].join('\n'));
  if (!lse) return fallback('softmax', 'grid limits', cpu);
  try {
    const out = elementwise(log ? 'logsoftmax' : 'softmax', { expr: log ? 'v0 - v1' : 'Math.exp(v0 - v1)' }, [x, lse], x.shape, x.dtype);
    return out ?? fallback('softmax', 'grid limits', cpu);
  } finally {
    releaseData(lse.device as GpuData);
  }
}

// ---- matmul -----------------------------------------------------------------------------------

/** gpujs `matmul`: one thread per output element, a K loop, batch axes folded into z. */
export function matmulGpu(a: Tensor, b: Tensor): Tensor {
  if (a.dtype !== b.dtype || !isFloat(a.dtype)) throw new DTypeError(`matmul: expected two floating tensors of one dtype, got ${a.dtype} and ${b.dtype}`);
  if (a.ndim < 2 || b.ndim < 2) throw new ShapeError(`matmul: operands need at least 2 dimensions, got [${a.shape}] and [${b.shape}]`);
  const M = a.shape[a.ndim - 2], K = a.shape[a.ndim - 1], K2 = b.shape[b.ndim - 2], N = b.shape[b.ndim - 1];
  if (K !== K2) throw new ShapeError(`matmul: inner dimensions differ: [${a.shape}] · [${b.shape}] (${K} vs ${K2})`);
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'matmul');
  const cpu = () => matmulCpu(a, b);
  if (a.dtype === 'f64') return fallback('matmul', 'f64', cpu);
  const outShape = [...batch, M, N];
  if (sizeOf(outShape) === 0) return emptyHost(outShape, a.dtype);
  if (K === 0) return fallback('matmul', 'K = 0', cpu);
  if (M > MAX_XY || N > MAX_XY) return fallback('matmul', 'grid limits', cpu);
  const temps: GpuData[] = [];
  try {
    const A = operandOf(a, temps), B = operandOf(b, temps);
    const ab = bstrides({ shape: a.shape.slice(0, -2) }, A.strides.slice(0, -2), batch);
    const bb = bstrides({ shape: b.shape.slice(0, -2) }, B.strides.slice(0, -2), batch);
    const c = coalesce(batch, [ab, bb]);
    const nb = c.shape.length;
    let coords: string[], pre = '', foldArgs: string[] = [], foldVals: number[] = [];
    const Z = sizeOf(c.shape);
    if (Z > MAX_Z) return fallback('matmul', 'grid limits', cpu);
    if (nb <= 1) coords = nb === 1 ? ['this.thread.z'] : [];
    else {
      const g = grid([...c.shape, 1, 1])!; // folds the batch axes into z
      coords = g.coords.slice(0, nb);
      pre = g.pre;
      foldArgs = g.foldArgs;
      foldVals = g.foldVals;
    }
    const abn = coords.map((_, i) => `ab${i}`), bbn = coords.map((_, i) => `bb${i}`);
    const aIdx = ['o0', 'this.thread.y * am', 'k * ak', ...coords.map((cc, i) => `${cc} * ab${i}`)].join(' + ');
    const bIdx = ['o1', 'k * bk', 'this.thread.x * bn', ...coords.map((cc, i) => `${cc} * bb${i}`)].join(' + ');
    const key = `matmul:${coords.length}`;
    const ints = ['o0', 'o1', 'am', 'ak', 'bk', 'bn', 'K', ...abn, ...bbn, ...foldArgs];
    const src = () => fn(['t0', 't1', ...ints], [pre, 'let acc = 0;', `for (let k = 0; k < K; k++) {\nacc += t0[${aIdx}] * t1[${bIdx}];\n}`, 'return acc;'].join('\n'));
    const nd = a.ndim, mdb = b.ndim;
    const args = [A.data, B.data, A.offset, B.offset, A.strides[nd - 2], A.strides[nd - 1], B.strides[mdb - 2], B.strides[mdb - 1], K,
      ...(nb ? c.strides[0] : []), ...(nb ? c.strides[1] : []), ...foldVals];
    const out = dev().run(key, src, types(['t0', 't1'], ints), [N, M, Math.max(1, Z)], args, a.dtype);
    return wrap(out, outShape);
  } finally {
    done(temps);
  }
}

// ---- indexing ---------------------------------------------------------------------------------

function split3(shape: readonly number[], axis: number): [number, number, number] {
  return [sizeOf(shape.slice(0, axis)), shape[axis], sizeOf(shape.slice(axis + 1))];
}

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
  if (t.device instanceof GpuData && !t.device.disposed && t.isContiguous() && t.offset >= 0) return { data: t.device, offset: t.offset, strides: [...t.strides] };
  if (!(t.device instanceof GpuData) && t.isContiguous()) return operandOf(t, temps);
  const c = copyGpu(t);
  temps.push(c.device as GpuData);
  return { data: c.device as GpuData, offset: 0, strides: [...c.strides] };
}

/** gpujs `indexSelect`. */
export function indexSelectGpu(x: Tensor, axis: number, index: Tensor): Tensor {
  if (index.ndim !== 1) throw new ShapeError(`indexSelect: index must be 1-D, got shape [${index.shape}]`);
  if (index.dtype !== 'i32') throw new DTypeError(`indexSelect: index must be i32, got ${index.dtype}`);
  const [outer, n, inner] = split3(x.shape, axis);
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
    const X = denseOperand(x, temps), I = operandOf(index, temps);
    const src = () => fn(['t0', 't1', 'o0', 'o1', 'is', 'n', 'inner'], 'return t0[o0 + (this.thread.z * n + (t1[o1 + this.thread.y * is] | 0)) * inner + this.thread.x];');
    const out = dev().run('indexSelect', src, types(['t0', 't1'], ['o0', 'o1', 'is', 'n', 'inner']), [inner, m, outer], [X.data, I.data, X.offset, I.offset, I.strides[0], n, inner], x.dtype);
    return wrap(out, shape);
  } finally {
    done(temps);
  }
}

/** gpujs `indexAdd`: the index is turned into per-row lists on the host (CSR), so no atomics are needed. */
export function indexAddGpu(shape: readonly number[], axis: number, index: Tensor, src: Tensor): Tensor {
  if (index.dtype !== 'i32') throw new DTypeError(`indexAdd: index must be i32, got ${index.dtype}`);
  const [outer, n, inner] = split3(shape, axis);
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
  const ptr = new Float32Array(n + 1), cols = new Float32Array(Math.max(1, m));
  for (let i = 0; i < m; i++) ptr[idx[i] + 1]++;
  for (let r = 0; r < n; r++) ptr[r + 1] += ptr[r];
  const fill = ptr.slice(0, n);
  for (let i = 0; i < m; i++) cols[fill[idx[i]]++] = i;
  const temps: GpuData[] = [];
  try {
    const S = denseOperand(src, temps);
    const P = dev().upload(ptr, 'i32'), C = dev().upload(cols, 'i32');
    temps.push(P, C);
    const body = ['let acc = 0;', 'const lo = t1[this.thread.y];', 'const cnt = t1[this.thread.y + 1] - lo;',
      'for (let q = 0; q < (cnt | 0); q++) {', 'acc += t0[o0 + (this.thread.z * m + (t2[(lo | 0) + q] | 0)) * inner + this.thread.x];', '}', 'return acc;'].join('\n');
    const out = dev().run('indexAdd', () => fn(['t0', 't1', 't2', 'o0', 'm', 'inner'], body), types(['t0', 't1', 't2'], ['o0', 'm', 'inner']),
      [inner, n, outer], [S.data, P, C, S.offset, m, inner], src.dtype);
    return wrap(out, shape);
  } finally {
    done(temps);
  }
}

function checkGatherShapes(op: string, xShape: readonly number[], index: Tensor, axis: number): void {
  if (index.ndim !== xShape.length || index.shape.some((d, i) => i !== axis && d !== xShape[i])) {
    throw new ShapeError(`${op}: index shape [${index.shape}] must equal [${xShape}] except on axis ${axis}`);
  }
}

/** gpujs `gather`. */
export function gatherGpu(x: Tensor, axis: number, index: Tensor): Tensor {
  checkGatherShapes('gather', x.shape, index, axis);
  if (index.dtype !== 'i32') throw new DTypeError(`gather: index must be i32, got ${index.dtype}`);
  const [outer, n, inner] = split3(x.shape, axis);
  checkRange(hostIndex(index), n, 'gather', axis);
  const cpu = () => gatherCpu(x, axis, index);
  if (x.dtype === 'f64') return fallback('gather', 'f64', cpu);
  const m = index.shape[axis];
  if (index.size === 0) return emptyHost(index.shape, x.dtype);
  if (!fits3(inner, m, outer)) return fallback('gather', 'grid limits', cpu);
  const temps: GpuData[] = [];
  try {
    const X = denseOperand(x, temps), I = denseOperand(index, temps);
    const src = () => fn(['t0', 't1', 'o0', 'o1', 'n', 'm', 'inner'],
      'return t0[o0 + (this.thread.z * n + (t1[o1 + (this.thread.z * m + this.thread.y) * inner + this.thread.x] | 0)) * inner + this.thread.x];');
    const out = dev().run('gather', src, types(['t0', 't1'], ['o0', 'o1', 'n', 'm', 'inner']), [inner, m, outer], [X.data, I.data, X.offset, I.offset, n, m, inner], x.dtype);
    return wrap(out, index.shape);
  } finally {
    done(temps);
  }
}

/** gpujs `scatterAdd`: each output element sums the sources whose index points at it. */
export function scatterAddGpu(shape: readonly number[], axis: number, index: Tensor, src: Tensor): Tensor {
  checkGatherShapes('scatterAdd', shape, index, axis);
  if (index.dtype !== 'i32') throw new DTypeError(`scatterAdd: index must be i32, got ${index.dtype}`);
  const [outer, n, inner] = split3(shape, axis);
  checkRange(hostIndex(index), n, 'scatterAdd', axis);
  const cpu = () => scatterAddCpu(shape, axis, index, src);
  if (src.dtype === 'f64') return fallback('scatterAdd', 'f64', cpu);
  const m = index.shape[axis];
  if (sizeOf(shape) === 0) return emptyHost(shape, src.dtype);
  if (!fits3(inner, n, outer)) return fallback('scatterAdd', 'grid limits', cpu);
  const temps: GpuData[] = [];
  try {
    const S = denseOperand(src, temps), I = denseOperand(index, temps);
    const at = '(this.thread.z * m + i) * inner + this.thread.x';
    const body = ['let acc = 0;', 'for (let i = 0; i < m; i++) {', `if ((t1[o1 + ${at}] | 0) === this.thread.y) {`, `acc += t0[o0 + ${at}];`, '}', '}', 'return acc;'].join('\n');
    const out = dev().run('scatterAdd', () => fn(['t0', 't1', 'o0', 'o1', 'm', 'inner'], body), types(['t0', 't1'], ['o0', 'o1', 'm', 'inner']),
      [inner, n, outer], [S.data, I.data, S.offset, I.offset, m, inner], src.dtype);
    return wrap(out, shape);
  } finally {
    done(temps);
  }
}

// ---- concat, pad ------------------------------------------------------------------------------

const CONCAT_MAX = 6;

/** gpujs `concat`: up to six inputs per kernel, more in groups. */
export function concatGpu(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new ShapeError('concat: no tensors given');
  const first = xs[0];
  for (const t of xs) {
    if (t.dtype !== first.dtype) throw new DTypeError(`concat: mixed dtypes ${first.dtype} and ${t.dtype}`);
    if (t.ndim !== first.ndim || t.shape.some((d, i) => i !== axis && d !== first.shape[i])) {
      throw new ShapeError(`concat: shapes [${first.shape}] and [${t.shape}] differ outside axis ${axis}`);
    }
  }
  const cpu = () => concatCpu(xs, axis);
  if (first.dtype === 'f64') return fallback('concat', 'f64', cpu);
  const shape = [...first.shape];
  shape[axis] = xs.reduce((n, t) => n + t.shape[axis], 0);
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
  const [outer, total, inner] = split3(shape, axis);
  const flat = outer === 1;
  if (!flat && !fits3(inner, total, outer)) return fallback('concat', 'grid limits', cpu);
  const temps: GpuData[] = [];
  try {
    const ops = parts.map((t) => denseOperand(t, temps));
    const k = ops.length;
    const tn = ops.map((_, i) => `t${i}`), on = ops.map((_, i) => `o${i}`);
    const bn = ops.map((_, i) => `e${i}`), ln = ops.map((_, i) => `l${i}`);
    const bounds: number[] = [], lens: number[] = [];
    let acc = 0;
    for (const t of parts) {
      lens.push(t.shape[axis]);
      bounds.push(acc);
      acc += t.shape[axis];
    }
    let expr = '';
    for (let i = k - 1; i >= 0; i--) {
      const read = flat ? `t${i}[o${i} + this.thread.x - e${i} * inner]` : `t${i}[o${i} + (this.thread.z * l${i} + this.thread.y - e${i}) * inner + this.thread.x]`;
      const lim = flat ? `this.thread.x < (e${i} + l${i}) * inner` : `this.thread.y < e${i} + l${i}`;
      expr = i === k - 1 ? read : `(${lim} ? ${read} : ${expr})`;
    }
    const key = `concat:${k}:${flat ? 1 : 3}`;
    const ints = [...on, ...bn, ...ln, 'inner'];
    const out = dev().run(key, () => fn([...tn, ...ints], `return ${expr};`), types(tn, ints), flat ? [total * inner] : [inner, total, outer],
      [...ops.map((o) => o.data), ...ops.map((o) => o.offset), ...bounds, ...lens, inner], first.dtype);
    return wrap(out, shape);
  } finally {
    done(temps);
  }
}

/** gpujs `pad` (negative amounts crop). */
export function padGpu(x: Tensor, pads: readonly (readonly [number, number])[], value: number): Tensor {
  if (pads.length !== x.ndim) throw new ShapeError(`pad: ${pads.length} pad pairs for a tensor of ${x.ndim} dimensions`);
  const shape = x.shape.map((d, i) => d + pads[i][0] + pads[i][1]);
  if (shape.some((d) => d < 0)) throw new ShapeError(`pad: pads [${pads.map((p) => `[${p}]`)}] crop [${x.shape}] below zero`);
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
    const out = dev().run(`pad:${r}`, () => fn(['t0', ...ints, 'value'], [g.pre, `return (${conds}) ? t0[${idx}] : value;`].join('\n')),
      types(['t0'], ints, ['value']), g.output,
      [X.data, X.offset, ...Array.from({ length: r }, (_, i) => [X.strides[i], pads[i][0], x.shape[i]]).flat(), ...g.foldVals, value], x.dtype);
    return wrap(out, shape);
  } finally {
    done(temps);
  }
}

// ---- fftConv ----------------------------------------------------------------------------------

/**
 * gpujs `fftConv`: the windowed linear convolution evaluated directly, one thread per output
 * element summing over the overlap `j ∈ [max(0, m−Lx+1), min(Lk−1, m)]` (f32 accumulation).
 */
export function fftConvGpu(x: Tensor, k: Tensor, start: number, length: number): Tensor {
  if (x.dtype !== k.dtype || (x.dtype !== 'f32' && x.dtype !== 'f64')) {
    throw new DTypeError(`fftConv: expected two floating tensors of one dtype, got ${x.dtype} and ${k.dtype}`);
  }
  if (x.ndim < 1 || k.ndim < 1) throw new ShapeError('fftConv: inputs need a last (time) axis');
  if (!Number.isInteger(length) || length < 0) throw new ShapeError(`fftConv: invalid output length ${length}`);
  const cpu = () => fftConvCpu(x, k, start, length);
  if (x.dtype === 'f64') return fallback('fftConv', 'f64', cpu);
  const Lx = x.shape[x.ndim - 1], Lk = k.shape[k.ndim - 1];
  const xLead = x.shape.slice(0, -1), kLead = k.shape.slice(0, -1);
  const outLead = broadcastShapes(xLead, kLead, 'fftConv');
  const shape = [...outLead, length];
  if (sizeOf(shape) === 0) return emptyHost(shape, x.dtype);
  if (Lx === 0 || Lk === 0) return fallback('fftConv', 'empty input', cpu);
  const temps: GpuData[] = [];
  try {
    const X = operandOf(x, temps), K = operandOf(k, temps);
    const c = coalesce(outLead, [bstrides({ shape: xLead }, X.strides.slice(0, -1), outLead), bstrides({ shape: kLead }, K.strides.slice(0, -1), outLead)]);
    const g = grid([...c.shape, length]);
    if (!g) return fallback('fftConv', 'grid limits', cpu);
    const lead = g.coords.slice(0, -1);
    const xi = ['o0', ...lead.map((cc, i) => `${cc} * s0_${i}`)].join(' + ');
    const ki = ['o1', ...lead.map((cc, i) => `${cc} * s1_${i}`)].join(' + ');
    const sn = lead.flatMap((_, i) => [`s0_${i}`, `s1_${i}`]);
    const body = [g.pre, 'const mm = start + this.thread.x;', 'const jlo = Math.max(0, mm - Lx + 1);', 'const jhi = Math.min(Lk - 1, mm);', 'let acc = 0;',
      'for (let q = 0; q < (jhi - jlo + 1 | 0); q++) {', `acc += t1[${ki} + ((jlo | 0) + q) * ks] * t0[${xi} + (start + this.thread.x - (jlo | 0) - q) * xs];`, '}', 'return acc;'].join('\n');
    const ints = ['o0', 'o1', ...sn, 'xs', 'ks', 'start', 'Lx', 'Lk', ...g.foldArgs];
    const out = dev().run(`conv:${g.coords.length}`, () => fn(['t0', 't1', ...ints], body), types(['t0', 't1'], ints), g.output,
      [X.data, K.data, X.offset, K.offset, ...lead.flatMap((_, i) => [c.strides[0][i], c.strides[1][i]]), X.strides[x.ndim - 1], K.strides[k.ndim - 1], start, Lx, Lk, ...g.foldVals], x.dtype);
    return wrap(out, shape);
  } finally {
    done(temps);
  }
}

/** Every primitive kernel of the gpujs backend. */
export const gpujsKernels: Kernels = {
  unary: unaryGpu, binary: binaryGpu, where: whereGpu, reduce: reduceGpu, argmax: argmaxGpu, softmax: softmaxGpu,
  matmul: matmulGpu, indexSelect: indexSelectGpu, indexAdd: indexAddGpu, gather: gatherGpu, scatterAdd: scatterAddGpu,
  concat: concatGpu, pad: padGpu, cast: castGpu, copy: copyGpu, fftConv: fftConvGpu,
};
