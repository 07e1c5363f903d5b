/**
 * Seeded random numbers, reproducible across runs and machines.
 *
 * Algorithm: xoshiro128** (Blackman & Vigna) on four 32-bit words, seeded by running
 * splitmix32 on the seed. `uniform()` = next() / 2^32 ∈ [0, 1). `normal()` uses the Box–Muller
 * transform on two uniforms (1 − u1 avoids log 0) and returns the cosine branch only, so every
 * normal consumes exactly two 32-bit draws. The state (four words) can be saved and restored.
 */
import { allocateOut } from './backends/cpu/resident.js';
import { hostSync } from './host-sync.js';
import { dropoutMaskWasm } from './backends/cpu/random-simd.js';
import { allocate, type DType, type FloatStorage } from './dtype.js';
import { checkShape, sizeOf, type Shape } from './shape.js';
import { fromStorage, type Tensor } from './tensor.js';

/** A xoshiro128** generator. */
export class Generator {
  private s = new Uint32Array(4);
  /**
   * While queued kernel jobs advance the state (dropout masks drawn on a worker,
   * backends/cpu/random-simd.ts): the four words in the wasm memory where they do. The next use
   * here waits for those jobs and takes the words back ({@link here}).
   */
  private away: Uint32Array | null = null;

  constructor(seed = 0) {
    this.seed(seed);
  }

  /** Re-seeds with splitmix32(seed). */
  seed(seed: number): void {
    this.here();
    let z = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      z = (z + 0x9e3779b9) >>> 0;
      let t = z;
      t = Math.imul(t ^ (t >>> 16), 0x85ebca6b) >>> 0;
      t = Math.imul(t ^ (t >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (t ^ (t >>> 16)) >>> 0;
    }
    if (this.s.every((w) => w === 0)) this.s[0] = 1;
  }

  /** The next 32-bit unsigned integer. */
  nextU32(): number {
    const s = this.away === null ? this.s : this.here();
    const r = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return r;
  }

  /**
   * Writes the next `n` uniforms in [0, 1) to `out[0…n)` — the values of n `uniform()` calls,
   * with the state in locals (the bulk path of randUniform and dropoutMask).
   */
  fillUniforms(out: Float64Array | Float32Array, n = out.length): void {
    const st = this.here();
    let s0 = st[0] | 0,
      s1 = st[1] | 0,
      s2 = st[2] | 0,
      s3 = st[3] | 0;
    for (let i = 0; i < n; i++) {
      const x = Math.imul(s1, 5);
      const r = Math.imul((x << 7) | (x >>> 25), 9) >>> 0;
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      out[i] = r / 4294967296;
    }
    st[0] = s0;
    st[1] = s1;
    st[2] = s2;
    st[3] = s3;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextU32() / 4294967296;
  }

  /** Standard normal (Box–Muller, cosine branch). */
  normal(): number {
    const u1 = this.uniform(),
      u2 = this.uniform();
    return Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** The live state words (advanced in place by the WebAssembly dropout mask). */
  get words(): Uint32Array {
    return this.here();
  }

  /** The four state words (for checkpoints). */
  getState(): number[] {
    return Array.from(this.here());
  }

  /** Restores a state from `getState()`. */
  setState(state: readonly number[]): void {
    this.here().set(state.map((w) => w >>> 0));
  }

  /**
   * Hands the state to queued jobs: `words` (four u32 in the wasm memory, stamped with the jobs
   * that write them) holds the current state, and the jobs queued after this call advance it
   * there. `lent()` returns it to the next such job; any other use takes the words back first.
   */
  lend(words: Uint32Array): void {
    if (this.away === null) words.set(this.s);
    this.away = words;
  }

  /** The words lent to queued jobs ({@link lend}), or null when the state is here. */
  lent(): Uint32Array | null {
    return this.away;
  }

  /** The state words, back from the queued jobs that advanced them (waiting for those jobs). */
  private here(): Uint32Array {
    const a = this.away;
    if (a !== null) {
      if (hostSync.pending) hostSync.settle(a);
      this.s.set(a);
      this.away = null;
    }
    return this.s;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** The process-wide default generator (`manualSeed` resets it). */
export const defaultGenerator = new Generator(0);

/** Re-seeds the default generator. */
export function manualSeed(seed: number): void {
  defaultGenerator.seed(seed);
}

/** Uniform samples in [low, high). */
export function randUniform(shape: Shape, low = 0, high = 1, dtype: DType = 'f32', gen = defaultGenerator): Tensor {
  checkShape(shape, 'randUniform');
  const s = allocate(dtype, sizeOf(shape));
  if (low === 0 && high === 1 && (s instanceof Float32Array || s instanceof Float64Array)) gen.fillUniforms(s);
  else for (let i = 0; i < s.length; i++) s[i] = low + (high - low) * gen.uniform();
  return fromStorage(s, shape);
}

let uniformScratch: Float64Array | undefined;

/**
 * The scaled keep mask of inverted dropout in one pass: `m = u ≥ p ? 1/(1−p) : 0` per element,
 * `u` a uniform of `gen` rounded to `dtype` (as `randUniform` stores it), compared with `p`
 * rounded to `dtype` — the values of `cast(randUniform(shape) ≥ p) · 1/(1−p)`. Drawn by the
 * WebAssembly kernel when the SIMD kernels are on (same values); the loop below is the reference.
 */
export function dropoutMask(shape: Shape, p: number, dtype: 'f32' | 'f64', gen = defaultGenerator): Tensor {
  checkShape(shape, 'dropoutMask');
  const m = allocateOut(dtype, sizeOf(shape), false) as FloatStorage;
  const f32 = dtype === 'f32';
  const pp = f32 ? Math.fround(p) : p;
  const scale = f32 ? Math.fround(1 / (1 - p)) : 1 / (1 - p);
  if (dropoutMaskWasm(m, pp, scale, gen)) return fromStorage(m, shape);
  const u = (uniformScratch ??= new Float64Array(4096));
  for (let i0 = 0; i0 < m.length; i0 += u.length) {
    const n = Math.min(u.length, m.length - i0);
    gen.fillUniforms(u, n);
    if (f32) for (let i = 0; i < n; i++) m[i0 + i] = Math.fround(u[i]) >= pp ? scale : 0;
    else for (let i = 0; i < n; i++) m[i0 + i] = u[i] >= pp ? scale : 0;
  }
  return fromStorage(m, shape);
}

/** Normal samples with the given mean and standard deviation. */
export function randNormal(shape: Shape, mean = 0, std = 1, dtype: DType = 'f32', gen = defaultGenerator): Tensor {
  checkShape(shape, 'randNormal');
  const s = allocate(dtype, sizeOf(shape));
  for (let i = 0; i < s.length; i++) s[i] = mean + std * gen.normal();
  return fromStorage(s, shape);
}
