/**
 * WebAssembly SIMD kernels of layer / RMS normalisation over the rows of `[R, D]` (map functions
 * over rows; see cpu/layernorm-simd.ts for the contract):
 *
 * - `ln_fwd_<dt>(s, e, desc)`: per row, `mean = (Σx)·(1/D)` (0 without centering) and
 *   `var = (Σ(x − mean)²)·(1/D)` with float64 sums rounded to the element type (the steps and
 *   roundings of the composition `mean(x)`, `x − mean`, `square`, `mean`, `+ eps`,
 *   `rsqrt` = `1/sqrt`), then `y = (x − mean)·r`, `·w` and `+ b` when given; stats row = (mean, r).
 * - `ln_bwd_<dt>(s, e, desc)`: per row, `x̂ = (x − mean)·r`, `ĝ = g·w` (g without w),
 *   `dx = r·((ĝ − Σĝ/D) − x̂·(Σĝx̂/D))` (no `Σĝ/D` term without centering) with float64 sums;
 *   when `gx` ≠ 0 also `gx = g·x̂` (the terms of the weight's gradient, summed over rows by the
 *   caller).
 *
 * Descriptor (byte offsets): i32 0 D, 4 x, 8 y (dx), 12 stats (`[R, 2]`), 16 w (0: none),
 * 20 b (0: none), 24 g, 28 gx (0: none), 40 center (0/1); element-typed 32 eps, 48 1/D (rounded
 * to the element type).
 */
import { F32, F64, I32, V128, type Fn, type ModuleBuilder, type ValType } from './builder.js';
import { accumulate, inc, rowSum, Simd, sumTotal, whileLt, zeroSum, type DT } from './vector.js';

/** Byte offsets of the descriptor fields. */
export const LN_DESC = { D: 0, x: 4, y: 8, st: 12, w: 16, b: 20, g: 24, gx: 28, eps: 32, center: 40, invD: 48, bytes: 64 } as const;

/** Scalar helpers of one dtype. */
function scalarOps(f: Fn, dt: DT) {
  const f32 = dt === 'f32';
  return {
    T: (f32 ? F32 : F64) as ValType,
    /** f64 on the stack → element type */
    fromF64: () => {
      if (f32) f.f32_demote_f64();
    },
    /** element type on the stack → f64 */
    toF64: () => {
      if (f32) f.f64_promote_f32();
    },
    load: (off: number) => (f32 ? f.f32_load(off) : f.f64_load(off)),
    store: (off: number) => (f32 ? f.f32_store(off) : f.f64_store(off)),
    mul: () => (f32 ? f.f32_mul() : f.f64_mul()),
    add: () => (f32 ? f.f32_add() : f.f64_add()),
    div: () => (f32 ? f.f32_div() : f.f64_div()),
    sqrt: () => (f32 ? f.f32_sqrt() : f.f64_sqrt()),
    one: () => (f32 ? f.f32_const(1) : f.f64_const(1)),
    zero: () => (f32 ? f.f32_const(0) : f.f64_const(0)),
    splat: () => (f32 ? f.f32x4_splat() : f.f64x2_splat()),
  };
}

function emitForward(mb: ModuleBuilder, dt: DT): string {
  const name = `ln_fwd_${dt}`;
  const f = mb.fn(name, [I32, I32, I32]);
  const v = new Simd(f, dt);
  const S = scalarOps(f, dt);
  const E = v.E;
  const D = LN_DESC;
  const [s, e, desc] = [0, 1, 2];
  const r = f.local(I32),
    n = f.local(I32),
    px = f.local(I32),
    p = f.local(I32),
    py = f.local(I32),
    pw = f.local(I32),
    pb = f.local(I32),
    pe = f.local(I32),
    pv = f.local(I32),
    center = f.local(I32);
  const mean = f.local(S.T),
    rs = f.local(S.T),
    invD = f.local(S.T);
  const t = f.local(V128),
    vm = f.local(V128),
    vr = f.local(V128),
    acc0 = f.local(V128),
    acc1 = f.local(V128);
  const tail = f.local(F64);
  f.get(desc).i32_load(D.D).set(n);
  f.get(desc).i32_load(D.center).set(center);
  f.get(desc);
  S.load(D.invD);
  f.set(invD);
  f.get(s).set(r);
  whileLt(f, r, e, () => {
    // row pointers
    f.get(desc).i32_load(D.x).get(r).get(n).i32_mul().i32_const(E).i32_mul().i32_add().set(px);
    f.get(px).get(n).i32_const(E).i32_mul().i32_add().set(pe);
    v.vectorEnd(px, n, pv);
    // mean = round(Σx) · (1/D) when centering, else 0
    S.zero();
    f.set(mean);
    f.get(center).if_();
    f.get(px).set(p);
    rowSum(v, p, pv, pe, t, acc0, acc1, tail);
    sumTotal(f, acc0, acc1, tail);
    S.fromF64();
    f.get(invD);
    S.mul();
    f.set(mean);
    f.end();
    f.get(mean);
    S.splat();
    f.set(vm);
    // var = round(Σ(x − mean)²) · (1/D); r = 1 / sqrt(var + eps)
    zeroSum(f, acc0, acc1, tail);
    f.get(px).set(p);
    whileLt(f, p, pv, () => {
      f.get(p).v128_load(0).get(vm);
      v.sub();
      f.tee(t).get(t);
      v.mul();
      f.set(t);
      accumulate(v, t, acc0, acc1);
      inc(f, p, 16);
    });
    whileLt(f, p, pe, () => {
      f.get(tail).get(p);
      S.load(0);
      f.get(mean);
      if (dt === 'f32') f.f32_sub();
      else f.f64_sub();
      f.tee(rs).get(rs);
      S.mul();
      S.toF64();
      f.f64_add().set(tail);
      inc(f, p, E);
    });
    S.one();
    sumTotal(f, acc0, acc1, tail);
    S.fromF64();
    f.get(invD);
    S.mul();
    f.get(desc);
    S.load(D.eps);
    S.add();
    S.sqrt();
    S.div();
    f.tee(rs);
    S.splat();
    f.set(vr);
    // stats row (mean, r)
    f.get(desc)
      .i32_load(D.st)
      .get(r)
      .i32_const(2 * E)
      .i32_mul()
      .i32_add()
      .tee(p)
      .get(mean);
    S.store(0);
    f.get(p).get(rs);
    S.store(E);
    // y = (x − mean)·r [·w + b]
    f.get(desc).i32_load(D.y).get(r).get(n).i32_mul().i32_const(E).i32_mul().i32_add().set(py);
    f.get(desc).i32_load(D.w).set(pw);
    f.get(desc).i32_load(D.b).set(pb);
    /** y = (x − mean)·r [·w] [+ b] for a vector or one element */
    const out = (vector: boolean) => {
      const step = vector ? 16 : E;
      const ld = () => (vector ? f.v128_load(0) : v.splat());
      f.get(px);
      ld();
      f.get(vm);
      v.sub();
      f.get(vr);
      v.mul();
      f.set(t);
      f.get(pw).if_();
      f.get(t).get(pw);
      ld();
      v.mul();
      f.set(t);
      inc(f, pw, step);
      f.end();
      f.get(pb).if_();
      f.get(t).get(pb);
      ld();
      v.add();
      f.set(t);
      inc(f, pb, step);
      f.end();
      f.get(py).get(t);
      if (vector) f.v128_store(0);
      else v.store0();
      inc(f, px, step);
      inc(f, py, step);
    };
    whileLt(f, px, pv, () => out(true));
    whileLt(f, px, pe, () => out(false));
    inc(f, r, 1);
  });
  return name;
}

function emitBackward(mb: ModuleBuilder, dt: DT): string {
  const name = `ln_bwd_${dt}`;
  const f = mb.fn(name, [I32, I32, I32]);
  const v = new Simd(f, dt);
  const S = scalarOps(f, dt);
  const E = v.E;
  const D = LN_DESC;
  const [s, e, desc] = [0, 1, 2];
  const r = f.local(I32),
    n = f.local(I32),
    px = f.local(I32),
    pg = f.local(I32),
    pw = f.local(I32),
    pd = f.local(I32),
    pq = f.local(I32),
    pe = f.local(I32),
    pv = f.local(I32),
    row = f.local(I32),
    affine = f.local(I32),
    center = f.local(I32),
    withGx = f.local(I32);
  const dn = f.local(F64);
  const vm = f.local(V128),
    vr = f.local(V128),
    xh = f.local(V128),
    gh = f.local(V128),
    t = f.local(V128),
    c1 = f.local(V128),
    c2 = f.local(V128),
    a0 = f.local(V128),
    a1 = f.local(V128),
    b0 = f.local(V128),
    b1 = f.local(V128);
  const ta = f.local(F64),
    tb = f.local(F64);
  f.get(desc).i32_load(D.D).set(n);
  f.get(n).f64_convert_i32_s().set(dn);
  f.get(desc).i32_load(D.w).set(affine);
  f.get(desc).i32_load(D.gx).set(withGx);
  f.get(desc).i32_load(D.center).set(center);
  /** Pushes x̂ and ĝ of the elements at px, pg, pw into xh and gh (`lanes`: a vector or one element). */
  const load = (vector: boolean) => {
    const ld = () => (vector ? f.v128_load(0) : v.splat());
    f.get(px);
    ld();
    f.get(vm);
    v.sub();
    f.get(vr);
    v.mul();
    f.set(xh);
    f.get(pg);
    ld();
    f.set(gh);
    f.get(affine).if_();
    f.get(gh).get(pw);
    ld();
    v.mul();
    f.set(gh);
    f.end();
  };
  f.get(s).set(r);
  whileLt(f, r, e, () => {
    f.get(r).get(n).i32_mul().i32_const(E).i32_mul().set(row);
    f.get(desc)
      .i32_load(D.st)
      .get(r)
      .i32_const(2 * E)
      .i32_mul()
      .i32_add()
      .set(pq);
    f.get(pq);
    v.splat(0);
    f.set(vm);
    f.get(pq);
    v.splat(E);
    f.set(vr);
    // pass 1: Σĝ and Σĝx̂ in float64
    f.get(desc).i32_load(D.x).get(row).i32_add().set(px);
    f.get(desc).i32_load(D.g).get(row).i32_add().set(pg);
    f.get(desc).i32_load(D.w).set(pw);
    f.get(px).get(n).i32_const(E).i32_mul().i32_add().set(pe);
    v.vectorEnd(px, n, pv);
    zeroSum(f, a0, a1, ta);
    zeroSum(f, b0, b1, tb);
    whileLt(f, px, pv, () => {
      load(true);
      accumulate(v, gh, a0, a1);
      f.get(gh).get(xh);
      v.mul();
      f.set(t);
      accumulate(v, t, b0, b1);
      inc(f, px, 16);
      inc(f, pg, 16);
      inc(f, pw, 16);
    });
    whileLt(f, px, pe, () => {
      load(false);
      f.get(ta).get(gh);
      if (dt === 'f32') f.f32x4_extract_lane(0);
      else f.f64x2_extract_lane(0);
      S.toF64();
      f.f64_add().set(ta);
      f.get(tb).get(gh).get(xh);
      v.mul();
      if (dt === 'f32') f.f32x4_extract_lane(0);
      else f.f64x2_extract_lane(0);
      S.toF64();
      f.f64_add().set(tb);
      inc(f, px, E);
      inc(f, pg, E);
      inc(f, pw, E);
    });
    sumTotal(f, a0, a1, ta);
    f.get(dn).f64_div();
    f.f64_const(0);
    f.get(center);
    f.select(); // no mean term without centering
    S.fromF64();
    S.splat();
    f.set(c1);
    sumTotal(f, b0, b1, tb);
    f.get(dn).f64_div();
    S.fromF64();
    S.splat();
    f.set(c2);
    // pass 2: dx = r·((ĝ − c1) − x̂·c2), gx = g·x̂
    f.get(desc).i32_load(D.x).get(row).i32_add().set(px);
    f.get(desc).i32_load(D.g).get(row).i32_add().set(pg);
    f.get(desc).i32_load(D.w).set(pw);
    f.get(desc).i32_load(D.y).get(row).i32_add().set(pd);
    f.get(withGx).get(row).i32_add().set(pq);
    const body = (vector: boolean) => {
      const step = vector ? 16 : E;
      const st = () => (vector ? f.v128_store(0) : v.store0());
      load(vector);
      f.get(pd).get(gh).get(c1);
      v.sub();
      f.get(xh).get(c2);
      v.mul();
      v.sub();
      f.get(vr);
      v.mul();
      st();
      f.get(withGx).if_();
      f.get(pq).get(pg);
      if (vector) f.v128_load(0);
      else v.splat();
      f.get(xh);
      v.mul();
      st();
      f.end();
      inc(f, px, step);
      inc(f, pg, step);
      inc(f, pw, step);
      inc(f, pd, step);
      inc(f, pq, step);
    };
    whileLt(f, px, pv, () => body(true));
    whileLt(f, px, pe, () => body(false));
    inc(f, r, 1);
  });
  return name;
}

/** Emits the layer-norm map functions; returns their names in dispatch-table order. */
export function emitLayerNormMaps(mb: ModuleBuilder): string[] {
  return (['f32', 'f64'] as const).flatMap((dt) => [emitForward(mb, dt), emitBackward(mb, dt)]);
}
