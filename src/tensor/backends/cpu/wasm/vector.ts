/**
 * Building blocks shared by the WebAssembly kernel emitters (elementwise.ts, reduce.ts, fft.ts):
 * per-dtype SIMD instruction selection ({@link Simd}), loop and pointer idioms, the vectorised
 * exp, and float64 accumulation of f32/f64 vectors.
 */
import { I32, V128, type Fn } from './builder.js';
import { relaxedSimd } from './features.js';

/** Element types of the SIMD kernels. */
export type DT = 'f32' | 'f64';

/** Per-dtype instruction selection: `v.add()` emits `f32x4.add` or `f64x2.add`. */
export class Simd {
  /** Bytes per element. */
  readonly E: number;
  /** Elements per v128. */
  readonly lanes: number;
  constructor(
    readonly f: Fn,
    readonly dt: DT,
  ) {
    this.E = dt === 'f32' ? 4 : 8;
    this.lanes = 16 / this.E;
  }
  add(): void {
    if (this.dt === 'f32') this.f.f32x4_add();
    else this.f.f64x2_add();
  }
  sub(): void {
    if (this.dt === 'f32') this.f.f32x4_sub();
    else this.f.f64x2_sub();
  }
  mul(): void {
    if (this.dt === 'f32') this.f.f32x4_mul();
    else this.f.f64x2_mul();
  }
  div(): void {
    if (this.dt === 'f32') this.f.f32x4_div();
    else this.f.f64x2_div();
  }
  max(): void {
    if (this.dt === 'f32') this.f.f32x4_max();
    else this.f.f64x2_max();
  }
  pmin(): void {
    if (this.dt === 'f32') this.f.f32x4_pmin();
    else this.f.f64x2_pmin();
  }
  pmax(): void {
    if (this.dt === 'f32') this.f.f32x4_pmax();
    else this.f.f64x2_pmax();
  }
  gt(): void {
    if (this.dt === 'f32') this.f.f32x4_gt();
    else this.f.f64x2_gt();
  }
  lt(): void {
    if (this.dt === 'f32') this.f.f32x4_lt();
    else this.f.f64x2_lt();
  }
  ne(): void {
    if (this.dt === 'f32') this.f.f32x4_ne();
    else this.f.f64x2_ne();
  }
  neg(): void {
    if (this.dt === 'f32') this.f.f32x4_neg();
    else this.f.f64x2_neg();
  }
  abs(): void {
    if (this.dt === 'f32') this.f.f32x4_abs();
    else this.f.f64x2_abs();
  }
  sqrt(): void {
    if (this.dt === 'f32') this.f.f32x4_sqrt();
    else this.f.f64x2_sqrt();
  }
  nearest(): void {
    if (this.dt === 'f32') this.f.f32x4_nearest();
    else this.f.f64x2_nearest();
  }
  /** v128 constant with `v` in every lane. */
  c(v: number): void {
    if (this.dt === 'f32') this.f.f32x4_const(v);
    else this.f.f64x2_const(v);
  }
  /** load one element splatted over all lanes */
  splat(off = 0): void {
    if (this.dt === 'f32') this.f.v128_load32_splat(off);
    else this.f.v128_load64_splat(off);
  }
  /** store lane 0 as a scalar: stack [addr, v128] */
  store0(off = 0): void {
    if (this.dt === 'f32') this.f.f32x4_extract_lane(0).f32_store(off);
    else this.f.f64x2_extract_lane(0).f64_store(off);
  }
  /** scalar load */
  load(off = 0): void {
    if (this.dt === 'f32') this.f.f32_load(off);
    else this.f.f64_load(off);
  }
  /** scalar store */
  store(off = 0): void {
    if (this.dt === 'f32') this.f.f32_store(off);
    else this.f.f64_store(off);
  }
  /** scalar zero */
  zero(): void {
    if (this.dt === 'f32') this.f.f32_const(0);
    else this.f.f64_const(0);
  }
  /** `end = p + ⌊n / lanes⌋·lanes·E`: the byte address after the whole vectors of n elements from p. */
  vectorEnd(p: number, n: number, end: number): void {
    this.f.get(p).get(n).i32_const(-this.lanes).i32_and().i32_const(this.E).i32_mul().i32_add().set(end);
  }
}

// ---- control flow and pointers ------------------------------------------------------------------

/**
 * A loop: `exit()` emits the i32 condition that leaves it, checked before every `body()`. Inside
 * the body `br(0)` continues and `br(1)` breaks (the block/loop pair is the body's depth 1/0).
 */
export function loop(f: Fn, exit: () => void, body: () => void): void {
  f.block().loop();
  exit();
  f.br_if(1);
  body();
  f.br(0);
  f.end().end();
}

/** `while (a < b) body()`, signed comparison of locals a and b. */
export function whileLt(f: Fn, a: number, b: number, body: () => void): void {
  loop(f, () => f.get(a).get(b).i32_ge_s(), body);
}

/** `while (a < b) body()`, unsigned comparison (byte addresses). */
export function whileLtU(f: Fn, a: number, b: number, body: () => void): void {
  loop(f, () => f.get(a).get(b).i32_ge_u(), body);
}

/** `dst = min(a, b)` of two i32 values (each emitted by its callback, twice), signed. */
export function minInto(f: Fn, dst: number, a: () => void, b: () => void): void {
  a();
  b();
  a();
  b();
  f.i32_lt_s().select().set(dst);
}

/** `dst = max(a, b)` of two i32 values (each emitted by its callback, twice), signed. */
export function maxInto(f: Fn, dst: number, a: () => void, b: () => void): void {
  a();
  b();
  a();
  b();
  f.i32_gt_s().select().set(dst);
}

/** `local += by`. */
export function inc(f: Fn, local: number, by: number): void {
  f.get(local).i32_const(by).i32_add().set(local);
}

/**
 * For flat index i ∈ [s, e) of an outer × inner layout: o = i / inner, j = i − o·inner and
 * len = min(inner − j, e − i), the part of row o that lies in [i, e).
 */
export function rowSegment(f: Fn, i: number, e: number, inner: number, o: number, j: number, len: number): void {
  f.get(i).get(inner).i32_div_s().set(o);
  f.get(i).get(o).get(inner).i32_mul().i32_sub().set(j);
  f.get(inner).get(j).i32_sub().get(e).get(i).i32_sub();
  f.get(inner).get(j).i32_sub().get(e).get(i).i32_sub().i32_lt_s().select().set(len);
}

// ---- exp ----------------------------------------------------------------------------------------

/** Scratch v128 locals for the exp sequence (allocated once per function). */
export interface ExpLocals {
  n: number;
  r: number;
  p: number;
}

/** Declares the exp scratch locals. */
export function expLocals(f: Fn): ExpLocals {
  return { n: f.local(V128), r: f.local(V128), p: f.local(V128) };
}

/**
 * Clamp bounds of exp's argument. The result is 2p·2^(n−1) with n = nearest(x·log2 e) and the
 * scale built in the exponent bits, so the bounds give the edge cases without selects: at HI,
 * n = 2^(e−1) + 1 (129 in f32, 1025 in f64) sets the all-ones exponent, the scale is +∞ and so is
 * the result (arguments between ln(max) and HI overflow in the last multiply); at LO, n − 1 is
 * one below the smallest exponent, the scale's bits are all zero and the result is +0. NaN
 * passes the clamps (pmin / pmax return their first operand) and the polynomial.
 */
const EXP_BOUNDS = { f32: { HI: 89.4, LO: -87.0 }, f64: { HI: 710.4, LO: -708.4 } };

/**
 * exp of the v128 on the stack; leaves the result on the stack. Range reduction by ln 2, Taylor
 * polynomial (f32 degree 7, f64 degree 13) by Horner — each step one `relaxed_madd` where relaxed
 * SIMD is on (features.ts), else mul then add —, scaled by 2^n in the exponent bits. Overflow
 * gives +∞ and arguments below LO give 0 through the clamp alone ({@link EXP_BOUNDS}).
 */
export function emitExp(v: Simd, L: ExpLocals): void {
  const f = v.f;
  const f32 = v.dt === 'f32';
  const { HI, LO } = EXP_BOUNDS[v.dt];
  const LN2HI = f32 ? 0.693359375 : 6.9314718036912381649e-1;
  const LN2LO = f32 ? -2.1219444e-4 : 1.90821492927058770002e-10;
  const fma = relaxedSimd();
  const madd = () => (f32 ? f.f32x4_relaxed_madd() : f.f64x2_relaxed_madd());
  // xc = clamp(x)
  v.c(HI);
  v.pmin();
  v.c(LO);
  v.pmax();
  f.tee(L.r);
  // n = nearest(xc * log2e)
  v.c(Math.LOG2E);
  v.mul();
  v.nearest();
  f.set(L.n);
  // r = (xc - n*LN2HI) - n*LN2LO (n·LN2HI and the first difference are exact, so the fused
  // form differs only in the second rounding)
  if (fma) {
    f.get(L.n);
    v.c(-LN2HI);
    f.get(L.r);
    madd();
    f.set(L.r);
    f.get(L.n);
    v.c(-LN2LO);
    f.get(L.r);
    madd();
  } else {
    f.get(L.r).get(L.n);
    v.c(LN2HI);
    v.mul();
    v.sub();
    f.get(L.n);
    v.c(LN2LO);
    v.mul();
    v.sub();
  }
  f.set(L.r);
  // p = Σ r^k / k! (Horner)
  const deg = f32 ? 7 : 13;
  let fact = 1;
  const coef: number[] = [];
  for (let k = 0; k <= deg; k++) {
    if (k > 0) fact *= k;
    coef.push(1 / fact);
  }
  v.c(coef[deg]);
  for (let k = deg - 1; k >= 0; k--) {
    if (fma) {
      // p·r + c in one instruction (fused where the CPU has FMA: one rounding instead of two)
      f.get(L.r);
      v.c(coef[k]);
      madd();
      continue;
    }
    f.get(L.r);
    v.mul();
    v.c(coef[k]);
    v.add();
  }
  f.tee(L.p).get(L.p);
  v.add(); // 2p
  // scale = 2^(n-1) built in the exponent bits (n-1 keeps n = max exponent + 1 finite). n is an
  // integer within the clamped range or NaN (then p is NaN, whatever the scale): relaxed SIMD's
  // truncation (one cvttps2dq on x64; the saturating one takes five) is exact there
  f.get(L.n);
  if (f32) {
    if (fma) f.i32x4_relaxed_trunc_f32x4_s();
    else f.i32x4_trunc_sat_f32x4_s();
    f.i32x4_const(126).i32x4_add().i32_const(23).i32x4_shl();
  } else {
    if (fma) f.i32x4_relaxed_trunc_f64x2_s_zero();
    else f.i32x4_trunc_sat_f64x2_s_zero();
    f.i64x2_extend_low_i32x4_s().i64x2_const(1022).i64x2_add().i32_const(52).i64x2_shl();
  }
  v.mul();
}

/**
 * The running max of a row into the v128 local `vm` (lanes: partial maxima): vectors from `px`
 * up to `pv`, then single elements (splat) up to `pe`; `px` ends at `pe`. For the softmax rows:
 * NaN elements may be skipped (see below), the result when there is none is the row's max.
 */
export function rowMax(v: Simd, px: number, pv: number, pe: number, vm: number): void {
  const f = v.f;
  v.c(-Infinity);
  f.set(vm);
  // two accumulators (pmax's latency, not the loads, bounds one); pmax is one instruction where
  // max's NaN and ±0 rules take several, and dropping NaN here changes no result of its users:
  // a NaN element makes its row's exp sum NaN, so the row still ends all-NaN
  const vm2 = f.local(V128),
    p2 = f.local(I32);
  f.get(vm).set(vm2);
  f.get(pv).i32_const(16).i32_sub().set(p2);
  whileLt(f, px, p2, () => {
    f.get(vm).get(px).v128_load(0);
    v.pmax();
    f.set(vm);
    f.get(vm2).get(px).v128_load(16);
    v.pmax();
    f.set(vm2);
    inc(f, px, 32);
  });
  f.get(vm).get(vm2);
  v.pmax();
  f.set(vm);
  whileLt(f, px, pv, () => {
    f.get(vm).get(px).v128_load(0);
    v.pmax();
    f.set(vm);
    inc(f, px, 16);
  });
  whileLt(f, px, pe, () => {
    f.get(vm).get(px);
    v.splat();
    v.max();
    f.set(vm);
    inc(f, px, v.dt === 'f32' ? 4 : 8);
  });
}

// ---- float64 accumulation ---------------------------------------------------------------------

/** Lanes 2 and 3 of an f32x4 moved to lanes 0 and 1 (then `f64x2.promote_low` widens them). */
export const HIGH_HALF = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];

/** Zeroes a float64 sum: the v128 accumulators acc0/acc1 and the scalar `tail`. */
export function zeroSum(f: Fn, acc0: number, acc1: number, tail: number): void {
  f.f64x2_const(0).set(acc0);
  f.f64x2_const(0).set(acc1);
  f.f64_const(0).set(tail);
}

/** Adds the float64 value(s) of the v128 `x` (element type dt) into accumulators acc0/acc1. */
export function accumulate(v: Simd, x: number, acc0: number, acc1: number): void {
  const f = v.f;
  if (v.dt === 'f32') {
    f.get(acc0).get(x).f64x2_promote_low_f32x4().f64x2_add().set(acc0);
    f.get(acc1).get(x).get(x).i8x16_shuffle(HIGH_HALF).f64x2_promote_low_f32x4().f64x2_add().set(acc1);
  } else {
    f.get(acc0).get(x).f64x2_add().set(acc0);
  }
}

/**
 * Sums a row in float64 into acc0/acc1/tail (then `sumTotal`): vectors from `p` up to `pv`,
 * single elements up to `pe`; `p` ends at `pe`; `t` is a v128 scratch local.
 */
export function rowSum(v: Simd, p: number, pv: number, pe: number, t: number, acc0: number, acc1: number, tail: number): void {
  const f = v.f;
  zeroSum(f, acc0, acc1, tail);
  whileLt(f, p, pv, () => {
    f.get(p).v128_load(0).set(t);
    accumulate(v, t, acc0, acc1);
    inc(f, p, 16);
  });
  whileLt(f, p, pe, () => {
    f.get(tail).get(p);
    if (v.dt === 'f32') f.f32_load(0).f64_promote_f32();
    else f.f64_load(0);
    f.f64_add().set(tail);
    inc(f, p, v.dt === 'f32' ? 4 : 8);
  });
}

/** Pushes the f64 total of a float64 sum: (acc0 + acc1, both lanes) + tail (acc0 is overwritten). */
export function sumTotal(f: Fn, acc0: number, acc1: number, tail: number): void {
  f.get(acc0).get(acc1).f64x2_add().set(acc0);
  f.get(acc0).f64x2_extract_lane(0).get(acc0).f64x2_extract_lane(1).f64_add().get(tail).f64_add();
}
