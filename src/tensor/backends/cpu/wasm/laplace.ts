/**
 * WebAssembly SIMD laplace attention function and its vector-Jacobian product, as map functions
 * of a task range `[s, e)` (emitted into the dispatch table by elementwise.ts):
 *
 * - `laplace_<dt>(s, e, x, out, prm, tbl)`: out[i] = 0.5·(1 + erf(z)), z = (x[i] − mu)/den.
 * - `laplacegrad_<dt>(s, e, x, g, out, prm)`: out[i] = g[i] · (exp(−z²) / c).
 *
 * `prm` is the byte address of the constants `[mu, den, c]` in the element type (c = √π·den);
 * `tbl` that of the erf Taylor table of special.ts (`ERF_TABLE`, 10 float64 per grid point; f64
 * only, f32 passes 0).
 *
 * Both follow the plain-TS kernels step by step, so they are bitwise equal to them:
 * - forward: z is rounded to the element type (as the unfused composition rounds it); f32
 *   evaluates special.ts `erf32` in float32 on four lanes ({@link emitErf32}); f64 evaluates erf
 *   exactly as special.ts `erf` does (same grid point — JavaScript's round-half-up, written as
 *   ⌊v⌋ + (v − ⌊v⌋ ≥ ½) —, same Horner order, same table);
 * - backward: the same element-type operations as the composition `g · (exp(−(z·z)) / c)` run
 *   through the SIMD elementwise kernels (whose exp is vector.ts `emitExp`).
 */
import { I32, V128, type Fn, type ModuleBuilder } from './builder.js';
import { ERF32 } from '../../../special.js';
import { emitExp, expLocals, inc, Simd, whileLt, type DT } from './vector.js';

/** Float64 values per grid point of the erf table. */
const TERMS = 10;
/** Grid points per unit of the erf table. */
const GRID = 64;
/** Largest |z| of the table; from here on erf(z) = ±1. */
const ERF_MAX = 6;

/** Locals of {@link emitErf64}. */
interface ErfLocals {
  z: number;
  ax: number;
  t: number;
  i: number;
  acc: number;
  b0: number;
  b1: number;
}

function erfLocals(f: Fn): ErfLocals {
  return {
    z: f.local(V128),
    ax: f.local(V128),
    t: f.local(V128),
    i: f.local(V128),
    acc: f.local(V128),
    b0: f.local(I32),
    b1: f.local(I32),
  };
}

/** erf of the f64x2 on the stack (special.ts `erf`, lane by lane); leaves the result on the stack. */
function emitErf64(f: Fn, tbl: number, L: ErfLocals): void {
  f.set(L.z);
  // ax = |z|, clamped to the table (pmin keeps NaN, whose index becomes 0 and result NaN)
  f.get(L.z).f64x2_abs().f64x2_const(ERF_MAX).f64x2_pmin().set(L.ax);
  // i = round-half-up(ax·64) = ⌊v⌋ + (v − ⌊v⌋ ≥ ½)
  f.get(L.ax).f64x2_const(GRID).f64x2_mul().tee(L.i).f64x2_floor().set(L.acc);
  f.get(L.acc).get(L.i).get(L.acc).f64x2_sub().f64x2_const(0.5).f64x2_ge().f64x2_const(1).v128_and().f64x2_add().set(L.i);
  // t = ax − i/64
  f.get(L.ax)
    .get(L.i)
    .f64x2_const(1 / GRID)
    .f64x2_mul()
    .f64x2_sub()
    .set(L.t);
  // byte addresses of the two lanes' table rows
  f.get(L.i).i32x4_trunc_sat_f64x2_s_zero().set(L.acc);
  f.get(tbl)
    .get(L.acc)
    .i32x4_extract_lane(0)
    .i32_const(TERMS * 8)
    .i32_mul()
    .i32_add()
    .set(L.b0);
  f.get(tbl)
    .get(L.acc)
    .i32x4_extract_lane(1)
    .i32_const(TERMS * 8)
    .i32_mul()
    .i32_add()
    .set(L.b1);
  const gather = (k: number) =>
    f
      .get(L.b0)
      .v128_load64_splat(8 * k)
      .get(L.b1)
      .f64_load(8 * k)
      .f64x2_replace_lane(1);
  // Horner: T0 + t·(T1 + t·(… + t·T9))
  gather(TERMS - 1);
  f.set(L.acc);
  for (let k = TERMS - 2; k >= 0; k--) {
    gather(k);
    f.get(L.t).get(L.acc).f64x2_mul().f64x2_add().set(L.acc);
  }
  // |z| ≥ 6 → 1
  f.f64x2_const(1).get(L.acc).get(L.z).f64x2_abs().f64x2_const(ERF_MAX).f64x2_ge().v128_bitselect().set(L.acc);
  // z > 0 ? r : z < 0 ? −r : z (keeps ±0 and NaN)
  f.get(L.acc);
  f.get(L.acc).f64x2_neg().get(L.z).get(L.z).f64x2_const(0).f64x2_lt().v128_bitselect();
  f.get(L.z).f64x2_const(0).f64x2_gt().v128_bitselect();
}

/** Locals of {@link emitErf32}. */
interface Erf32Locals {
  ax: number;
  t: number;
  acc: number;
  r: number;
}

function erf32Locals(f: Fn): Erf32Locals {
  return { ax: f.local(V128), t: f.local(V128), acc: f.local(V128), r: f.local(V128) };
}

/**
 * erf of the f32x4 in local `z` by special.ts `erf32` (its pieces evaluated for every lane, then
 * selected; each multiply and add rounded, no fused multiply-add), leaving it on the stack: bitwise
 * equal to `erf32` lane by lane.
 */
function emitErf32(f: Fn, z: number, L: Erf32Locals): void {
  const E = ERF32;
  /** Horner of `c` at the vector in local t, into local acc. */
  const horner = (c: number[]): void => {
    f.f32x4_const(c[c.length - 1]).set(L.acc);
    for (let k = c.length - 2; k >= 0; k--) f.get(L.acc).get(L.t).f32x4_mul().f32x4_const(c[k]).f32x4_add().set(L.acc);
  };
  f.get(z).f32x4_abs().set(L.ax);
  // a2 < |z|: P3(|z| − m3); a1 < |z| ≤ a2: P2(|z| − m2) (NaN takes P3's NaN)
  f.get(L.ax).f32x4_const(E.m3).f32x4_sub().set(L.t);
  horner(E.p3);
  f.get(L.acc).set(L.r);
  f.get(L.ax).f32x4_const(E.m2).f32x4_sub().set(L.t);
  horner(E.p2);
  f.get(L.acc).get(L.r).get(L.ax).f32x4_const(E.a2).f32x4_le().v128_bitselect().set(L.r);
  // |z| ≤ a1: |z| + |z|·P1(z²)
  f.get(L.ax).get(L.ax).f32x4_mul().set(L.t);
  horner(E.p1);
  f.get(L.ax).get(L.ax).get(L.acc).f32x4_mul().f32x4_add();
  f.get(L.r).get(L.ax).f32x4_const(E.a1).f32x4_le().v128_bitselect().set(L.r);
  // |z| > a3: 1; then pmin(r, 1) (1 < r ? 1 : r: keeps a NaN as it is); r ≥ +0, so OR-ing in z's sign bit restores the sign
  f.f32x4_const(1).get(L.r).get(L.ax).f32x4_const(E.a3).f32x4_gt().v128_bitselect();
  f.f32x4_const(1).f32x4_pmin();
  f.get(z).f32x4_const(-0).v128_and().v128_or();
}

/** `laplace_<dt>(s, e, x, out, prm, tbl)`. */
function emitLaplace(mb: ModuleBuilder, dt: DT): string {
  const name = `laplace_${dt}`;
  const f = mb.fn(name, [I32, I32, I32, I32, I32, I32]);
  const v = new Simd(f, dt);
  const E = v.E;
  const [s, e, x, out, prm, tbl] = [0, 1, 2, 3, 4, 5];
  const px = f.local(I32),
    po = f.local(I32),
    pv = f.local(I32),
    pe = f.local(I32),
    n = f.local(I32);
  const mu = f.local(V128),
    den = f.local(V128),
    z = f.local(V128);
  const L = dt === 'f64' ? erfLocals(f) : null;
  const L32 = dt === 'f32' ? erf32Locals(f) : null;
  f.get(prm);
  v.splat(0);
  f.set(mu);
  f.get(prm);
  v.splat(E);
  f.set(den);
  f.get(x).get(s).i32_const(E).i32_mul().i32_add().set(px);
  f.get(out).get(s).i32_const(E).i32_mul().i32_add().set(po);
  f.get(out).get(e).i32_const(E).i32_mul().i32_add().set(pe);
  f.get(e).get(s).i32_sub().set(n);
  v.vectorEnd(po, n, pv);
  /** out = 0.5·(1 + erf(z)) for the z vector in local `z`; leaves it on the stack. */
  const body = () => {
    if (L32) emitErf32(f, z, L32);
    else {
      f.get(z);
      emitErf64(f, tbl, L!);
    }
    v.c(1);
    v.add();
    v.c(0.5);
    v.mul();
  };
  const zOf = (load: () => void) => {
    f.get(px);
    load();
    f.get(mu);
    v.sub();
    f.get(den);
    v.div();
    f.set(z);
  };
  whileLt(f, po, pv, () => {
    zOf(() => f.v128_load(0));
    f.get(po);
    body();
    f.v128_store(0);
    inc(f, px, 16);
    inc(f, po, 16);
  });
  whileLt(f, po, pe, () => {
    zOf(() => v.splat());
    f.get(po);
    body();
    v.store0();
    inc(f, px, E);
    inc(f, po, E);
  });
  return name;
}

/** `laplacegrad_<dt>(s, e, x, g, out, prm)`. */
function emitLaplaceGrad(mb: ModuleBuilder, dt: DT): string {
  const name = `laplacegrad_${dt}`;
  const f = mb.fn(name, [I32, I32, I32, I32, I32, I32]);
  const v = new Simd(f, dt);
  const E = v.E;
  const [s, e, x, g, out, prm] = [0, 1, 2, 3, 4, 5];
  const px = f.local(I32),
    pg = f.local(I32),
    po = f.local(I32),
    pv = f.local(I32),
    pe = f.local(I32),
    n = f.local(I32);
  const mu = f.local(V128),
    den = f.local(V128),
    c = f.local(V128),
    z = f.local(V128);
  const L = expLocals(f);
  f.get(prm);
  v.splat(0);
  f.set(mu);
  f.get(prm);
  v.splat(E);
  f.set(den);
  f.get(prm);
  v.splat(2 * E);
  f.set(c);
  f.get(x).get(s).i32_const(E).i32_mul().i32_add().set(px);
  f.get(g).get(s).i32_const(E).i32_mul().i32_add().set(pg);
  f.get(out).get(s).i32_const(E).i32_mul().i32_add().set(po);
  f.get(out).get(e).i32_const(E).i32_mul().i32_add().set(pe);
  f.get(e).get(s).i32_sub().set(n);
  v.vectorEnd(po, n, pv);
  /** g · (exp(−(z·z)) / c), with the x and g vectors pushed by `load`. */
  const body = (load: () => void) => {
    f.get(po);
    f.get(pg);
    load();
    f.get(px);
    load();
    f.get(mu);
    v.sub();
    f.get(den);
    v.div();
    f.tee(z).get(z);
    v.mul();
    v.neg();
    emitExp(v, L);
    f.get(c);
    v.div();
    v.mul();
  };
  whileLt(f, po, pv, () => {
    body(() => f.v128_load(0));
    f.v128_store(0);
    inc(f, px, 16);
    inc(f, pg, 16);
    inc(f, po, 16);
  });
  whileLt(f, po, pe, () => {
    body(() => v.splat());
    v.store0();
    inc(f, px, E);
    inc(f, pg, E);
    inc(f, po, E);
  });
  return name;
}

/** Emits the laplace map functions; returns their names in dispatch-table order. */
export function emitLaplaceMaps(mb: ModuleBuilder): string[] {
  const names: string[] = [];
  for (const dt of ['f32', 'f64'] as const) {
    names.push(emitLaplace(mb, dt));
    names.push(emitLaplaceGrad(mb, dt));
  }
  return names;
}
