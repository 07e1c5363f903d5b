/**
 * `where` for the masks of training steps: a masked fill (`maskedFill`: one branch a single value)
 * with a float tensor of the output's shape as the other branch and a bool mask broadcast over
 * it — the attention's key padding mask over the scores, the EMA's padding mask, and the
 * backward of both (`where(mask, 0, g)`). The tensor branch is copied as a whole (a row-major copy
 * when it is a view), then the value is written where the mask selects it: no 3-operand strided
 * loop per element. Returns null when it does not apply; register.ts then runs the general kernel
 * (elementwise.ts), the reference (the same values: each element is one of the two branches).
 */
import { broadcastShapes, sizeOf } from '../../shape.js';
import { fromStorage, type Tensor } from '../../tensor.js';
import { copyCpu } from './elementwise.js';
import { allocateOut } from './resident.js';

/** `where(cond, a, b)` when one branch is a single value and the other has the output's shape, or null. */
export function whereFast(cond: Tensor, a: Tensor, b: Tensor): Tensor | null {
  if (cond.dtype !== 'bool' || a.dtype !== b.dtype || (a.dtype !== 'f32' && a.dtype !== 'f64')) return null;
  const fillWhen = a.size === 1 ? 1 : b.size === 1 ? 0 : -1; // the mask value that selects the single value
  if (fillWhen < 0) return null;
  const [one, x] = fillWhen === 1 ? [a, b] : [b, a];
  const shape = x.shape;
  const nd = shape.length;
  if (nd === 0 || one.ndim > nd || cond.ndim > nd) return null;
  let full: readonly number[];
  try {
    full = broadcastShapes(broadcastShapes(cond.shape, one.shape, 'where'), shape, 'where');
  } catch {
    return null; // the general kernel reports the mismatch
  }
  if (full.length !== nd || full.some((d, i) => d !== shape[i])) return null;
  const n = sizeOf(shape);
  let out = allocateOut(x.dtype, n, false);
  if (x.isContiguous()) out.set(x.storage.subarray(x.offset, x.offset + n) as never);
  else out = copyCpu(x).storage; // a fresh row-major copy
  const value = one.storage[one.offset];
  // the mask's strides over the output's axes (0 where broadcast)
  const cs = new Array<number>(nd).fill(0);
  for (let i = 0; i < cond.ndim; i++) {
    const ax = nd - cond.ndim + i;
    cs[ax] = cond.shape[i] === 1 ? 0 : cond.strides[i];
  }
  FILL.get(out.constructor)!(out, cond.storage as Uint8Array, cond.offset, shape, cs, value, fillWhen);
  return fromStorage(out, shape);
}

type Fill = (out: ArrayLike<number>, c: Uint8Array, off: number, shape: readonly number[], cs: number[], value: number, when: number) => void;

/** One instance per array class (monomorphic element stores). */
function makeFill(): Fill {
  return (out, c, off, shape, cs, value, when) => {
    const o = out as { [i: number]: number; length: number };
    const nd = shape.length;
    const n = shape[nd - 1],
      t = cs[nd - 1];
    const rows = o.length / n;
    const sel = when === 1;
    const idx = new Array<number>(nd).fill(0);
    let p = off;
    for (let r = 0, d = 0; r < rows; r++, d += n) {
      if (t === 0) {
        if ((c[p] !== 0) === sel) for (let j = 0; j < n; j++) o[d + j] = value;
      } else {
        for (let j = 0, q = p; j < n; j++, q += t) if ((c[q] !== 0) === sel) o[d + j] = value;
      }
      for (let a = nd - 2; a >= 0; a--) {
        idx[a]++;
        p += cs[a];
        if (idx[a] < shape[a]) break;
        p -= cs[a] * shape[a];
        idx[a] = 0;
      }
    }
  };
}

const FILL = new Map<unknown, Fill>([
  [Float32Array, makeFill()],
  [Float64Array, makeFill()],
]);
