/**
 * The gpujs FFT convolution: Stockham radix-2 FFT passes as gpu.js kernels (one kernel per pass,
 * out of place, results in natural order). Complex rows are stored interleaved, `[..., N, 2]`
 * (re, im), one thread per component. See fftconv.ts for when it is used.
 *
 * `y = x ∗ k` on a window: both are loaded zero-padded to N ≥ max(Lx + Lk − 1, start + length)
 * (no wrap-around), transformed, multiplied (conjugated, so the inverse transform is the same
 * forward passes: ifft(P) = conj(fft(conj(P)))/N), transformed again, and the window's real parts
 * scaled by 1/N.
 */
import { sizeOf } from '../../shape.js';
import type { Tensor } from '../../tensor.js';
import { releaseData, type GpuData } from './device.js';
import { bstrides, coalesce, dev, done, fn, grid, MAX_XY, operandOf, types, wrap } from './launch.js';

/** Smallest power of two ≥ n. */
export function fftSize(n: number): number {
  let N = 1;
  while (N < n) N *= 2;
  return N;
}

/** The rows of real `t` (leading axes `lead`, last axis the signal) as complex `[...lead, N, 2]`, zero-padded. */
function loadComplex(t: Tensor, N: number): Tensor | null {
  const temps: GpuData[] = [];
  try {
    const T = operandOf(t, temps);
    const lead = t.shape.slice(0, -1);
    const c = coalesce(lead, [T.strides.slice(0, -1)]);
    const g = grid([...c.shape, 2 * N]);
    if (!g) return null;
    const lc = g.coords.slice(0, -1);
    const base = ['o0', ...lc.map((cc, i) => `${cc} * s0_${i}`)].join(' + ');
    const sn = lc.map((_, i) => `s0_${i}`);
    const body = [
      g.pre,
      'const e = Math.floor(this.thread.x * 0.5);',
      'if (this.thread.x - 2 * e > 0.5) {',
      'return 0;',
      '}',
      'if (e > Lt - 0.5) {',
      'return 0;',
      '}',
      `return t0[${base} + (e | 0) * ts];`,
    ].join('\n');
    const ints = ['o0', ...sn, 'ts', 'Lt', ...g.foldArgs];
    const out = dev().run(
      `fft:load:${g.coords.length}`,
      () => fn(['t0', ...ints], body),
      types(['t0'], ints),
      g.output,
      [T.data, T.offset, ...(lc.length ? c.strides[0] : []), T.strides[t.ndim - 1], t.shape[t.ndim - 1], ...g.foldVals],
      t.dtype,
    );
    return wrap(out, [...lead, N, 2]);
  } finally {
    done(temps);
  }
}

/** One Stockham radix-2 pass over `R` contiguous complex rows of length N (sub-length n, stride s). */
function pass(x: GpuData, R: number, N: number, n: number, s: number): GpuData {
  const body = [
    'const e = Math.floor(this.thread.x * 0.5);', // complex index
    'const c = this.thread.x - 2 * e;', // 0: re, 1: im
    'const tt = Math.floor((e + 0.5) / s);',
    'const q = e - tt * s;',
    'const p = Math.floor(tt * 0.5);',
    'const r = tt - 2 * p;',
    'const ia = 2 * (q + s * p);',
    'const ib = ia + s * n;', // 2 · s · (n/2)
    'const ar = t0[this.thread.y * N2 + (ia | 0)];',
    'const ai = t0[this.thread.y * N2 + (ia | 0) + 1];',
    'const br = t0[this.thread.y * N2 + (ib | 0)];',
    'const bi = t0[this.thread.y * N2 + (ib | 0) + 1];',
    'if (r < 0.5) {',
    'if (c < 0.5) {',
    'return ar + br;',
    '}',
    'return ai + bi;',
    '}',
    'const th = -6.283185307179586 * p / n;',
    'const cs = Math.cos(th);',
    'const sn = Math.sin(th);',
    'const dr = ar - br;',
    'const di = ai - bi;',
    'if (c < 0.5) {',
    'return dr * cs - di * sn;',
    '}',
    'return dr * sn + di * cs;',
  ].join('\n');
  const ints = ['N2', 'n', 's'];
  return dev().run('fft:pass', () => fn(['t0', ...ints], body), types(['t0'], ints), [2 * N, R], [x, 2 * N, n, s], 'f32');
}

/** In place of `t` (`[..., N, 2]`, contiguous, owned): its DFT along the N axis (the input buffer is freed). */
function fft(t: Tensor, N: number): Tensor {
  const R = sizeOf(t.shape.slice(0, -2));
  let cur = t.device as GpuData;
  for (let n = N, s = 1; n >= 2; n /= 2, s *= 2) {
    const next = pass(cur, R, N, n, s);
    releaseData(cur);
    cur = next;
  }
  return wrap(cur, t.shape);
}

/**
 * `fftConv` through FFTs on the device; null when a dispatch would not fit (the caller then
 * uses the direct sum). f32 only.
 */
export function fftConvSpectral(x: Tensor, k: Tensor, start: number, length: number, outLead: number[]): Tensor | null {
  const Lx = x.shape[x.ndim - 1],
    Lk = k.shape[k.ndim - 1];
  const N = fftSize(Math.max(Lx + Lk - 1, start + length));
  const Rx = sizeOf(x.shape.slice(0, -1)),
    Rk = sizeOf(k.shape.slice(0, -1)),
    R = sizeOf(outLead);
  if (2 * N > MAX_XY || Math.max(Rx, Rk, R) > MAX_XY) return null;
  const owned: GpuData[] = [];
  try {
    const xl = loadComplex(x, N);
    if (!xl) return null;
    owned.push(xl.device as GpuData);
    const kl = loadComplex(k, N);
    if (!kl) return null;
    owned.push(kl.device as GpuData);
    const X = fft(xl, N),
      Kf = fft(kl, N);
    owned.length = 0;
    owned.push(X.device as GpuData, Kf.device as GpuData);
    // conj(X · K), broadcasting the leading axes
    const xs = bstrides({ shape: x.shape.slice(0, -1) }, X.strides.slice(0, -2), outLead);
    const ks = bstrides({ shape: k.shape.slice(0, -1) }, Kf.strides.slice(0, -2), outLead);
    const c = coalesce(outLead, [xs, ks]);
    const g = grid([...c.shape, 2 * N]);
    if (!g) return null;
    const lc = g.coords.slice(0, -1);
    const xi = ['0', ...lc.map((cc, i) => `${cc} * s0_${i}`)].join(' + ');
    const ki = ['0', ...lc.map((cc, i) => `${cc} * s1_${i}`)].join(' + ');
    const sn = lc.flatMap((_, i) => [`s0_${i}`, `s1_${i}`]);
    const body = [
      g.pre,
      'const e = Math.floor(this.thread.x * 0.5);',
      `const xr = t0[${xi} + ((2 * e) | 0)];`,
      `const xm = t0[${xi} + ((2 * e) | 0) + 1];`,
      `const kr = t1[${ki} + ((2 * e) | 0)];`,
      `const km = t1[${ki} + ((2 * e) | 0) + 1];`,
      'if (this.thread.x - 2 * e < 0.5) {',
      'return xr * kr - xm * km;',
      '}',
      'return -(xr * km + xm * kr);',
    ].join('\n');
    const ints = [...sn, ...g.foldArgs];
    const P = dev().run(
      `fft:mul:${g.coords.length}`,
      () => fn(['t0', 't1', ...ints], body),
      types(['t0', 't1'], ints),
      g.output,
      [X.device as GpuData, Kf.device as GpuData, ...lc.flatMap((_, i) => [c.strides[0][i], c.strides[1][i]]), ...g.foldVals],
      'f32',
    );
    const Y = fft(wrap(P, [R, N, 2]), N);
    owned.push(Y.device as GpuData);
    // the window's real parts / N
    const ext = ['return t0[this.thread.y * N2 + (start + this.thread.x) * 2] * invN;'].join('\n');
    const out = dev().run(
      'fft:window',
      () => fn(['t0', 'N2', 'start', 'invN'], ext),
      types(['t0'], ['N2', 'start'], ['invN']),
      [length, R],
      [Y.device as GpuData, 2 * N, start, 1 / N],
      x.dtype,
    );
    return wrap(out, [...outLead, length]);
  } finally {
    done(owned);
  }
}
