/**
 * WebAssembly SIMD path of the CPU `toeplitz` / `toeplitzGrad` kernels (wasm/toeplitz.ts): rows of
 * the matrix, and ranges of the gradient's entries, split over the pool. Same additions in the
 * same order as the plain-TS kernels of toeplitz.ts (the reference, also what runs for small
 * sizes, other dtypes or without SIMD): bitwise equal results. Operands are read in place when
 * resident, else staged; a resident output is written in place.
 */
import type { FloatStorage } from '../../dtype.js';
import { fromStorage, type Tensor } from '../../tensor.js';
import { checkToeplitz, checkToeplitzGrad } from '../checks.js';
import { allocateOut, residentActive } from './resident.js';
import { inPlace, minSize, runMap, stage, storageAddr } from './simd.js';
import { wasmArena, wasmRuntime } from './wasm/runtime.js';

type FDT = 'f32' | 'f64';

/** Runs map `name` with operand `x` (read in place or staged) into a fresh output of `size` elements (`zero`: zeros on entry). */
function mapInto(name: string, x: Tensor, size: number, zero: boolean, total: number, n: number, M: number): FloatStorage {
  const rt = wasmRuntime()!;
  const dt = x.dtype as FDT;
  const E = dt === 'f32' ? 4 : 8;
  const out = allocateOut(dt, size, zero) as FloatStorage;
  const ix = inPlace(x),
    io = storageAddr(out);
  const ar = wasmArena(rt);
  ar.reset();
  const px = ix >= 0 ? ix : ar.alloc(x.size * E),
    po = io >= 0 ? io : ar.alloc(size * E);
  ar.commit();
  const view = dt === 'f32' ? ar.f32 : ar.f64;
  if (ix < 0) stage(view, px, E, x);
  if (io < 0 && zero) view.fill(0, po / E, po / E + size);
  runMap(rt, `${name}_${dt}`, total, n * n, [px, po, n, M]);
  if (io < 0) out.set(view.subarray(po / E, po / E + size));
  ar.close();
  return out;
}

/** Whether the SIMD path takes an `n × n` matrix of `t`'s dtype. */
function takes(t: Tensor, n: number): boolean {
  return (t.dtype === 'f32' || t.dtype === 'f64') && n * n >= minSize(residentActive() && inPlace(t) >= 0) && wasmRuntime() !== null;
}

/** SIMD `toeplitz`: `[n, n]`, `out[i, j] = w[M − 1 + j − i]`; null where the plain-TS kernel runs. */
export function toeplitzSimd(w: Tensor, n: number): Tensor | null {
  const M = checkToeplitz(w, n);
  if (!takes(w, n)) return null;
  return fromStorage(mapInto('toeplitz', w, n * n, false, n, n, M), [n, n]);
}

/** SIMD `toeplitzGrad`: the `[2M − 1]` diagonal sums of `g` `[n, n]`; null where the plain-TS kernel runs. */
export function toeplitzGradSimd(g: Tensor, length: number): Tensor | null {
  const M = checkToeplitzGrad(g, length);
  const n = g.shape[0];
  if (!takes(g, n)) return null;
  return fromStorage(mapInto('tgrad', g, length, true, length, n, M), [length]);
}
