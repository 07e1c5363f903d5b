/**
 * Fused CPU kernels (see `FusedKernels` in backend.ts): the EMA kernel build and its VJP, and the
 * softmax backward. Plain TypeScript here (the softmax backward also has a SIMD path in simd.ts);
 * each is tested equal to the composition of primitive kernels it replaces
 * (test/tensor/backends/cpu/fused.test.ts).
 */
import { allocate, type FloatStorage } from '../../dtype.js';
import { DTypeError, ShapeError } from '../../errors.js';
import { fromStorage, type Tensor } from '../../tensor.js';
import { copyCpu } from './elementwise.js';
import { runMap } from './simd.js';
import { EMA_CUTOFF } from './wasm/ema.js';
import { simdTuning, wasmArena, wasmRuntime } from './wasm/runtime.js';

/** Contiguous storage of `t` from its first element. */
function dense(t: Tensor): FloatStorage {
  const c = t.isContiguous() ? t : copyCpu(t);
  return c.storage.subarray(c.offset, c.offset + c.size) as FloatStorage;
}

/** Powers q^l are evaluated as exp(l0·ln q)·exp(j·ln q) with l = l0 + j, j < BLOCK (≤ 2 ulp from exp(l·ln q)). */
const BLOCK = 32;

function checkCoefQ(coef: Tensor, q: Tensor, op: string): void {
  if (coef.dtype !== q.dtype || (coef.dtype !== 'f32' && coef.dtype !== 'f64')) throw new DTypeError(`${op}: expected two floating tensors of one dtype, got ${coef.dtype} and ${q.dtype}`);
  if (coef.ndim !== 2 || q.ndim !== 2 || coef.shape[0] !== q.shape[0] || coef.shape[1] !== q.shape[1]) {
    throw new ShapeError(`${op}: coef and q must both be [D, N], got [${coef.shape}] and [${q.shape}]`);
  }
}

/** Work (D·N·L) from which the SIMD path is used. */
const SIMD_WORK = 1 << 15;

/** float64 copies of coef and ln q in wasm memory, plus room for rows of Lp = ⌈L/32⌉·32. */
function emaStage(coef: FloatStorage, qq: FloatStorage, D: number, N: number, rowsBytes: number, extraBytes: number) {
  const rt = wasmRuntime()!;
  const ar = wasmArena(rt);
  ar.reset();
  const pc = ar.alloc(D * N * 8), pl = ar.alloc(D * N * 8), pr = ar.alloc(rowsBytes), px = ar.alloc(extraBytes);
  ar.commit();
  const v = ar.f64;
  v.set(coef, pc / 8);
  for (let i = 0; i < D * N; i++) v[pl / 8 + i] = Math.log(qq[i]);
  return { rt, v, pc, pl, pr, px };
}

/** CPU `emaKernel`: `k[d, l] = Σ_n coef[d, n]·exp(l·ln q[d, n])`, float64 inside (SIMD when available). */
export function emaKernelCpu(coef: Tensor, q: Tensor, length: number): Tensor {
  checkCoefQ(coef, q, 'emaKernel');
  if (!Number.isInteger(length) || length < 0) throw new ShapeError(`emaKernel: invalid length ${length}`);
  const [D, N] = coef.shape;
  const c = dense(coef), qq = dense(q);
  if (wasmRuntime() && length > 0 && (simdTuning.force || D * N * length >= SIMD_WORK)) {
    const Lp = Math.ceil(length / BLOCK) * BLOCK;
    const { rt, v, pc, pl, pr } = emaStage(c, qq, D, N, D * Lp * 8, 0);
    runMap(rt, 'ema_fwd', D, D * N * Lp, [pc, pl, pr, Lp, N]);
    const out = allocate(coef.dtype, D * length) as FloatStorage;
    for (let d = 0; d < D; d++) out.set(v.subarray(pr / 8 + d * Lp, pr / 8 + d * Lp + length), d * length);
    return fromStorage(out, [D, length]);
  }
  const out = allocate(coef.dtype, D * length) as FloatStorage;
  const acc = new Float64Array(length);
  const pw = new Float64Array(BLOCK);
  for (let d = 0; d < D; d++) {
    acc.fill(0);
    for (let n = 0; n < N; n++) {
      const cn = c[d * N + n], lq = Math.log(qq[d * N + n]);
      for (let j = 0; j < BLOCK; j++) pw[j] = Math.exp(j * lq);
      for (let l0 = 0; l0 < length; l0 += BLOCK) {
        if (l0 * lq < EMA_CUTOFF) break; // negligible (< 1e-280) from here on, as in the SIMD kernel
        const base = cn * Math.exp(l0 * lq);
        const m = Math.min(BLOCK, length - l0);
        for (let j = 0; j < m; j++) acc[l0 + j] += base * pw[j];
      }
    }
    out.set(acc, d * length);
  }
  return fromStorage(out, [D, length]);
}

/** CPU `emaKernelGrad`: `[2, D, N]` = (Σ_l g·q^l, coef·Σ_l g·l·q^(l−1)). */
export function emaKernelGradCpu(coef: Tensor, q: Tensor, g: Tensor): Tensor {
  checkCoefQ(coef, q, 'emaKernelGrad');
  const [D, N] = coef.shape;
  if (g.dtype !== coef.dtype || g.ndim !== 2 || g.shape[0] !== D) throw new ShapeError(`emaKernelGrad: gradient [${g.shape}] (${g.dtype}) does not match [${D}, L]`);
  const L = g.shape[1];
  const c = dense(coef), qq = dense(q), gg = dense(g);
  const out = allocate(coef.dtype, 2 * D * N) as FloatStorage;
  if (wasmRuntime() && L > 0 && (simdTuning.force || D * N * L >= SIMD_WORK)) {
    const Lp = Math.ceil(L / BLOCK) * BLOCK;
    const { rt, v, pc, pl, pr, px } = emaStage(c, qq, D, N, D * Lp * 8, D * N * 16);
    v.fill(0, pr / 8, pr / 8 + D * Lp);
    for (let d = 0; d < D; d++) v.set(gg.subarray(d * L, (d + 1) * L), pr / 8 + d * Lp);
    runMap(rt, 'ema_bwd', D, D * N * Lp, [pc, pl, pr, px, Lp, N]);
    for (let i = 0; i < D * N; i++) {
      out[i] = v[px / 8 + 2 * i];
      out[D * N + i] = (c[i] * v[px / 8 + 2 * i + 1]) / qq[i];
    }
    return fromStorage(out, [2, D, N]);
  }
  const pw = new Float64Array(BLOCK);
  for (let d = 0; d < D; d++) {
    const go = d * L;
    for (let n = 0; n < N; n++) {
      const qv = qq[d * N + n], lq = Math.log(qv);
      for (let j = 0; j < BLOCK; j++) pw[j] = Math.exp(j * lq);
      let s0 = 0, s1 = 0;
      for (let l0 = 0; l0 < L; l0 += BLOCK) {
        if (l0 * lq < EMA_CUTOFF) break;
        const base = Math.exp(l0 * lq);
        const m = Math.min(BLOCK, L - l0);
        for (let j = 0; j < m; j++) {
          const v = gg[go + l0 + j] * (base * pw[j]);
          s0 += v;
          s1 += (l0 + j) * v;
        }
      }
      out[d * N + n] = s0;
      out[D * N + d * N + n] = (c[d * N + n] * s1) / qv;
    }
  }
  return fromStorage(out, [2, D, N]);
}

/** CPU `softmaxGrad` along the last axis (float64 row sums). */
export function softmaxGradCpu(y: Tensor, g: Tensor, log: boolean): Tensor {
  if (y.dtype !== g.dtype || (y.dtype !== 'f32' && y.dtype !== 'f64')) throw new DTypeError(`softmaxGrad: expected two floating tensors of one dtype, got ${y.dtype} and ${g.dtype}`);
  if (y.ndim === 0 || y.ndim !== g.ndim || y.shape.some((d, i) => d !== g.shape[i])) throw new ShapeError(`softmaxGrad: shapes [${y.shape}] and [${g.shape}] differ`);
  const yy = dense(y), gg = dense(g);
  const n = y.shape[y.ndim - 1];
  const rows = n === 0 ? 0 : y.size / n;
  const out = allocate(y.dtype, y.size) as FloatStorage;
  for (let r = 0; r < rows; r++) {
    const b = r * n;
    let s = 0;
    if (log) {
      for (let j = 0; j < n; j++) s += gg[b + j];
      for (let j = 0; j < n; j++) out[b + j] = gg[b + j] - Math.exp(yy[b + j]) * s;
    } else {
      for (let j = 0; j < n; j++) s += yy[b + j] * gg[b + j];
      for (let j = 0; j < n; j++) out[b + j] = yy[b + j] * (gg[b + j] - s);
    }
  }
  return fromStorage(out, y.shape);
}
