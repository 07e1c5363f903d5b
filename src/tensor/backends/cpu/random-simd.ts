/**
 * The WebAssembly path of `dropoutMask` (src/tensor/random.ts): the mask is drawn by the
 * `dropout_<dt>` kernel of wasm/random.ts straight into a resident output block, or into the
 * arena and copied out. The TypeScript loop in random.ts stays the reference (same values, same
 * generator state afterwards).
 */
import type { FloatStorage } from '../../dtype.js';
import { storageAddr } from './simd.js';
import { wasmArena, wasmRuntime } from './wasm/runtime.js';

/**
 * The smallest 32-bit draw `r` that the TypeScript keep test `u ≥ p` keeps, `u` = r / 2³² (exact
 * in f64) rounded to f32 when `f32`; 2³² when it keeps none. The test is monotone in r (r / 2³²
 * increases with r and rounding to f32 never decreases), so a binary search over it finds the
 * threshold exactly: `r ≥ keepThreshold(p)` ⇔ the test, for every r.
 */
export function keepThreshold(p: number, f32: boolean): number {
  const keeps = (r: number) => (f32 ? Math.fround(r / 4294967296) : r / 4294967296) >= p;
  let a = 0,
    b = 4294967296; // keeps(b) is taken as true: the answer is in [a, b]
  while (a < b) {
    const m = Math.floor((a + b) / 2);
    if (keeps(m)) b = m;
    else a = m + 1;
  }
  return a;
}

const bits = new DataView(new ArrayBuffer(8));
let lastKey = NaN,
  lastF32 = false,
  lastR0 = 0;

/**
 * Fills `out` with the dropout mask `u ≥ p ? scale : 0` of the next `out.length` draws of the
 * xoshiro128** state `state` (four words, advanced in place); `p` and `scale` already rounded to
 * `out`'s dtype. False (nothing done) when the wasm kernels are unavailable.
 */
export function dropoutMaskWasm(out: FloatStorage, p: number, scale: number, state: Uint32Array): boolean {
  const rt = wasmRuntime();
  if (!rt) return false;
  const f32 = out instanceof Float32Array;
  if (!(p === lastKey && f32 === lastF32)) {
    lastR0 = keepThreshold(p, f32);
    lastKey = p;
    lastF32 = f32;
  }
  let lo: number, hi: number;
  if (f32) {
    bits.setFloat32(0, scale, true);
    lo = bits.getInt32(0, true);
    hi = 0;
  } else {
    bits.setFloat64(0, scale, true);
    lo = bits.getInt32(0, true);
    hi = bits.getInt32(4, true);
  }
  const E = f32 ? 4 : 8;
  const n = out.length;
  const ar = wasmArena(rt);
  ar.reset();
  const as = ar.alloc(16);
  const io = storageAddr(out),
    ao = io >= 0 ? io : ar.alloc(n * E);
  ar.commit();
  const words = new Uint32Array(rt.memory.buffer, as, 4);
  words.set(state);
  rt.main.ex[f32 ? 'dropout_f32' : 'dropout_f64'](ao, n, as, lastR0, lo, hi);
  state.set(words);
  if (io < 0) {
    const view = f32 ? ar.f32 : ar.f64;
    out.set(view.subarray(ao / E, ao / E + n));
  }
  ar.close();
  return true;
}
