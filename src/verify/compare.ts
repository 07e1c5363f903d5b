/** The normative tolerance rule of FORMAT.md and a per-tensor comparison report. */
import type { RawTensor } from '../io/raw.js';
import type { Tensor } from '../tensor/tensor.js';

/** Numeric path under test. */
export type Precision = 'f64' | 'f32';

/** FORMAT.md tolerances: `max|T − R| ≤ atol + rtol · max|R|`. */
export const TOLERANCES: Record<Precision, { rtol: number; atol: number }> = {
  f64: { rtol: 1e-9, atol: 1e-12 },
  f32: { rtol: 2e-4, atol: 1e-6 },
};

/** One compared tensor. */
export interface TensorReport {
  name: string;
  pass: boolean;
  /** max |T − R| (Infinity on shape mismatch or a NaN where the reference has a number). */
  maxErr: number;
  /** max |R|. */
  scale: number;
  /** The allowed error `atol + rtol · scale` (+ any extra). */
  tol: number;
  note?: string;
}

/** max |x| over a typed array. */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const v = Math.abs(a[i]);
    if (v > m || v !== v) m = v;
  }
  return m;
}

/**
 * Compares `got` with reference `ref`. Floating tensors use `atol·atolScale + rtol·max|R| + extra`
 * (per element `extraAt(i)` when given, for the optimizer dead-coordinate rule); integer and
 * bool tensors must be equal.
 */
export function compareTensor(
  name: string,
  got: Tensor | null | undefined,
  ref: RawTensor,
  prec: Precision,
  { atolScale = 1, extraAt }: { atolScale?: number; extraAt?: (i: number) => number } = {},
): TensorReport {
  const scale = maxAbs(ref.data);
  const { rtol, atol } = TOLERANCES[prec];
  const tol = atol * atolScale + rtol * scale;
  if (!got) return { name, pass: false, maxErr: Infinity, scale, tol, note: 'missing' };
  const shapeOk = got.shape.length === ref.shape.length && got.shape.every((d, i) => d === ref.shape[i]);
  if (!shapeOk) return { name, pass: false, maxErr: Infinity, scale, tol, note: `shape [${got.shape}] vs reference [${ref.shape}]` };
  const g = got.toTypedArray();
  const exact = ref.dtype === 'i32' || ref.dtype === 'bool';
  let maxErr = 0;
  let pass = true;
  for (let i = 0; i < g.length; i++) {
    const r = ref.data[i], v = g[i];
    let e: number;
    if (r === v) e = 0;
    else if (Number.isNaN(r) && Number.isNaN(v)) e = 0;
    else e = Math.abs(v - r);
    if (e !== e) e = Infinity;
    if (exact) {
      if (e !== 0) pass = false;
    } else if (extraAt) {
      if (e > tol + extraAt(i)) pass = false;
    } else if (e > tol) pass = false;
    if (e > maxErr) maxErr = e;
  }
  return { name, pass, maxErr, scale, tol: exact ? 0 : tol };
}
