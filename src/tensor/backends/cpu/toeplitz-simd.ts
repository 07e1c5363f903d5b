/**
 * WebAssembly SIMD path of the CPU `toeplitz` / `toeplitzGrad` kernels (wasm/toeplitz.ts): rows of
 * the matrix, and ranges of the gradient's entries, split over the pool. Same additions in the
 * same order as the plain-TS kernels of toeplitz.ts (the reference, also what runs for small
 * sizes, other dtypes or without SIMD): bitwise equal results. Operands are read in place when
 * resident, else staged, and a resident output is written in place (simd-fused.ts `Call`).
 */
import type { FloatStorage } from '../../dtype.js';
import { fromStorage, type Tensor } from '../../tensor.js';
import { checkToeplitz, checkToeplitzGrad } from '../checks.js';
import { allocateOut, residentActive } from './resident.js';
import { Call } from './simd-fused.js';
import { inPlace, minSize, runMap, storageAddr } from './simd.js';
import { wasmRuntime } from './wasm/runtime.js';

/** Runs map `name` with operand `x` into a fresh output of `size` elements (`zero`: zeros on entry). */
function mapInto(name: string, x: Tensor, size: number, zero: boolean, total: number, n: number, M: number): FloatStorage {
  const out = allocateOut(x.dtype, size, zero) as FloatStorage;
  const c = new Call(x.dtype as 'f32' | 'f64');
  const px = c.input(x),
    po = c.output(out, size);
  const view = c.open();
  if (zero && storageAddr(out) < 0) view.fill(0, po / c.E, po / c.E + size);
  runMap(wasmRuntime()!, `${name}_${c.dt}`, total, n * n, [px, po, n, M], c.defer());
  c.close();
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
