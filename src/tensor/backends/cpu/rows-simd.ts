/**
 * WebAssembly paths of `indexSelect` and `indexAdd` along the first axis of a contiguous tensor —
 * an embedding's lookup and its gradient — inside resident scopes, on the row kernels of
 * wasm/rows.ts. The lookup copies rows; the gradient adds the rows in index order as
 * indexing-fast.ts does (bitwise its sums). Both may be deferred jobs (wasm/runtime.ts): the
 * gradient's rows are read in wasm code, after the job that wrote them. Each returns null where
 * it does not apply; register.ts then runs indexing-fast.ts.
 */
import { IndexError } from '../../errors.js';
import { sizeOf } from '../../shape.js';
import { fromStorage, type Tensor } from '../../tensor.js';
import { indices } from './indexing-fast.js';
import { allocateOut, residentActive } from './resident.js';
import { inPlace, runMap, storageAddr } from './simd.js';
import { ROWS_DESC } from './wasm/rows.js';
import { wasmArena, wasmRuntime, type WasmRuntime } from './wasm/runtime.js';

/** The first index outside [0, n), or -1. */
function firstBad(idx: Int32Array, n: number): number {
  for (let i = 0; i < idx.length; i++) if (idx[i] < 0 || idx[i] >= n) return i;
  return -1;
}

/**
 * Runs row kernel `name` over `total` rows with the indices copied into the scratch: rows of
 * `rb` bytes, `src` and `dst` byte addresses.
 */
function runRows(rt: WasmRuntime, name: string, total: number, work: number, idx: Int32Array, src: number, dst: number, rb: number): void {
  const ar = wasmArena(rt);
  ar.reset();
  const pi = ar.alloc(idx.length * 4),
    pd = ar.alloc(ROWS_DESC.bytes);
  ar.commit();
  const i32 = ar.i32;
  i32.set(idx, pi / 4);
  i32[(pd + ROWS_DESC.idx) / 4] = pi;
  i32[(pd + ROWS_DESC.m) / 4] = idx.length;
  i32[(pd + ROWS_DESC.src) / 4] = src;
  i32[(pd + ROWS_DESC.dst) / 4] = dst;
  i32[(pd + ROWS_DESC.rb) / 4] = rb;
  runMap(rt, name, total, work, [pd], 'scratch');
  ar.close();
}

/** `indexSelect(x, 0, index)`: rows of x [n, …] → [m, …], or null. */
export function indexSelectRows(x: Tensor, axis: number, index: Tensor): Tensor | null {
  const dt = x.dtype;
  if (axis !== 0 || (dt !== 'f32' && dt !== 'f64') || !residentActive() || x.ndim === 0) return null;
  const rt = wasmRuntime(),
    idx = indices(index),
    src = inPlace(x);
  const n = x.shape[0];
  if (!rt || !idx || src < 0 || n === 0 || idx.length === 0 || x.size === 0) return null;
  const bad = firstBad(idx, n);
  if (bad >= 0) throw new IndexError(`indexSelect: index ${idx[bad]} is out of range for axis ${axis} of size ${n}`);
  const inner = x.size / n,
    m = idx.length;
  const out = allocateOut(dt, m * inner, false);
  const dst = storageAddr(out);
  if (dst < 0) return null;
  runRows(rt, 'rows_gather', m, m * inner, idx, src, dst, inner * out.BYTES_PER_ELEMENT);
  return fromStorage(out, [m, ...x.shape.slice(1)]);
}

/** `indexAdd(shape, 0, index, src)`: rows of src [m, …] added into zeros of `shape` [n, …], or null. */
export function indexAddRows(shape: readonly number[], axis: number, index: Tensor, src: Tensor): Tensor | null {
  const dt = src.dtype;
  if (axis !== 0 || (dt !== 'f32' && dt !== 'f64') || !residentActive() || shape.length === 0 || src.ndim !== shape.length) return null;
  if (shape.some((d, i) => i > 0 && src.shape[i] !== d)) return null;
  const rt = wasmRuntime(),
    idx = indices(index),
    ps = inPlace(src);
  const n = shape[0],
    size = sizeOf(shape);
  if (!rt || !idx || ps < 0 || n === 0 || size === 0 || src.shape[0] !== idx.length || idx.length === 0) return null;
  const bad = firstBad(idx, n);
  if (bad >= 0) throw new IndexError(`indexAdd: index ${idx[bad]} is out of range for axis ${axis} of size ${n}`);
  const inner = size / n;
  const out = allocateOut(dt, size, false); // (the kernel zeroes its rows)
  const dst = storageAddr(out);
  if (dst < 0) return null;
  runRows(rt, `rows_add_${dt}`, n, idx.length * inner, idx, ps, dst, inner * out.BYTES_PER_ELEMENT);
  return fromStorage(out, [...shape]);
}
