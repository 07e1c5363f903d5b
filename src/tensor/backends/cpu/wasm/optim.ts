/**
 * The end of a training step in WebAssembly (src/train/optim.ts `clipGradNorm`, `Adam`): the
 * gradient scaling and squared norm, the clip, and fairseq's Adam, with the arithmetic of the
 * TypeScript loops so that the results are bitwise the same:
 *
 * - `grad_sumsq_<dt>(table, count) → f64` and `grad_scale_sumsq_<dt>(table, count, s)`: over
 *   the gradients of a table of `count` i32 triples `[src, dst, n]` (byte addresses, elements),
 *   in order: `g = dt(src·s)` stored at dst (the second only), and `ss += g·g` in float64, one
 *   element after the other (the TypeScript sum's order: vectors give the products, the adds stay
 *   sequential).
 * - `grad_scale_<dt>(table, count, c)`: `dst = dt(src·c)` (the clip; dst may be src).
 * - `adam_<dt>[_decay](k0, k1, table, cfg)`, a map function (threaded like the elementwise
 *   ones): entries `[k0, k1)` of a table of i32 quintuples `[g, m, v, θ, n]` (byte addresses,
 *   elements; pieces of parameters that share one step size), with the float64 hyper-parameters
 *   `b1, 1−b1, b2, 1−b2, eps, decay, stepSize` at `cfg`; float64 arithmetic per element, each
 *   moment rounded to dt when stored and read back rounded:
 *   `m = b1·m + (1−b1)·g; v = b2·v + (1−b2)·g·g; θ = θ − decay·θ (…_decay only);
 *   θ = θ − stepSize·m / (√v + eps)`.
 *
 * IEEE f32/f64 multiply, add, divide and square root round the same in vectors and scalars, and an
 * f32·f32 product is exact in f64, so the vector lanes equal the TypeScript loop's values.
 */
import { F64, I32, V128, type Fn, type ModuleBuilder } from './builder.js';
import { HIGH_HALF, inc, Simd, whileLt, type DT } from './vector.js';

/** Lanes 0–1 of the first f32x4 and lanes 0–1 of the second (joins two demoted halves). */
const JOIN_LOW = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];

/** For each table entry: src, dst, n in locals; `body(src, dst, pv, pe)` with the vector end `pv`, element end `pe` (byte addresses). */
function eachGradient(f: Fn, v: Simd, table: number, count: number, body: (src: number, dst: number, pv: number, pe: number) => void): void {
  const [k, src, dst, n, pv, pe] = Array.from({ length: 6 }, () => f.local(I32));
  f.i32_const(0).set(k);
  whileLt(f, k, count, () => {
    f.get(table).i32_load(0).set(src);
    f.get(table).i32_load(4).set(dst);
    f.get(table).i32_load(8).set(n);
    v.vectorEnd(src, n, pv);
    f.get(src).get(n).i32_const(v.E).i32_mul().i32_add().set(pe);
    body(src, dst, pv, pe);
    inc(f, table, 12);
    inc(f, k, 1);
  });
}

function emitSumsq(mb: ModuleBuilder, dt: DT, scale: boolean): void {
  const f = mb.fn(scale ? `grad_scale_sumsq_${dt}` : `grad_sumsq_${dt}`, scale ? [I32, I32, F64] : [I32, I32], [F64]);
  const v = new Simd(f, dt);
  const [table, count, s] = [0, 1, 2];
  const ss = f.local(F64),
    x = f.local(V128),
    sv = f.local(V128),
    q = f.local(V128),
    d = f.local(F64);
  f.f64_const(0).set(ss);
  if (scale) {
    if (dt === 'f32') f.get(s).f32_demote_f64().f32x4_splat().set(sv);
    else f.get(s).f64x2_splat().set(sv);
  }
  /** ss += lanes of the f64x2 local q, in order */
  const addLanes = () => {
    f.get(ss).get(q).f64x2_extract_lane(0).f64_add().set(ss);
    f.get(ss).get(q).f64x2_extract_lane(1).f64_add().set(ss);
  };
  eachGradient(f, v, table, count, (src, dst, pv, pe) => {
    whileLt(f, src, pv, () => {
      f.get(src).v128_load(0);
      if (scale) {
        f.get(sv);
        v.mul();
      }
      f.set(x);
      if (scale) {
        f.get(dst).get(x).v128_store(0);
        inc(f, dst, 16);
      }
      if (dt === 'f32') {
        f.get(x).f64x2_promote_low_f32x4().tee(q).get(q).f64x2_mul().set(q);
        addLanes();
        f.get(x).get(x).i8x16_shuffle(HIGH_HALF).f64x2_promote_low_f32x4().tee(q).get(q).f64x2_mul().set(q);
        addLanes();
      } else {
        f.get(x).get(x).f64x2_mul().set(q);
        addLanes();
      }
      inc(f, src, 16);
    });
    whileLt(f, src, pe, () => {
      if (dt === 'f32') {
        f.get(src).f32_load(0);
        if (scale) f.get(s).f32_demote_f64().f32_mul();
        f.f64_promote_f32().set(d);
        if (scale) f.get(dst).get(d).f32_demote_f64().f32_store(0);
      } else {
        f.get(src).f64_load(0);
        if (scale) f.get(s).f64_mul();
        f.set(d);
        if (scale) f.get(dst).get(d).f64_store(0);
      }
      f.get(ss).get(d).get(d).f64_mul().f64_add().set(ss);
      if (scale) inc(f, dst, v.E);
      inc(f, src, v.E);
    });
  });
  f.get(ss);
}

function emitScale(mb: ModuleBuilder, dt: DT): void {
  const f = mb.fn(`grad_scale_${dt}`, [I32, I32, F64]);
  const v = new Simd(f, dt);
  const [table, count, c] = [0, 1, 2];
  const cv = f.local(V128);
  if (dt === 'f32') f.get(c).f32_demote_f64().f32x4_splat().set(cv);
  else f.get(c).f64x2_splat().set(cv);
  // dst may be src (in place)
  eachGradient(f, v, table, count, (src, dst, pv, pe) => {
    whileLt(f, src, pv, () => {
      f.get(dst).get(src).v128_load(0).get(cv);
      v.mul();
      f.v128_store(0);
      inc(f, src, 16);
      inc(f, dst, 16);
    });
    whileLt(f, src, pe, () => {
      f.get(dst).get(src);
      if (dt === 'f32') f.f32_load(0).get(c).f32_demote_f64().f32_mul().f32_store(0);
      else f.f64_load(0).get(c).f64_mul().f64_store(0);
      inc(f, src, v.E);
      inc(f, dst, v.E);
    });
  });
}

function emitAdam(mb: ModuleBuilder, dt: DT, decay: boolean): void {
  const f = mb.fn(`adam_${dt}${decay ? '_decay' : ''}`, [I32, I32, I32, I32]);
  const v = new Simd(f, dt);
  const [k, end, table, cfg] = [0, 1, 2, 3];
  const E = v.E;
  const [g, m, vv, th, n, pv, pe] = Array.from({ length: 7 }, () => f.local(I32));
  // f64x2 constants: b1, 1−b1, b2, 1−b2, eps, decay, stepSize
  const [B1, C1, B2, C2, EPS, DEC, STEP] = Array.from({ length: 7 }, (_, i) => {
    const l = f.local(V128);
    f.get(cfg)
      .f64_load(8 * i)
      .f64x2_splat()
      .set(l);
    return l;
  });
  f.get(table).get(k).i32_const(20).i32_mul().i32_add().set(table);
  const [gi, mi, vi, ti, den] = Array.from({ length: 5 }, () => f.local(V128));
  const [gx, mx, vx, tx, mlo, vlo, tlo] = Array.from({ length: 7 }, () => f.local(V128));
  /** The update of one f64x2 of (gi, mi, vi, ti) (f64 lanes): new mi, vi (rounded to dt as stored), ti. */
  const update = (round: boolean) => {
    // m = b1·m + (1−b1)·g
    f.get(B1).get(mi).f64x2_mul().get(C1).get(gi).f64x2_mul().f64x2_add();
    if (round) f.f32x4_demote_f64x2_zero().f64x2_promote_low_f32x4();
    f.set(mi);
    // v = b2·v + (1−b2)·g·g
    f.get(B2).get(vi).f64x2_mul().get(C2).get(gi).f64x2_mul().get(gi).f64x2_mul().f64x2_add();
    if (round) f.f32x4_demote_f64x2_zero().f64x2_promote_low_f32x4();
    f.set(vi);
    f.get(vi).f64x2_sqrt().get(EPS).f64x2_add().set(den);
    if (decay) f.get(ti).get(DEC).get(ti).f64x2_mul().f64x2_sub().set(ti);
    f.get(ti).get(STEP).get(mi).f64x2_mul().get(den).f64x2_div().f64x2_sub().set(ti);
  };
  const advance = (by: number) => [g, m, vv, th].forEach((p) => inc(f, p, by));
  whileLt(f, k, end, () => {
    [g, m, vv, th, n].forEach((l, i) =>
      f
        .get(table)
        .i32_load(4 * i)
        .set(l),
    );
    // one entry: vectors, then the last elements one at a time (lane 0)
    v.vectorEnd(g, n, pv);
    f.get(g).get(n).i32_const(E).i32_mul().i32_add().set(pe);
    whileLt(f, g, pv, () => {
      f.get(g).v128_load(0).set(gx);
      f.get(m).v128_load(0).set(mx);
      f.get(vv).v128_load(0).set(vx);
      f.get(th).v128_load(0).set(tx);
      if (dt === 'f64') {
        [gi, mi, vi, ti].forEach((l, i) => f.get([gx, mx, vx, tx][i]).set(l));
        update(false);
        f.get(m).get(mi).v128_store(0);
        f.get(vv).get(vi).v128_store(0);
        f.get(th).get(ti).v128_store(0);
      } else {
        for (const half of [0, 1]) {
          [gx, mx, vx, tx].forEach((x, i) => {
            f.get(x);
            if (half) f.get(x).i8x16_shuffle(HIGH_HALF);
            f.f64x2_promote_low_f32x4().set([gi, mi, vi, ti][i]);
          });
          update(true);
          if (half === 0) {
            f.get(mi).f32x4_demote_f64x2_zero().set(mlo);
            f.get(vi).f32x4_demote_f64x2_zero().set(vlo);
            f.get(ti).f32x4_demote_f64x2_zero().set(tlo);
          }
        }
        f.get(m).get(mlo).get(mi).f32x4_demote_f64x2_zero().i8x16_shuffle(JOIN_LOW).v128_store(0);
        f.get(vv).get(vlo).get(vi).f32x4_demote_f64x2_zero().i8x16_shuffle(JOIN_LOW).v128_store(0);
        f.get(th).get(tlo).get(ti).f32x4_demote_f64x2_zero().i8x16_shuffle(JOIN_LOW).v128_store(0);
      }
      advance(16);
    });
    // the last elements one at a time, in lane 0 of the same vector code
    whileLt(f, g, pe, () => {
      [g, m, vv, th].forEach((p, i) => {
        f.get(p);
        v.splat();
        if (dt === 'f32') f.f64x2_promote_low_f32x4();
        f.set([gi, mi, vi, ti][i]);
      });
      update(dt === 'f32');
      [m, vv, th].forEach((p, i) => {
        f.get(p).get([mi, vi, ti][i]);
        if (dt === 'f32') f.f32x4_demote_f64x2_zero();
        v.store0();
      });
      advance(E);
    });
    inc(f, table, 20);
    inc(f, k, 1);
  });
}

/** Emits the gradient and Adam kernels; returns the names of the map functions (Adam's). */
export function emitOptim(mb: ModuleBuilder): string[] {
  const maps: string[] = [];
  for (const dt of ['f32', 'f64'] as const) {
    emitSumsq(mb, dt, false);
    emitSumsq(mb, dt, true);
    emitScale(mb, dt);
    emitAdam(mb, dt, false);
    emitAdam(mb, dt, true);
    maps.push(`adam_${dt}`, `adam_${dt}_decay`);
  }
  return maps;
}
