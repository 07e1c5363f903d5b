/**
 * numpy's legacy global random generator (`np.random.seed`, `np.random.permutation`,
 * `np.random.shuffle`, `np.random.choice`), reproduced bit for bit so that fairseq's seeded data
 * orders can be rebuilt without Python.
 *
 * - The bit generator is MT19937 (Matsumoto & Nishimura, 32-bit, state of 624 words).
 * - `seed(s)` with an integer `0 <= s < 2^32` fills the state with the classic `init_genrand`
 *   recurrence `x[i] = 1812433253 · (x[i−1] ^ (x[i−1] >>> 30)) + i` (numpy's legacy seeding of an
 *   int; arrays go through `init_by_array`, which fairseq never uses).
 * - Bounded integers in `[0, max]` use numpy's masked rejection sampling: draw a 32-bit word,
 *   keep the bits under the smallest all-ones mask covering `max`, and redraw while the value
 *   exceeds `max` (for `max < 2^32`, which is every data-set size here).
 * - `shuffle` is the legacy Fisher–Yates: for `i = n−1 … 1`, swap `x[i]` with `x[j]`,
 *   `j` bounded in `[0, i]`. `permutation(n)` shuffles `0 … n−1`.
 * - `choice(a, k)` (with replacement, uniform) is `a[randint(0, len(a), k)]`, each draw bounded in
 *   `[0, len(a) − 1]` the same way.
 */
import { DataError } from '../errors.js';

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER = 0x80000000;
const LOWER = 0x7fffffff;

/** numpy's `RandomState` (legacy MT19937 generator) restricted to what fairseq's data orders use. */
export class NumpyRandomState {
  private readonly key = new Uint32Array(N);
  private pos = N;

  /** @param seed as `np.random.seed(seed)` (integer in [0, 2^32)) */
  constructor(seed: number) {
    this.seed(seed);
  }

  /**
   * Re-seeds as `np.random.seed(seed)` does for an integer.
   * @throws DataError when the seed is not an integer in [0, 2^32)
   */
  seed(seed: number): void {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new DataError(`numpy seed ${seed}: expected an integer between 0 and 2**32 - 1`);
    let s = seed >>> 0;
    for (let i = 0; i < N; i++) {
      this.key[i] = s;
      // 1812433253 · (s ^ (s >>> 30)) + i + 1, modulo 2^32
      s = (Math.imul(1812433253, (s ^ (s >>> 30)) >>> 0) + i + 1) >>> 0;
    }
    this.pos = N;
  }

  /**
   * Seeds as `np.random.RandomState([k0, k1, ...])` does (MT19937 `init_by_array`: `init_genrand(19650218)`
   * then two mixing passes over the key). fairseq's token blocks use it per epoch.
   * @throws DataError for a key element outside [0, 2^32)
   */
  seedArray(keyWords: readonly number[]): void {
    for (const w of keyWords)
      if (!Number.isInteger(w) || w < 0 || w > 0xffffffff) throw new DataError(`numpy seed array element ${w}: expected an integer between 0 and 2**32 - 1`);
    this.seed(19650218);
    const mt = this.key;
    const len = keyWords.length;
    let i = 1,
      j = 0;
    for (let k = Math.max(N, len); k > 0; k--) {
      const p = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = ((mt[i] ^ Math.imul(p >>> 0, 1664525)) + keyWords[j] + j) >>> 0;
      i++;
      j++;
      if (i >= N) {
        mt[0] = mt[N - 1];
        i = 1;
      }
      if (j >= len) j = 0;
    }
    for (let k = N - 1; k > 0; k--) {
      const p = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = ((mt[i] ^ Math.imul(p >>> 0, 1566083941)) - i) >>> 0;
      i++;
      if (i >= N) {
        mt[0] = mt[N - 1];
        i = 1;
      }
    }
    mt[0] = 0x80000000;
    this.pos = N;
  }

  /** Regenerates the 624 state words (the MT19937 "twist"). */
  private twist(): void {
    const k = this.key;
    let i = 0;
    for (; i < N - M; i++) {
      const y = (k[i] & UPPER) | (k[i + 1] & LOWER);
      k[i] = k[i + M] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    for (; i < N - 1; i++) {
      const y = (k[i] & UPPER) | (k[i + 1] & LOWER);
      k[i] = k[i + (M - N)] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    const y = (k[N - 1] & UPPER) | (k[0] & LOWER);
    k[N - 1] = k[M - 1] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    this.pos = 0;
  }

  /** The next 32-bit output (tempered), as an unsigned number. */
  nextUint32(): number {
    if (this.pos === N) this.twist();
    let y = this.key[this.pos++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /**
   * A uniform integer in `[0, max]` by masked rejection sampling (numpy's `random_interval` and
   * the legacy `randint` path).
   * @throws DataError for `max` outside [0, 2^32)
   */
  interval(max: number): number {
    if (!Number.isInteger(max) || max < 0 || max > 0xffffffff) throw new DataError(`numpy bounded draw: max ${max} out of range (expected 0..2**32-1)`);
    if (max === 0) return 0;
    let mask = max;
    mask |= mask >>> 1;
    mask |= mask >>> 2;
    mask |= mask >>> 4;
    mask |= mask >>> 8;
    mask |= mask >>> 16;
    mask >>>= 0;
    let v: number;
    do v = (this.nextUint32() & mask) >>> 0;
    while (v > max);
    return v;
  }

  /** `np.random.shuffle(x)` in place (legacy Fisher–Yates), for arrays and typed arrays. */
  shuffle<T>(x: { length: number; [i: number]: T }): void {
    for (let i = x.length - 1; i > 0; i--) {
      const j = this.interval(i);
      const t = x[i];
      x[i] = x[j];
      x[j] = t;
    }
  }

  /** `np.random.permutation(n)`: `0 … n−1` shuffled. */
  permutation(n: number): Int32Array {
    const a = new Int32Array(n);
    for (let i = 0; i < n; i++) a[i] = i;
    this.shuffle(a);
    return a;
  }

  /**
   * `np.random.choice(a, k)` (uniform, with replacement): `k` elements of `a`.
   * @throws DataError when `a` is empty
   */
  choice<T>(a: readonly T[], k: number): T[] {
    if (a.length === 0) throw new DataError('numpy choice: empty population (expected at least one element)');
    const out: T[] = [];
    for (let i = 0; i < k; i++) out.push(a[this.interval(a.length - 1)]);
    return out;
  }
}
