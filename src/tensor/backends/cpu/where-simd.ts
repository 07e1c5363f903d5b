/**
 * WebAssembly SIMD path of `where` in its masked-fill form — one branch a single value v, the
 * other a float tensor x, the condition a bool mask broadcast over them (`maskedFill` of padded
 * positions with −∞ or 0, and its backward): what the attention and EMA masks of a training step
 * run. The generic kernel (a generated JS loop over three strided operands, elementwise.ts)
 * spends several ns per element on these short broadcast rows; here (wasm/where.ts) each output
 * row is one `bitselect` per vector.
 *
 * The mask is expanded into element-wide entries (all bits set / clear) over the span of the
 * condition's storage it reads — small: the condition is the broadcast operand. x is read in
 * place when resident with unit-stride rows, else staged; a resident output is written in place.
 * Returns null where it does not apply (register.ts then runs the generic kernel). A select copies
 * bits: results are identical to the generic kernel's.
 */
import { type FloatStorage } from '../../dtype.js';
import { broadcastShapes, contiguousStrides, sizeOf } from '../../shape.js';
import { fromStorage, type Tensor } from '../../tensor.js';
import { broadcastStrides, operand } from './elementwise.js';
import { allocateOut, residentActive } from './resident.js';
import { minSize, residentAddr, runMap, stage, storageAddr } from './simd.js';
import { WHERE_DESC } from './wasm/where.js';
import { wasmArena, wasmRuntime } from './wasm/runtime.js';

/** Elements of storage a walk with `strides` over `shape` touches from its offset (strides ≥ 0). */
function span(shape: readonly number[], strides: readonly number[]): number {
  let last = 0;
  for (let i = 0; i < shape.length; i++) last += (shape[i] - 1) * strides[i];
  return last + 1;
}

/**
 * Merges adjacent axes along which both operands advance uniformly (size-1 axes dropped) into at
 * most three (outermost padded with size 1); null when more remain.
 */
function collapse3(shape: readonly number[], s1: readonly number[], s2: readonly number[]): { sh: number[]; a: number[]; b: number[] } | null {
  const sh: number[] = [],
    a: number[] = [],
    b: number[] = [];
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1) continue;
    const k = sh.length - 1;
    if (k >= 0 && a[k] === s1[i] * shape[i] && b[k] === s2[i] * shape[i]) {
      sh[k] *= shape[i];
      a[k] = s1[i];
      b[k] = s2[i];
    } else {
      sh.push(shape[i]);
      a.push(s1[i]);
      b.push(s2[i]);
    }
  }
  if (sh.length > 3) return null;
  while (sh.length < 3) {
    sh.unshift(1);
    a.unshift(0);
    b.unshift(0);
  }
  return { sh, a, b };
}

/** `where(cond, a, b)` when one branch has one element and the other is an f32/f64 tensor; else null. */
export function whereSimd(cond: Tensor, a: Tensor, b: Tensor): Tensor | null {
  if (cond.dtype !== 'bool' || a.dtype !== b.dtype || (a.dtype !== 'f32' && a.dtype !== 'f64')) return null;
  const keepX = a.size === 1 ? false : b.size === 1 ? true : null; // x = a (mask true keeps x) or x = b
  if (keepX === null) return null;
  const x = keepX ? a : b;
  const shape = broadcastShapes(broadcastShapes(cond.shape, a.shape, 'where'), b.shape, 'where');
  const size = sizeOf(shape);
  const resident = residentActive() && residentAddr(x) >= 0;
  if (size < minSize(resident)) return null;
  const rt = wasmRuntime();
  if (!rt) return null;
  const dt = x.dtype as 'f32' | 'f64';
  const E = dt === 'f32' ? 4 : 8;
  const oc = operand(cond, shape);
  const xs = broadcastStrides(x, shape); // (not x's values: a queued job may still write them)
  if (oc.strides.some((s) => s < 0) || xs.some((s) => s < 0)) return null;
  // x is staged row-major unless its rows are unit-stride (a broadcast x must be)
  const nd = shape.length;
  const unitRows = xs[nd - 1] === 1 || shape[nd - 1] === 1;
  const xFull = x.size === size;
  if (!unitRows && !xFull) return null;
  const inPlaceX = unitRows ? residentAddr(x) : -1;
  const c = collapse3(shape, oc.strides, unitRows ? xs : contiguousStrides(shape));
  if (!c || (c.b[2] !== 1 && c.sh[2] !== 1) || (c.a[2] !== 0 && c.a[2] !== 1)) return null;
  const out = allocateOut(dt, size, false) as FloatStorage;
  const ar = wasmArena(rt);
  ar.reset();
  const cSpan = span(c.sh, c.a),
    xSpan = unitRows ? span(c.sh, c.b) : size;
  const aMask = ar.alloc(cSpan * E),
    aDesc = ar.alloc(WHERE_DESC.bytes);
  const ax = inPlaceX >= 0 ? inPlaceX : ar.alloc(xSpan * E);
  const io = storageAddr(out),
    ao = io >= 0 ? io : ar.alloc(size * E);
  ar.commit();
  const view = dt === 'f32' ? ar.f32 : ar.f64;
  // the mask entries, element-wide: all bits set where the condition holds
  const m = new Int32Array(view.buffer, aMask, (cSpan * E) / 4);
  const cs = cond.storage;
  const per = E / 4;
  for (let i = 0; i < cSpan; i++) {
    const bits = (cs[oc.offset + i] !== 0) === !keepX ? -1 : 0;
    for (let k = 0; k < per; k++) m[i * per + k] = bits;
  }
  if (inPlaceX < 0) {
    if (unitRows) {
      const src = x.storage as FloatStorage;
      view.set(src.subarray(x.offset, x.offset + xSpan), ax / E);
    } else stage(view, ax, E, x, io >= 0); // (deferred with the select when that is)
  }
  const d = new Int32Array(view.buffer, aDesc, WHERE_DESC.bytes / 4);
  const [n0, n1, n2] = c.sh;
  d[WHERE_DESC.n1 / 4] = n1;
  d[WHERE_DESC.n2 / 4] = n2;
  d[WHERE_DESC.x / 4] = ax;
  d[WHERE_DESC.xs0 / 4] = c.b[0] * E;
  d[WHERE_DESC.xs1 / 4] = c.b[1] * E;
  d[WHERE_DESC.m / 4] = aMask;
  d[WHERE_DESC.ms0 / 4] = c.a[0] * E;
  d[WHERE_DESC.ms1 / 4] = c.a[1] * E;
  d[WHERE_DESC.mInner / 4] = c.a[2] === 1 && n2 > 1 ? 1 : 0;
  d[WHERE_DESC.out / 4] = ao;
  view[(aDesc + WHERE_DESC.v) / E] = (keepX ? b : a).item();
  runMap(rt, `where_${dt}`, n0 * n1, size, [aDesc], io >= 0 ? 'scratch' : false);
  if (io < 0) out.set(view.subarray(ao / E, ao / E + size));
  ar.close();
  return fromStorage(out, shape);
}
