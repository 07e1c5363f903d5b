/**
 * Small seeded pseudo-random number generator for data generation and shuffling.
 *
 * Algorithm: **mulberry32** (Tommy Ettinger, public domain). The state is one 32-bit word `a`;
 * each draw does
 *
 * ```
 * a = (a + 0x6D2B79F5) mod 2^32
 * t = imul(a ^ (a >>> 15), a | 1)
 * t = (t + imul(t ^ (t >>> 7), t | 61)) ^ t
 * out = (t ^ (t >>> 14)) >>> 0            // uniform 32-bit unsigned integer
 * ```
 *
 * Its period is 2^32, which is plenty for shuffling and generating synthetic data, and the whole
 * state is a single number, so it can be saved and restored exactly ({@link Rng.state}).
 * Sub-streams (e.g. one permutation per epoch) are seeded with {@link deriveSeed}, which mixes the
 * base seed and the stream ids with the murmur3 32-bit finaliser.
 *
 * It is NOT PyTorch's generator: data order cannot be bit-matched with the reference (docs/MEGA.md §9.6).
 */

/** murmur3 `fmix32` finaliser: a bijective avalanche mix of a 32-bit word. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Derive a 32-bit seed from a base seed and stream ids (e.g. `deriveSeed(seed, epoch)`).
 * Deterministic; different id tuples give (with overwhelming probability) unrelated streams.
 */
export function deriveSeed(seed: number, ...ids: number[]): number {
  let h = fmix32((seed >>> 0) ^ 0x9e3779b9);
  for (const id of ids) h = fmix32((h + Math.imul((id >>> 0) ^ 0x7f4a7c15, 0x9e3779b1)) >>> 0);
  return h;
}

/** Seeded mulberry32 generator (see the module comment for the algorithm). */
export class Rng {
  private a: number;

  /** @param seed any number; only its low 32 bits (`seed >>> 0`) are used */
  constructor(seed: number) {
    this.a = seed >>> 0;
  }

  /** The complete generator state (a 32-bit unsigned integer); assign it to restore. */
  get state(): number {
    return this.a;
  }

  set state(s: number) {
    this.a = s >>> 0;
  }

  /** Next uniform 32-bit unsigned integer. */
  nextU32(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t = (t + Math.imul(t ^ (t >>> 7), t | 61)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Next uniform float in `[0, 1)` (32 random bits). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in `[0, n)` without modulo bias (rejection sampling); `1 <= n <= 2^32`. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 4294967296) {
      throw new RangeError(`Rng.int: n = ${n}, expected an integer in [1, 2^32]`);
    }
    const limit = 4294967296 - (4294967296 % n); // largest multiple of n <= 2^32
    let x = this.nextU32();
    while (x >= limit) x = this.nextU32();
    return x % n;
  }

  /** Uniform integer in the inclusive range `[lo, hi]`. */
  intBetween(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** A uniformly chosen element of a non-empty array. */
  choice<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /** Fisher–Yates shuffle in place (from the last position down); returns `arr`. */
  shuffle<A extends { length: number; [i: number]: unknown }>(arr: A): A {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = arr[i];
      arr[i] = arr[j];
      arr[j] = t;
    }
    return arr;
  }

  /** A uniformly random permutation of `0..n-1`. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }
}
