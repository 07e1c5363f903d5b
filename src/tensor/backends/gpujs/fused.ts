/**
 * gpujs fused kernels (see `FusedKernels` in backend.ts): the EMA kernel build, its
 * vector-Jacobian product, and the softmax backward, all on the device (f32 accumulation).
 * Without these the registry's generic implementations would read device data back.
 */
import { ShapeError } from '../../errors.js';
import { checkCoefQ, checkEmaGrad, checkSoftmaxGrad } from '../checks.js';
import type { AdamHyper } from '../../backend.js';
import type { Tensor } from '../../tensor.js';
import { adamUpdateGeneric } from '../generic-fused.js';
import { emaKernelCpu, emaKernelGradCpu, softmaxGradCpu } from '../cpu/fused.js';
import { GpuData, keep, releaseData } from './device.js';
import { copyGpu, elementwise } from './elementwise.js';
import { dev, done, emptyHost, fallback, fn, MAX_XY, operandOf, types, wrap } from './launch.js';
import { reduceGpu } from './reduce.js';

/**
 * gpujs `emaKernel`: one thread per output `k[d, l] = Σ_n coef[d, n]·exp(l·ln q[d, n])`
 * (coef, q `[D, N]` → `[D, length]`).
 */
export function emaKernelGpu(coef: Tensor, q: Tensor, length: number): Tensor {
  checkCoefQ(coef, q, 'emaKernel');
  if (!Number.isInteger(length) || length < 0) throw new ShapeError(`emaKernel: invalid length ${length}`);
  const cpu = () => emaKernelCpu(coef, q, length);
  if (coef.dtype === 'f64') return fallback('emaKernel', 'f64', cpu);
  const [D, N] = coef.shape;
  if (D * length === 0) return emptyHost([D, length], coef.dtype);
  if (N === 0) return fallback('emaKernel', 'N = 0', cpu);
  if (D > MAX_XY || length > MAX_XY) return fallback('emaKernel', 'grid limits', cpu);
  const temps: GpuData[] = [];
  try {
    const C = operandOf(coef, temps),
      Q = operandOf(q, temps);
    const body = [
      'const l = this.thread.x;', // a declared variable: f32
      'let acc = 0;',
      'for (let n = 0; n < N; n++) {',
      'acc += t0[o0 + this.thread.y * c0 + n * c1] * Math.exp(l * Math.log(t1[o1 + this.thread.y * q0 + n * q1]));',
      '}',
      'return acc;',
    ].join('\n');
    const ints = ['o0', 'o1', 'c0', 'c1', 'q0', 'q1', 'N'];
    const out = dev().run(
      'emaKernel',
      () => fn(['t0', 't1', ...ints], body),
      types(['t0', 't1'], ints),
      [length, D],
      [C.data, Q.data, C.offset, Q.offset, ...C.strides, ...Q.strides, N],
      coef.dtype,
    );
    return wrap(out, [D, length]);
  } finally {
    done(temps);
  }
}

/**
 * gpujs `emaKernelGrad`: one thread per (part, d, n) looping over l:
 * `[2, D, N]` = (`Σ_l g·q^l`, `coef · Σ_l g · l · q^(l−1)`).
 */
export function emaKernelGradGpu(coef: Tensor, q: Tensor, g: Tensor): Tensor {
  checkCoefQ(coef, q, 'emaKernelGrad');
  checkEmaGrad(coef, g);
  const [D, N] = coef.shape;
  const cpu = () => emaKernelGradCpu(coef, q, g);
  if (coef.dtype === 'f64') return fallback('emaKernelGrad', 'f64', cpu);
  if (D * N === 0) return emptyHost([2, D, N], coef.dtype);
  if (g.shape[1] === 0) return fallback('emaKernelGrad', 'L = 0', cpu);
  if (D > MAX_XY || N > MAX_XY) return fallback('emaKernelGrad', 'grid limits', cpu);
  const temps: GpuData[] = [];
  try {
    const C = operandOf(coef, temps),
      Q = operandOf(q, temps),
      G = operandOf(g, temps);
    const body = [
      'const qv = t1[o1 + this.thread.y * q0 + this.thread.x * q1];',
      'const lq = Math.log(qv);',
      'let s0 = 0;',
      'let s1 = 0;',
      'for (let l = 0; l < L; l++) {',
      'const v = t2[o2 + this.thread.y * g0 + l * g1] * Math.exp(l * lq);',
      's0 += v;',
      's1 += l * v;',
      '}',
      'if (this.thread.z == 0) {',
      'return s0;',
      '}',
      'return t0[o0 + this.thread.y * c0 + this.thread.x * c1] * s1 / qv;',
    ].join('\n');
    const ints = ['o0', 'o1', 'o2', 'c0', 'c1', 'q0', 'q1', 'g0', 'g1', 'L'];
    const out = dev().run(
      'emaKernelGrad',
      () => fn(['t0', 't1', 't2', ...ints], body),
      types(['t0', 't1', 't2'], ints),
      [N, D, 2],
      [C.data, Q.data, G.data, C.offset, Q.offset, G.offset, ...C.strides, ...Q.strides, ...G.strides, g.shape[1]],
      coef.dtype,
    );
    return wrap(out, [2, D, N]);
  } finally {
    done(temps);
  }
}

/**
 * gpujs `softmaxGrad` along the last axis: a row sum (`Σ y·g`, or `Σ g` for log-softmax) and one
 * elementwise kernel, `y ⊙ (g − s)` or `g − e^y · s`.
 */
export function softmaxGradGpu(y: Tensor, g: Tensor, log: boolean): Tensor {
  checkSoftmaxGrad(y, g);
  const cpu = () => softmaxGradCpu(y, g, log);
  if (y.dtype === 'f64') return fallback('softmaxGrad', 'f64', cpu);
  if (y.size === 0) return emptyHost(y.shape, y.dtype);
  const last = y.ndim - 1;
  const prod = log ? null : elementwise('mul', { expr: 'v0 * v1' }, [y, g], y.shape, y.dtype);
  if (!log && !prod) return fallback('softmaxGrad', 'grid limits', cpu);
  const temps: GpuData[] = prod ? [prod.device as GpuData] : [];
  try {
    const s = reduceGpu(prod ?? g, 'sum', [last], true); // rows × 1
    if (s.device) temps.push(s.device as GpuData);
    const out = elementwise(log ? 'softmaxGradLog' : 'softmaxGrad', { expr: log ? 'v1 - Math.exp(v0) * v2' : 'v0 * (v1 - v2)' }, [y, g, s], y.shape, y.dtype);
    return out ?? fallback('softmaxGrad', 'grid limits', cpu);
  } finally {
    done(temps);
  }
}

/** The three Adam outputs, each one gpu.js kernel over the flat parameter (`t_k[i]`: operand k at flat index i). */
const ADAM_EXPR = {
  m: 'b1 * t2[i] + (1 - b1) * t1[i]',
  v: 'b2 * t3[i] + (1 - b2) * t1[i] * t1[i]',
  p: '(t0[i] - decay * t0[i]) - stepSize * (b1 * t2[i] + (1 - b1) * t1[i]) / (Math.sqrt(b2 * t3[i] + (1 - b2) * t1[i] * t1[i]) + eps)',
};

/**
 * gpujs `adamUpdate`: three elementwise kernels (θ', m', v') with the hyper-parameters as kernel
 * arguments, so an update moves nothing between host and device. The flat index is split over
 * x (the last axis) and y (the rest) to stay within the dispatch grid. The results outlive any
 * `tidy` scope (they are the new parameter and state); the device buffers of the old θ, m, v are
 * freed (the optimizer rebinds the parameter right away).
 */
export function adamUpdateGpu(p: Tensor, g: Tensor, m: Tensor, v: Tensor, h: AdamHyper): [Tensor, Tensor, Tensor] {
  const n = p.size;
  const W = p.ndim ? p.shape[p.ndim - 1] : 1,
    H = W ? n / W : 0;
  for (const t of [g, m, v])
    if (t.size !== n || t.dtype !== p.dtype)
      throw new ShapeError(`adamUpdate: [${t.shape}] (${t.dtype}) does not match the parameter [${p.shape}] (${p.dtype})`);
  if (p.dtype === 'f64' || n === 0 || W > MAX_XY || H > MAX_XY)
    return fallback('adamUpdate', p.dtype === 'f64' ? 'f64' : 'shape', () => adamUpdateGeneric(p, g, m, v, h));
  const temps: GpuData[] = [];
  try {
    const flat = (t: Tensor) => {
      const c = t.isContiguous() ? t : copyGpu(t);
      if (c !== t && c.device) temps.push(c.device as GpuData);
      const o = operandOf(c, temps);
      return { data: o.data, offset: o.offset };
    };
    const ops = [flat(p), flat(g), flat(m), flat(v)];
    const floats = ['b1', 'b2', 'eps', 'decay', 'stepSize'];
    const ints = ['o0', 'o1', 'o2', 'o3', 'W'];
    const run = (k: keyof typeof ADAM_EXPR) => {
      // the flat index stays inline (a declared variable would be f32)
      const body = `return ${ADAM_EXPR[k].replace(/t(\d)\[i\]/g, (_, d) => `t${d}[o${d} + this.thread.y * W + this.thread.x]`)};`;
      const out = dev().run(
        `adam:${k}`,
        () => fn(['t0', 't1', 't2', 't3', ...ints, ...floats], body),
        types(['t0', 't1', 't2', 't3'], ints, floats),
        [W, H],
        [...ops.map((o) => o.data), ...ops.map((o) => o.offset), W, h.beta1, h.beta2, h.eps, h.decay, h.stepSize],
        p.dtype,
      );
      return wrap(out, p.shape);
    };
    const out: [Tensor, Tensor, Tensor] = [keep(run('p')), keep(run('m')), keep(run('v'))];
    // the old θ, m, v are consumed: freed once the launches that read them are queued
    for (const t of [p, m, v]) if (t.device instanceof GpuData) releaseData(t.device);
    return out;
  } finally {
    done(temps);
  }
}
