/** The normative tolerance rule of FORMAT.md and a per-tensor comparison report. */
import { MegaError } from '../errors.js';
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
    const r = ref.data[i],
      v = g[i];
    let e: number;
    if (r === v)
      e = 0; // equal infinities included
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

/**
 * Tolerance of {@link checkClose}: the FORMAT.md rule `|got − want| ≤ atol + rtol · max|want|`,
 * from `precision` (FORMAT.md's values) or given directly (unset ones are 0).
 */
export interface CloseOptions {
  precision?: Precision;
  rtol?: number;
  atol?: number;
  /** Name of the compared quantity in the message. */
  what?: string;
}

/** One element of a comparison. */
export interface CloseElement {
  /** Flat (row-major) index. */
  index: number;
  /** Multi-dimensional index when the shape is known, else `[index]`. */
  at: number[];
  got: number;
  want: number;
}

/** Outcome of {@link checkClose}. */
export interface CloseReport {
  pass: boolean;
  /** max |got − want| (Infinity for a NaN against a number or a shape mismatch). */
  maxErr: number;
  /** max |want|. */
  scale: number;
  /** The allowed error `atol + rtol · scale`. */
  tol: number;
  /** Elements outside the tolerance. */
  mismatches: number;
  /** The first element outside the tolerance (null when all pass). */
  first: CloseElement | null;
  /** One line for a failure (or a summary when passing). */
  message: string;
}

type Values = Tensor | ArrayLike<number>;

function valuesOf(x: Values): { data: ArrayLike<number>; shape: readonly number[] | null } {
  const t = x as Tensor;
  return typeof t.toTypedArray === 'function' ? { data: t.toTypedArray(), shape: t.shape } : { data: x as ArrayLike<number>, shape: null };
}

function unravel(index: number, shape: readonly number[] | null): number[] {
  if (!shape) return [index];
  const at = new Array<number>(shape.length);
  for (let d = shape.length - 1, r = index; d >= 0; d--) {
    at[d] = r % shape[d];
    r = Math.floor(r / shape[d]);
  }
  return at;
}

/**
 * Compares `got` with `want` element by element (tensors or arrays; NaN equals NaN) and reports,
 * like llm.c's `check_tensor`, the first element outside the tolerance with both values, the
 * number of such elements and the largest error.
 */
export function checkClose(got: Values, want: Values, opts: CloseOptions = {}): CloseReport {
  const g = valuesOf(got),
    w = valuesOf(want);
  const { rtol, atol } = opts.precision ? TOLERANCES[opts.precision] : { rtol: opts.rtol ?? 0, atol: opts.atol ?? 0 };
  const what = opts.what ?? 'values';
  const scale = maxAbs(w.data);
  const tol = atol + rtol * scale;
  const shapeOf = (s: readonly number[] | null, n: number) => (s ? `[${s.join(', ')}]` : `${n} elements`);
  const sameShape =
    g.data.length === w.data.length && (!g.shape || !w.shape || (g.shape.length === w.shape.length && g.shape.every((d, i) => d === w.shape![i])));
  if (!sameShape) {
    const message = `${what}: shape ${shapeOf(g.shape, g.data.length)} differs from the expected ${shapeOf(w.shape, w.data.length)}`;
    return { pass: false, maxErr: Infinity, scale, tol, mismatches: Math.max(g.data.length, w.data.length), first: null, message };
  }
  let maxErr = 0,
    maxAt = -1,
    mismatches = 0;
  let first: CloseElement | null = null;
  for (let i = 0; i < w.data.length; i++) {
    const a = g.data[i],
      b = w.data[i];
    let e = a === b || (Number.isNaN(a) && Number.isNaN(b)) ? 0 : Math.abs(a - b);
    if (e !== e) e = Infinity;
    if (e > maxErr) [maxErr, maxAt] = [e, i];
    if (e > tol) {
      mismatches++;
      first ??= { index: i, at: unravel(i, w.shape ?? g.shape), got: a, want: b };
    }
  }
  const rule = `tol ${tol.toExponential(3)} = ${atol} + ${rtol} · max|want| ${scale.toExponential(3)}`;
  const message = first
    ? `${what}: ${mismatches} of ${w.data.length} elements differ by more than ${rule}; first at [${first.at.join(', ')}]: got ` +
      `${first.got}, want ${first.want}; max error ${maxErr.toExponential(3)} at [${unravel(maxAt, w.shape ?? g.shape).join(', ')}]`
    : `${what}: all ${w.data.length} elements within ${rule} (max error ${maxErr.toExponential(3)})`;
  return { pass: mismatches === 0, maxErr, scale, tol, mismatches, first, message };
}

/**
 * Asserts that `got` is close to `want` ({@link checkClose}); the tests' one tensor comparison.
 * @throws MegaError whose message names the first element outside the tolerance (got / want)
 */
export function expectClose(got: Values, want: Values, opts: CloseOptions = {}): void {
  const r = checkClose(got, want, opts);
  if (!r.pass) throw new MegaError(r.message);
}
