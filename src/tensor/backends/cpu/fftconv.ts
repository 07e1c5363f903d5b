/**
 * CPU kernel `fftConv`: windowed linear convolution along the last axis,
 * `y[..., r, t] = Σ_j k[..., r, j] · x[..., r, start + t − j]`, x zero outside `[0, Lx)`.
 *
 * FFT path (fft.js, power-of-two size n ≥ Lx + Lk − 1, so nothing wraps), or a direct sum when
 * that is cheaper. Both run in double precision; f32 results are rounded once at the end.
 * Spectra of kernel rows are computed once and reused across the broadcast leading axes.
 */
import { allocateOut } from './resident.js';
import FFT from 'fft.js';

import { broadcastShapes, contiguousStrides, sizeOf } from '../../shape.js';
import { fromStorage, Tensor } from '../../tensor.js';
import { checkFftConv } from '../checks.js';
import { dense } from './elementwise.js';

const ffts = new Map<number, FFT>();
function fftOf(n: number): FFT {
  let f = ffts.get(n);
  if (!f) ffts.set(n, (f = new FFT(n)));
  return f;
}

/** Smallest power of two ≥ max(2, n). */
export function nextPow2(n: number): number {
  let p = 2;
  while (p < n) p *= 2;
  return p;
}

/** Contiguous storage of `t` from index 0. */
/** Offsets (in rows) of the rows of a `[...lead, L]` tensor broadcast to `outLead`. */
export function rowIndex(lead: readonly number[], outLead: readonly number[]): Int32Array {
  const n = sizeOf(outLead);
  const pad = outLead.length - lead.length;
  const cs = contiguousStrides(lead);
  const strides = outLead.map((d, i) => (i < pad || lead[i - pad] === 1 ? 0 : cs[i - pad]));
  const out = new Int32Array(n);
  const idx = new Array<number>(outLead.length).fill(0);
  let p = 0;
  for (let r = 0; r < n; r++) {
    out[r] = p;
    for (let a = outLead.length - 1; a >= 0; a--) {
      idx[a]++;
      p += strides[a];
      if (idx[a] < outLead[a]) break;
      p -= strides[a] * outLead[a];
      idx[a] = 0;
    }
  }
  return out;
}

/** CPU `fftConv`. */
export function fftConvCpu(x: Tensor, k: Tensor, start: number, length: number): Tensor {
  checkFftConv(x, k, length);
  const Lx = x.shape[x.ndim - 1],
    Lk = k.shape[k.ndim - 1];
  const xLead = x.shape.slice(0, -1),
    kLead = k.shape.slice(0, -1);
  const outLead = broadcastShapes(xLead, kLead, 'fftConv');
  const rows = sizeOf(outLead);
  const out = allocateOut(x.dtype, rows * length);
  const xs = dense(x),
    ks = dense(k);
  const xRow = rowIndex(xLead, outLead).map((r) => r * Lx);
  const kRow = rowIndex(kLead, outLead).map((r) => r * Lk);
  const full = Lx + Lk - 1;
  const n = nextPow2(full);
  const direct = length * Lk <= 6 * n * Math.log2(n) || Lx === 0 || Lk === 0;
  if (direct) {
    for (let r = 0; r < rows; r++) {
      const xo = xRow[r],
        ko = kRow[r],
        oo = r * length;
      for (let t = 0; t < length; t++) {
        const m = start + t;
        const jLo = Math.max(0, m - Lx + 1),
          jHi = Math.min(Lk - 1, m);
        let s = 0;
        for (let j = jLo; j <= jHi; j++) s += ks[ko + j] * xs[xo + m - j];
        out[oo + t] = s;
      }
    }
    return fromStorage(out, [...outLead, length]);
  }
  const fft = fftOf(n);
  const spectra = new Map<number, Float64Array>();
  const inp = new Float64Array(n);
  const spec = new Float64Array(2 * n);
  const res = new Float64Array(2 * n);
  const kernelSpectrum = (ko: number): Float64Array => {
    let s = spectra.get(ko);
    if (s) return s;
    inp.fill(0);
    for (let j = 0; j < Lk; j++) inp[j] = ks[ko + j];
    s = new Float64Array(2 * n);
    fft.realTransform(s, inp);
    fft.completeSpectrum(s);
    spectra.set(ko, s);
    return s;
  };
  for (let r = 0; r < rows; r++) {
    const ksp = kernelSpectrum(kRow[r]);
    const xo = xRow[r];
    inp.fill(0);
    for (let i = 0; i < Lx; i++) inp[i] = xs[xo + i];
    fft.realTransform(spec, inp);
    fft.completeSpectrum(spec);
    for (let i = 0; i < 2 * n; i += 2) {
      const a = spec[i],
        b = spec[i + 1],
        c = ksp[i],
        d = ksp[i + 1];
      spec[i] = a * c - b * d;
      spec[i + 1] = a * d + b * c;
    }
    fft.inverseTransform(res, spec);
    const oo = r * length;
    for (let t = 0; t < length; t++) {
      const m = start + t;
      out[oo + t] = m >= 0 && m < full ? res[2 * m] : 0;
    }
  }
  return fromStorage(out, [...outLead, length]);
}
