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

/** max |x| over the finite elements of a typed array (NaN and ±Infinity do not set a scale). */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const v = Math.abs(a[i]);
    if (v > m && v !== Infinity) m = v;
  }
  return m;
}

/**
 * Compares `got` with reference `ref`. Floating tensors use `atol·atolScale + rtol·max|R| + extra`
 * (per element `extraAt(i)` when given, for the optimizer dead-coordinate rule); integer and
 * bool tensors must be equal. Non-finite values are never within a tolerance: an infinity must be
 * matched by the same infinity, and a NaN on either side fails (FORMAT.md allows no NaN in a
 * reference), unless `nanEqual` says both sides may hold NaN at the same places.
 */
export function compareTensor(
  name: string,
  got: Tensor | null | undefined,
  ref: RawTensor,
  prec: Precision,
  { atolScale = 1, extraAt, nanEqual = false }: { atolScale?: number; extraAt?: (i: number) => number; nanEqual?: boolean } = {},
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
  let nanNote: string | undefined;
  for (let i = 0; i < g.length; i++) {
    const r = ref.data[i], v = g[i];
    let e: number;
    if (r === v) e = 0; // equal infinities included
    else if (r !== r || v !== v) {
      if (nanEqual && r !== r && v !== v) e = 0;
      else {
        e = Infinity;
        nanNote ??= `NaN at element ${i} (reference ${r}, computed ${v})`;
      }
    } else e = Math.abs(v - r); // Infinity when either side is infinite (and they differ)
    if (exact) {
      if (e !== 0) pass = false;
    } else if (extraAt) {
      if (e > tol + extraAt(i)) pass = false;
    } else if (e > tol) pass = false;
    if (e > maxErr) maxErr = e;
  }
  if (nanNote) return { name, pass: false, maxErr, scale, tol: exact ? 0 : tol, note: nanNote };
  return { name, pass, maxErr, scale, tol: exact ? 0 : tol };
}
