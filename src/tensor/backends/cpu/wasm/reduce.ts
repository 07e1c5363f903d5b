/**
 * WebAssembly SIMD row reductions and softmax, as map functions of a task range `[s, e)` (see
 * elementwise.ts, which emits them into the dispatch table):
 *
 * - `rsum_<dt>(s, e, x, out, n)`: row sums of rows [s, e) of a rows × n matrix (float64 sums).
 * - `csum_<dt>(s, e, x, out, R, inner, tmp)`: out[o, j] = Σ_r x[o, r, j] for flat output indices
 *   [s, e) of outer × inner, summed in float64 in increasing r (`tmp`: float64 scratch per output;
 *   f64 uses out itself) — the same order as the plain-TS reduction, so f64 results are bitwise
 *   equal to it and f32 ones too (both round the float64 sum once).
 * - `softmax_<dt>(s, e, x, out, n)`: softmax of rows [s, e) (max-shifted; float64 row sum).
 * - `smgrad_<dt>(s, e, y, g, out, n)`: softmax backward of rows [s, e): y ⊙ (g − Σ y·g).
 */
import { F32, F64, I32, V128, type ModuleBuilder } from './builder.js';
import { accumulate, emitExp, expLocals, HIGH_HALF, inc, loop, rowMax, rowSegment, rowSum, Simd, sumTotal, whileLt, zeroSum, type DT } from './vector.js';

/** `rsum_<dt>(s, e, x, out, n)`. */
export function emitRowSum(mb: ModuleBuilder, dt: DT): string {
  const name = `rsum_${dt}`;
  const f = mb.fn(name, [I32, I32, I32, I32, I32]);
  const v = new Simd(f, dt);
  const E = v.E;
  const [s, e, x, out, n] = [0, 1, 2, 3, 4];
  const r = f.local(I32),
    p = f.local(I32),
    pv = f.local(I32),
    pe = f.local(I32);
  const acc0 = f.local(V128),
    acc1 = f.local(V128),
    t = f.local(V128);
  const tail = f.local(F64);
  f.get(s).set(r);
  whileLt(f, r, e, () => {
    f.get(x).get(r).get(n).i32_mul().i32_const(E).i32_mul().i32_add().set(p);
    f.get(p).get(n).i32_const(E).i32_mul().i32_add().set(pe);
    v.vectorEnd(p, n, pv);
    rowSum(v, p, pv, pe, t, acc0, acc1, tail);
    // out[r] = (acc0 + acc1 lanes) + tail
    f.get(out).get(r).i32_const(E).i32_mul().i32_add();
    sumTotal(f, acc0, acc1, tail);
    if (dt === 'f32') f.f32_demote_f64().f32_store(0);
    else f.f64_store(0);
    inc(f, r, 1);
  });
  return name;
}

/** `csum_<dt>(s, e, x, out, R, inner, tmp)`. */
export function emitColSum(mb: ModuleBuilder, dt: DT): string {
  const name = `csum_${dt}`;
  const f = mb.fn(name, [I32, I32, I32, I32, I32, I32, I32]);
  const v = new Simd(f, dt);
  const E = v.E;
  const [s, e, x, out, R, inner, tmpArg] = [0, 1, 2, 3, 4, 5, 6];
  const i = f.local(I32),
    o = f.local(I32),
    j = f.local(I32),
    len = f.local(I32),
    r = f.local(I32);
  const px = f.local(I32),
    pt = f.local(I32),
    pte = f.local(I32),
    tmp = f.local(I32),
    k = f.local(I32);
  const t = f.local(V128);
  // f64: accumulate in out directly
  if (dt === 'f64') f.get(out).set(tmp);
  else f.get(tmpArg).set(tmp);
  f.get(s).set(i);
  whileLt(f, i, e, () => {
    rowSegment(f, i, e, inner, o, j, len);
    // zero tmp[i .. i+len)
    f.get(tmp).get(i).i32_const(8).i32_mul().i32_add().set(pt);
    f.get(pt).get(len).i32_const(8).i32_mul().i32_add().set(pte);
    whileLt(f, pt, pte, () => {
      f.get(pt).f64_const(0).f64_store(0);
      inc(f, pt, 8);
    });
    // for r: tmp[i..] += x[(o*R + r)*inner + j ..]
    f.i32_const(0).set(r);
    whileLt(f, r, R, () => {
      f.get(x).get(o).get(R).i32_mul().get(r).i32_add().get(inner).i32_mul().get(j).i32_add().i32_const(E).i32_mul().i32_add().set(px);
      f.get(tmp).get(i).i32_const(8).i32_mul().i32_add().set(pt);
      f.i32_const(0).set(k);
      // vector part: lanes elements per step
      loop(
        f,
        () => f.get(k).i32_const(v.lanes).i32_add().get(len).i32_gt_s(),
        () => {
          f.get(px).v128_load(0).set(t);
          if (dt === 'f32') {
            f.get(pt).get(pt).v128_load(0).get(t).f64x2_promote_low_f32x4().f64x2_add().v128_store(0);
            f.get(pt).get(pt).v128_load(16).get(t).get(t).i8x16_shuffle(HIGH_HALF).f64x2_promote_low_f32x4().f64x2_add().v128_store(16);
          } else {
            f.get(pt).get(pt).v128_load(0).get(t).f64x2_add().v128_store(0);
          }
          inc(f, px, 16);
          inc(f, pt, v.lanes * 8);
          inc(f, k, v.lanes);
        },
      );
      whileLt(f, k, len, () => {
        f.get(pt).get(pt).f64_load(0).get(px);
        if (dt === 'f32') f.f32_load(0).f64_promote_f32();
        else f.f64_load(0);
        f.f64_add().f64_store(0);
        inc(f, px, E);
        inc(f, pt, 8);
        inc(f, k, 1);
      });
      inc(f, r, 1);
    });
    if (dt === 'f32') {
      // out[i..i+len) = f32(tmp)
      f.i32_const(0).set(k);
      f.get(tmp).get(i).i32_const(8).i32_mul().i32_add().set(pt);
      f.get(out).get(i).i32_const(4).i32_mul().i32_add().set(px);
      whileLt(f, k, len, () => {
        f.get(px).get(pt).f64_load(0).f32_demote_f64().f32_store(0);
        inc(f, px, 4);
        inc(f, pt, 8);
        inc(f, k, 1);
      });
    }
    f.get(i).get(len).i32_add().set(i);
  });
  return name;
}

/** `softmax_<dt>(s, e, x, out, n)`. */
export function emitSoftmax(mb: ModuleBuilder, dt: DT): string {
  const name = `softmax_${dt}`;
  const f = mb.fn(name, [I32, I32, I32, I32, I32]);
  const v = new Simd(f, dt);
  const E = v.E;
  const [s, e, x, out, n] = [0, 1, 2, 3, 4];
  const r = f.local(I32),
    px = f.local(I32),
    po = f.local(I32),
    pv = f.local(I32),
    pe = f.local(I32),
    rowBytes = f.local(I32);
  const vm = f.local(V128),
    t = f.local(V128),
    acc0 = f.local(V128),
    acc1 = f.local(V128),
    sc = f.local(V128);
  const m = f.local(dt === 'f32' ? F32 : F64),
    tail = f.local(F64),
    sum = f.local(F64);
  const L = expLocals(f);
  f.get(n).i32_const(E).i32_mul().set(rowBytes);
  f.get(s).set(r);
  whileLt(f, r, e, () => {
    f.get(x).get(r).get(rowBytes).i32_mul().i32_add().set(px);
    f.get(px).get(rowBytes).i32_add().set(pe);
    v.vectorEnd(px, n, pv);
    // ---- max (NaN propagates: a row with NaN ends all-NaN, as in the plain-TS kernel)
    rowMax(v, px, pv, pe, vm);
    if (dt === 'f32') {
      f.get(vm).f32x4_extract_lane(0).get(vm).f32x4_extract_lane(1).f32_max();
      f.get(vm).f32x4_extract_lane(2).get(vm).f32x4_extract_lane(3).f32_max().f32_max().set(m);
      f.get(m).f32x4_splat().set(vm);
    } else {
      f.get(vm).f64x2_extract_lane(0).get(vm).f64x2_extract_lane(1).f64_max().set(m);
      f.get(m).f64x2_splat().set(vm);
    }
    // ---- e = exp(x - m) into out, float64 sum
    f.get(x).get(r).get(rowBytes).i32_mul().i32_add().set(px);
    f.get(out).get(r).get(rowBytes).i32_mul().i32_add().set(po);
    zeroSum(f, acc0, acc1, tail);
    whileLt(f, px, pv, () => {
      f.get(po);
      f.get(px).v128_load(0).get(vm);
      v.sub();
      emitExp(v, L);
      f.tee(t);
      f.v128_store(0);
      accumulate(v, t, acc0, acc1);
      inc(f, px, 16);
      inc(f, po, 16);
    });
    whileLt(f, px, pe, () => {
      f.get(po);
      f.get(px);
      v.splat();
      f.get(vm);
      v.sub();
      emitExp(v, L);
      f.tee(t);
      v.store0();
      f.get(tail);
      if (dt === 'f32') f.get(t).f32x4_extract_lane(0).f64_promote_f32();
      else f.get(t).f64x2_extract_lane(0);
      f.f64_add().set(tail);
      inc(f, px, E);
      inc(f, po, E);
    });
    sumTotal(f, acc0, acc1, tail);
    f.set(sum);
    // ---- out /= sum (f32: multiply by the rounded reciprocal)
    if (dt === 'f32') f.f32_const(1).f64_promote_f32().get(sum).f64_div().f32_demote_f64().f32x4_splat().set(sc);
    else f.get(sum).f64x2_splat().set(sc);
    f.get(out).get(r).get(rowBytes).i32_mul().i32_add().set(po);
    f.get(po).get(rowBytes).i32_add().set(pe);
    v.vectorEnd(po, n, pv);
    whileLt(f, po, pv, () => {
      f.get(po).get(po).v128_load(0).get(sc);
      if (dt === 'f32') v.mul();
      else v.div();
      f.v128_store(0);
      inc(f, po, 16);
    });
    whileLt(f, po, pe, () => {
      f.get(po).get(po);
      v.load();
      if (dt === 'f32') f.get(sc).f32x4_extract_lane(0).f32_mul().f32_store(0);
      else f.get(sum).f64_div().f64_store(0);
      inc(f, po, E);
    });
    inc(f, r, 1);
  });
  return name;
}

/** `smgrad_<dt>(s, e, y, g, out, n)`: softmax backward of rows [s, e): out = y ⊙ (g − Σ y·g). */
export function emitSoftmaxGrad(mb: ModuleBuilder, dt: DT): string {
  const name = `smgrad_${dt}`;
  const f = mb.fn(name, [I32, I32, I32, I32, I32, I32]);
  const v = new Simd(f, dt);
  const E = v.E;
  const [s, e, y, g, out, n] = [0, 1, 2, 3, 4, 5];
  const r = f.local(I32),
    py = f.local(I32),
    pg = f.local(I32),
    po = f.local(I32),
    pv = f.local(I32),
    pe = f.local(I32),
    rowBytes = f.local(I32);
  const t = f.local(V128),
    acc0 = f.local(V128),
    acc1 = f.local(V128),
    vs = f.local(V128);
  const tail = f.local(F64),
    sum = f.local(F64);
  f.get(n).i32_const(E).i32_mul().set(rowBytes);
  f.get(s).set(r);
  whileLt(f, r, e, () => {
    f.get(y).get(r).get(rowBytes).i32_mul().i32_add().set(py);
    f.get(g).get(r).get(rowBytes).i32_mul().i32_add().set(pg);
    f.get(py).get(rowBytes).i32_add().set(pe);
    v.vectorEnd(py, n, pv);
    zeroSum(f, acc0, acc1, tail);
    // Σ y·g (products in the element type, summed in float64)
    whileLt(f, py, pv, () => {
      f.get(py).v128_load(0).get(pg).v128_load(0);
      v.mul();
      f.set(t);
      accumulate(v, t, acc0, acc1);
      inc(f, py, 16);
      inc(f, pg, 16);
    });
    whileLt(f, py, pe, () => {
      f.get(tail);
      if (dt === 'f32') f.get(py).f32_load(0).get(pg).f32_load(0).f32_mul().f64_promote_f32();
      else f.get(py).f64_load(0).get(pg).f64_load(0).f64_mul();
      f.f64_add().set(tail);
      inc(f, py, E);
      inc(f, pg, E);
    });
    sumTotal(f, acc0, acc1, tail);
    f.set(sum);
    if (dt === 'f32') f.get(sum).f32_demote_f64().f32x4_splat().set(vs);
    else f.get(sum).f64x2_splat().set(vs);
    // out = y ⊙ (g − s)
    f.get(y).get(r).get(rowBytes).i32_mul().i32_add().set(py);
    f.get(g).get(r).get(rowBytes).i32_mul().i32_add().set(pg);
    f.get(out).get(r).get(rowBytes).i32_mul().i32_add().set(po);
    whileLt(f, py, pv, () => {
      f.get(po).get(py).v128_load(0).get(pg).v128_load(0).get(vs);
      v.sub();
      v.mul();
      f.v128_store(0);
      inc(f, py, 16);
      inc(f, pg, 16);
      inc(f, po, 16);
    });
    whileLt(f, py, pe, () => {
      f.get(po).get(py);
      v.splat();
      f.get(pg);
      v.splat();
      f.get(vs);
      v.sub();
      v.mul();
      v.store0();
      inc(f, py, E);
      inc(f, pg, E);
      inc(f, po, E);
    });
    inc(f, r, 1);
  });
  return name;
}
