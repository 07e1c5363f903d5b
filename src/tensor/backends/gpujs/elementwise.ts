/**
 * gpujs elementwise kernels: unary and binary ops, `where`, `cast` and `copy`, all through one
 * generator ({@link elementwise}) that reads every input through its broadcast strides.
 */
import type { BinaryOp, UnaryOp } from '../../backend.js';
import { isFloat, type DType } from '../../dtype.js';
import { DTypeError } from '../../errors.js';
import { broadcastShapes, sizeOf } from '../../shape.js';
import type { Tensor } from '../../tensor.js';
import { binaryCpu, castCpu, copyCpu, unaryCpu, whereCpu } from '../cpu/elementwise.js';
import type { GpuData } from './device.js';
import { bstrides, coalesce, dev, done, emptyHost, fallback, fn, grid, indexExpr, operandOf, types, wrap } from './launch.js';

/** Statements that set `out` to erf(x) (Abramowitz–Stegun 7.1.26, |error| < 1.5e-7). */
const ERF = (x: string, out: string) =>
  `const ea_${out} = Math.abs(${x});
const et_${out} = 1 / (1 + 0.3275911 * ea_${out});
const ey_${out} = 1 - ((((1.061405429 * et_${out} - 1.453152027) * et_${out} + 1.421413741) * et_${out} - 0.284496736) * et_${out} + ` +
  `0.254829592) * et_${out} * Math.exp(-ea_${out} * ea_${out});
const ${out} = ${x} < 0 ? -ey_${out} : ey_${out};`;

/** A kernel expression over the inputs `v0, v1, …`, with optional prelude statements. */
export interface Expr {
  pre?: string;
  expr: string;
}

const UNARY: Partial<Record<UnaryOp, Expr>> = {
  neg: { expr: '-v0' },
  exp: { expr: 'Math.exp(v0)' },
  log: { expr: 'Math.log(v0)' },
  sqrt: { expr: 'Math.sqrt(v0)' },
  rsqrt: { expr: '1 / Math.sqrt(v0)' },
  sigmoid: { expr: '1 / (1 + Math.exp(-v0))' },
  tanh: { expr: 'Math.tanh(Math.min(Math.max(v0, -15), 15))' },
  erf: { pre: ERF('v0', 'erfv'), expr: 'erfv' },
  abs: { expr: 'Math.abs(v0)' },
  relu: { expr: '(v0 > 0 ? v0 : 0)' },
  sign: { expr: 'Math.sign(v0)' },
  sin: { expr: 'Math.sin(v0)' },
  cos: { expr: 'Math.cos(v0)' },
  square: { expr: 'v0 * v0' },
  recip: { expr: '1 / v0' },
  silu: { expr: 'v0 / (1 + Math.exp(-v0))' },
  gelu: { pre: `const gx = v0 * 0.7071067811865476;\n${ERF('gx', 'erfv')}`, expr: '0.5 * v0 * (1 + erfv)' },
  geluGrad: { pre: `const gx = v0 * 0.7071067811865476;\n${ERF('gx', 'erfv')}`, expr: '0.5 * (1 + erfv) + v0 * Math.exp(-0.5 * v0 * v0) * 0.3989422804014327' },
  step: { expr: '(v0 > 0 ? 1 : 0)' },
  not: { expr: '(v0 !== 0 ? 0 : 1)' },
};

const BINARY: Record<BinaryOp, Expr> = {
  add: { expr: 'v0 + v1' },
  sub: { expr: 'v0 - v1' },
  mul: { expr: 'v0 * v1' },
  div: { expr: 'v0 / v1' },
  pow: {
    pre: 'const pa = Math.pow(Math.abs(v0), v1);\nconst pf = Math.floor(v1);\nconst ph = pf * 0.5;\nconst podd = Math.abs(ph - Math.floor(ph)) > 0.25 ? 1 : 0;',
    expr: '(v0 < 0 ? (v1 === pf ? (podd > 0 ? -pa : pa) : Math.sqrt(v0)) : pa)',
  },
  max: { expr: '(v0 >= v1 ? v0 : v1)' },
  min: { expr: '(v0 <= v1 ? v0 : v1)' },
  eq: { expr: '(v0 === v1 ? 1 : 0)' },
  ne: { expr: '(v0 !== v1 ? 1 : 0)' },
  lt: { expr: '(v0 < v1 ? 1 : 0)' },
  le: { expr: '(v0 <= v1 ? 1 : 0)' },
  gt: { expr: '(v0 > v1 ? 1 : 0)' },
  ge: { expr: '(v0 >= v1 ? 1 : 0)' },
  and: { expr: '((v0 !== 0 && v1 !== 0) ? 1 : 0)' },
  or: { expr: '((v0 !== 0 || v1 !== 0) ? 1 : 0)' },
};

const BOOL_RESULT = new Set<string>(['eq', 'ne', 'lt', 'le', 'gt', 'ge', 'and', 'or', 'not', 'isfinite']);

/** Launches an elementwise kernel over `inputs` broadcast to `shape`. Null when the grid does not fit. */
export function elementwise(name: string, e: Expr, inputs: readonly Tensor[], shape: readonly number[], dtype: DType): Tensor | null {
  const n = inputs.length;
  if (sizeOf(shape) === 0) return emptyHost(shape, dtype);
  const temps: GpuData[] = [];
  try {
    const ops = inputs.map((t) => operandOf(t, temps));
    const c = coalesce(
      shape,
      ops.map((o, k) => bstrides(inputs[k], o.strides, shape)),
    );
    const g = grid(c.shape);
    if (!g) return null;
    const r = g.coords.length;
    const strides = c.shape.length ? c.strides : c.strides.map(() => [0]);
    const tn = ops.map((_, k) => `t${k}`),
      on = ops.map((_, k) => `o${k}`);
    const sn = ops.flatMap((_, k) => Array.from({ length: r }, (_, i) => `s${k}_${i}`));
    const key = `ew:${name}:${n}:${r}`;
    const src = () =>
      fn(
        [...tn, ...on, ...sn, ...g.foldArgs],
        [g.pre, ...ops.map((_, k) => `const v${k} = t${k}[${indexExpr(k, g.coords)}];`), e.pre ?? '', `return ${e.expr};`].join('\n'),
      );
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
  return (
    elementwise(`b:${op}`, BINARY[op], [a, b], shape, BOOL_RESULT.has(op) ? 'bool' : a.dtype) ?? fallback('binary', 'grid limits', () => binaryCpu(a, b, op))
  );
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
