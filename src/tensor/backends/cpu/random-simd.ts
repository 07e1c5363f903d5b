/**
 * The WebAssembly path of `dropoutMask` (src/tensor/random.ts): the mask is drawn by the
 * `dropout_<dt>` kernel of wasm/random.ts straight into a resident output block (a queued job
 * when jobs are deferred), or into the arena and copied out. The TypeScript loop in random.ts
 * stays the reference (same values, same generator state afterwards).
 */
import type { FloatStorage } from '../../dtype.js';
import type { Generator } from '../../random.js';
import { persistentStorage } from './resident.js';
import { storageAddr } from './simd.js';
import { callReads, closeCall, deferring, OP_DROPOUT, openCall, runJob, stampWritten, wasmArena, wasmRuntime } from './wasm/runtime.js';

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
 * Fills `out` with the dropout mask `u ≥ p ? scale : 0` of the next `out.length` draws of `gen`
 * (its state advanced); `p` and `scale` already rounded to `out`'s dtype. False (nothing done)
 * when the wasm kernels are unavailable. A resident `out` inside a scope whose jobs are deferred
 * is drawn by a queued job (a worker draws it while this thread goes on), the generator's state
 * lent to the jobs in a block of the wasm memory ({@link Generator.lend}).
 */
export function dropoutMaskWasm(out: FloatStorage, p: number, scale: number, gen: Generator): boolean {
  const rt = wasmRuntime();
  if (!rt) return false;
  const f32 = out instanceof Float32Array;
  if (!(p === lastKey && f32 === lastF32)) {
    lastR0 = keepThreshold(p, f32);
    lastKey = p;
    lastF32 = f32;
  }
  const [lo, hi] = scaleBits(scale, f32);
  const E = f32 ? 4 : 8;
  const n = out.length;
  const io = storageAddr(out);
  const words = io >= 0 && deferring() ? (gen.lent() ?? stateBlock(gen)) : null;
  if (words) {
    gen.lend(words);
    // the job reads and advances the state words: it waits for the mask that wrote them last
    // (their stamp), not for every job before it (wasm/runtime.ts "Job order")
    openCall();
    try {
      callReads(words);
      runJob(
        rt,
        false,
        1,
        (P) => {
          P[0] = OP_DROPOUT;
          P[1] = f32 ? 0 : 1;
          P[2] = io;
          P[3] = n;
          P[4] = words.byteOffset;
          P[5] = lastR0;
          P[6] = lo;
          P[7] = hi;
        },
        true,
      );
    } finally {
      closeCall();
    }
    stampWritten(words);
    stampWritten(out);
    return true;
  }
  const state = gen.words;
  const ar = wasmArena(rt);
  ar.reset();
  const as = ar.alloc(16);
  const ao = io >= 0 ? io : ar.alloc(n * E);
  ar.commit();
  const view = new Uint32Array(rt.memory.buffer, as, 4);
  view.set(state);
  rt.main.ex[f32 ? 'dropout_f32' : 'dropout_f64'](ao, n, as, lastR0, lo, hi);
  state.set(view);
  if (io < 0) {
    const v = f32 ? ar.f32 : ar.f64;
    out.set(v.subarray(ao / E, ao / E + n));
  }
  ar.close();
  return true;
}

/** The scale's bits as the kernel stores them: [low word, high word] (f64), [bits, 0] (f32). */
function scaleBits(scale: number, f32: boolean): [number, number] {
  if (f32) {
    bits.setFloat32(0, scale, true);
    return [bits.getInt32(0, true), 0];
  }
  bits.setFloat64(0, scale, true);
  return [bits.getInt32(0, true), bits.getInt32(4, true)];
}

/** Each generator's block for its state words in the wasm memory (made on first use, kept). */
const stateBlocks = new WeakMap<Generator, { block: FloatStorage; words: Uint32Array }>();

/** `gen`'s state words in the wasm memory, or null when the memory is full. */
function stateBlock(gen: Generator): Uint32Array | null {
  let b = stateBlocks.get(gen);
  if (!b) {
    // (the block lives as long as its storage object: kept here with the words' view)
    const block = persistentStorage('f64', 2);
    if (!block) return null;
    b = { block, words: new Uint32Array(block.buffer, block.byteOffset, 4) };
    stateBlocks.set(gen, b);
  }
  return b.words;
}
