/**
 * Fused CPU kernels (see `FusedKernels` in backend.ts): the EMA kernel build and its VJP, and the
 * softmax backward. Plain TypeScript here: the reference of the WebAssembly paths (EMA:
 * ema-simd.ts, the same arithmetic in wasm, bitwise equal; softmax backward: simd.ts) and their
 * fallback. Each is tested equal to the composition of primitive kernels it replaces
 * (test/tensor/backends/cpu/fused.test.ts).
 */
import { allocateOut } from './resident.js';
import { type FloatStorage } from '../../dtype.js';
import { DTypeError, ShapeError } from '../../errors.js';
import { fromStorage, type Tensor } from '../../tensor.js';
import { erf, erf32 } from '../../special.js';
import { checkCoefQ, checkEmaGrad } from '../checks.js';
import { dense } from './elementwise.js';
import { EMA_CUTOFF, emaBlock } from './wasm/ema.js';

// Powers q^l are evaluated as exp(l0·ln q)·exp(j·ln q) with l = l0 + j, j < B = emaBlock(L)
// (≤ 2 ulp from exp(l·ln q)): B + ⌈L/B⌉ exps per state instead of one per value. Blocks from the
// first whose first power is below exp(EMA_CUTOFF) ≈ 1e−280 are skipped (negligible, and
// subnormal products are ~100× slower).

/** CPU `emaKernel`: `k[d, l] = Σ_n coef[d, n]·exp(l·ln q[d, n])`, float64 inside. */
export function emaKernelCpu(coef: Tensor, q: Tensor, length: number): Tensor {
  checkCoefQ(coef, q, 'emaKernel');
  if (!Number.isInteger(length) || length < 0) throw new ShapeError(`emaKernel: invalid length ${length}`);
  const [D, N] = coef.shape;
  const c = dense(coef),
    qq = dense(q);
  const out = allocateOut(coef.dtype, D * length, false) as FloatStorage;
  const acc = new Float64Array(length);
  const block = emaBlock(length);
  const pw = new Float64Array(block);
  const P = Math.min(block, length); // powers a block uses
  for (let d = 0; d < D; d++) {
    acc.fill(0);
    for (let n = 0; n < N; n++) {
      const cn = c[d * N + n],
        lq = Math.log(qq[d * N + n]);
      for (let j = 0; j < P; j++) pw[j] = Math.exp(j * lq);
      for (let l0 = 0; l0 < length; l0 += block) {
        if (l0 * lq < EMA_CUTOFF) break; // negligible (< 1e-280) from here on
        const base = cn * Math.exp(l0 * lq);
        const m = Math.min(block, length - l0);
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
  checkEmaGrad(coef, g);
  const [D, N] = coef.shape;
  const L = g.shape[1];
  const c = dense(coef),
    qq = dense(q),
    gg = dense(g);
  const out = allocateOut(coef.dtype, 2 * D * N) as FloatStorage;
  const block = emaBlock(L);
  const pw = new Float64Array(block);
  const P = Math.min(block, L); // powers a block uses
  for (let d = 0; d < D; d++) {
    const go = d * L;
    for (let n = 0; n < N; n++) {
      const qv = qq[d * N + n],
        lq = Math.log(qv);
      for (let j = 0; j < P; j++) pw[j] = Math.exp(j * lq);
      let s0 = 0,
        s1 = 0;
      for (let l0 = 0; l0 < L; l0 += block) {
        if (l0 * lq < EMA_CUTOFF) break;
        const base = Math.exp(l0 * lq);
        const m = Math.min(block, L - l0);
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
  if (y.dtype !== g.dtype || (y.dtype !== 'f32' && y.dtype !== 'f64'))
    throw new DTypeError(`softmaxGrad: expected two floating tensors of one dtype, got ${y.dtype} and ${g.dtype}`);
  if (y.ndim === 0 || y.ndim !== g.ndim || y.shape.some((d, i) => d !== g.shape[i]))
    throw new ShapeError(`softmaxGrad: shapes [${y.shape}] and [${g.shape}] differ`);
  const yy = dense(y),
    gg = dense(g);
  const n = y.shape[y.ndim - 1];
  const rows = n === 0 ? 0 : y.size / n;
  const out = allocateOut(y.dtype, y.size, false) as FloatStorage;
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

/**
 * CPU `laplace` in one pass: `0.5·(1 + erf((x − mu)/den))` (the composition makes 5 passes and 4
 * temporaries the size of the attention weights). In f32 every step is rounded to f32 as the
 * composition of primitive kernels rounds it (erf by special.ts `erf32`, as the f32 `erf`
 * kernel), so the two are bitwise equal. The gradient stays
 * the generic composition: its SIMD exp beats a scalar Math.exp loop (measured 55 vs 157 ms on
 * 2.8M values).
 */
export function laplaceCpu(x: Tensor, mu: number, den: number): Tensor {
  if (x.dtype !== 'f32' && x.dtype !== 'f64') throw new DTypeError(`laplace: expected a floating tensor, got ${x.dtype}`);
  const n = x.size;
  if (x.dtype === 'f32') {
    const src = dense(x) as Float32Array,
      out = new Float32Array(n);
    const m = Math.fround(mu),
      d = Math.fround(den);
    for (let i = 0; i < n; i++) out[i] = 0.5 * Math.fround(1 + erf32(Math.fround(Math.fround(src[i] - m) / d)));
    return fromStorage(out, x.shape);
  }
  const src = dense(x) as Float64Array,
    out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = 0.5 * (1 + erf((src[i] - mu) / den));
  return fromStorage(out, x.shape);
}
