/**
 * WebAssembly SIMD elementwise, reduction and softmax kernels ("map" functions: every one takes
 * a task range `[s, e)` first, so the pool can split it; see runtime.ts `mapTask`).
 *
 * - `un_<op>_<dt>(s, e, x, out)`: out[i] = op(x[i]), contiguous, for i ∈ [s, e).
 * - `bin_<op>_<dt>_<pat>(s, e, a, b, out, inner, aso, bso)`: output row-major outer × inner,
 *   flat indices [s, e); operand element (o, j) at `a + (o·aso + j·[pat='v'])·es` — `v` walks the
 *   inner axis, `s` repeats one value per row (a column broadcast).
 * - `rsum_<dt>(s, e, x, out, n)`: row sums of rows [s, e) of a rows × n matrix (float64 sums).
 * - `csum_<dt>(s, e, x, out, R, inner, tmp)`: out[o, j] = Σ_r x[o, r, j] for flat output indices
 *   [s, e) of outer × inner, summed in float64 in increasing r (`tmp`: float64 scratch per output;
 *   f64 uses out itself) — the same order as the plain-TS reduction, so f64 results are bitwise
 *   equal to it and f32 ones too (both round the float64 sum once).
 * - `softmax_<dt>(s, e, x, out, n)`: softmax of rows [s, e) (max-shifted; float64 row sum).
 * - `smgrad_<dt>(s, e, y, g, out, n)`: softmax backward of rows [s, e): y ⊙ (g − Σ y·g).
 *
 * exp is a range-reduced polynomial (|r| ≤ ln2/2; degree 7 in f32, 13 in f64) scaled by 2ⁿ
 * built in the exponent bits: within 2 ulp of Math.exp, exact at ±∞ and NaN, results below
 * ~1e-38 (f32) / 3e-308 (f64) flushed to 0.
 */
import { F32, F64, I32, V128, type Fn, type ModuleBuilder } from './builder.js';

type DT = 'f32' | 'f64';

/** Unary ops with SIMD code. */
export const SIMD_UNARY = ['neg', 'exp', 'sigmoid', 'silu', 'square', 'abs', 'relu', 'recip', 'sqrt', 'rsqrt', 'step'] as const;
export type SimdUnary = (typeof SIMD_UNARY)[number];
/** Binary ops with SIMD code. */
export const SIMD_BINARY = ['add', 'sub', 'mul', 'div'] as const;
export type SimdBinary = (typeof SIMD_BINARY)[number];
/** Broadcast patterns of the binary kernels (inner stride of a, of b: v = 1, s = 0). */
export const PATTERNS = ['vv', 'vs', 'sv'] as const;
export type Pattern = (typeof PATTERNS)[number];

/** Per-dtype instruction selection. */
class V {
  readonly E: number;
  readonly lanes: number;
  constructor(readonly f: Fn, readonly dt: DT) {
    this.E = dt === 'f32' ? 4 : 8;
    this.lanes = 16 / this.E;
  }
  add(): void { if (this.dt === 'f32') this.f.f32x4_add(); else this.f.f64x2_add(); }
  sub(): void { if (this.dt === 'f32') this.f.f32x4_sub(); else this.f.f64x2_sub(); }
  mul(): void { if (this.dt === 'f32') this.f.f32x4_mul(); else this.f.f64x2_mul(); }
  div(): void { if (this.dt === 'f32') this.f.f32x4_div(); else this.f.f64x2_div(); }
  max(): void { if (this.dt === 'f32') this.f.f32x4_max(); else this.f.f64x2_max(); }
  pmin(): void { if (this.dt === 'f32') this.f.f32x4_pmin(); else this.f.f64x2_pmin(); }
  pmax(): void { if (this.dt === 'f32') this.f.f32x4_pmax(); else this.f.f64x2_pmax(); }
  gt(): void { if (this.dt === 'f32') this.f.f32x4_gt(); else this.f.f64x2_gt(); }
  lt(): void { if (this.dt === 'f32') this.f.f32x4_lt(); else this.f.f64x2_lt(); }
  ne(): void { if (this.dt === 'f32') this.f.f32x4_ne(); else this.f.f64x2_ne(); }
  neg(): void { if (this.dt === 'f32') this.f.f32x4_neg(); else this.f.f64x2_neg(); }
  abs(): void { if (this.dt === 'f32') this.f.f32x4_abs(); else this.f.f64x2_abs(); }
  sqrt(): void { if (this.dt === 'f32') this.f.f32x4_sqrt(); else this.f.f64x2_sqrt(); }
  nearest(): void { if (this.dt === 'f32') this.f.f32x4_nearest(); else this.f.f64x2_nearest(); }
  c(v: number): void { if (this.dt === 'f32') this.f.f32x4_const(v); else this.f.f64x2_const(v); }
  /** load one element splatted over all lanes */
  splat(off = 0): void { if (this.dt === 'f32') this.f.v128_load32_splat(off); else this.f.v128_load64_splat(off); }
  /** store lane 0 as a scalar: stack [addr, v128] */
  store0(off = 0): void {
    if (this.dt === 'f32') this.f.f32x4_extract_lane(0).f32_store(off);
    else this.f.f64x2_extract_lane(0).f64_store(off);
  }
}

/** Scratch v128 locals for the exp sequence (allocated once per function). */
interface ExpLocals { x: number; n: number; r: number; p: number }

function expLocals(f: Fn): ExpLocals {
  return { x: f.local(V128), n: f.local(V128), r: f.local(V128), p: f.local(V128) };
}

/** exp of the v128 on the stack; leaves the result on the stack. */
function emitExp(v: V, L: ExpLocals): void {
  const f = v.f;
  const f32 = v.dt === 'f32';
  const HI = f32 ? 88.72283 : 709.782712893384;
  const LO = f32 ? -87.0 : -708.0;
  const OVER = f32 ? 88.72283 : 709.782712893384;
  const LN2HI = f32 ? 0.693359375 : 6.93147180369123816490e-1;
  const LN2LO = f32 ? -2.12194440e-4 : 1.90821492927058770002e-10;
  f.set(L.x);
  // xc = clamp(x) (pmin/pmax keep NaN)
  f.get(L.x);
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
  // r = (xc - n*LN2HI) - n*LN2LO
  f.get(L.r).get(L.n);
  v.c(LN2HI);
  v.mul();
  v.sub();
  f.get(L.n);
  v.c(LN2LO);
  v.mul();
  v.sub();
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
    f.get(L.r);
    v.mul();
    v.c(coef[k]);
    v.add();
  }
  f.tee(L.p).get(L.p);
  v.add(); // 2p
  // scale = 2^(n-1) built in the exponent bits (n-1 keeps n = max exponent + 1 finite)
  f.get(L.n);
  if (f32) f.i32x4_trunc_sat_f32x4_s().i32x4_const(126).i32x4_add().i32_const(23).i32x4_shl();
  else f.i32x4_trunc_sat_f64x2_s_zero().i64x2_extend_low_i32x4_s().i64x2_const(1022).i64x2_add().i32_const(52).i64x2_shl();
  v.mul();
  f.set(L.p);
  // x > ln(max) → +∞ ; x < LO → 0 (bitselect(a, b, m) = m ? a : b)
  v.c(Infinity);
  f.get(L.p);
  f.get(L.x);
  v.c(OVER);
  v.gt();
  f.v128_bitselect();
  f.set(L.p);
  v.c(0);
  f.get(L.p);
  f.get(L.x);
  v.c(LO);
  v.lt();
  f.v128_bitselect();
}

/** Emits op(x) for the v128 on the stack. */
function emitUnary(v: V, op: SimdUnary, L: ExpLocals, t: number): void {
  const f = v.f;
  switch (op) {
    case 'neg': v.neg(); return;
    case 'abs': v.abs(); return;
    case 'square': f.tee(t).get(t); v.mul(); return;
    case 'sqrt': v.sqrt(); return;
    case 'recip': f.set(t); v.c(1); f.get(t); v.div(); return;
    case 'rsqrt': v.sqrt(); f.set(t); v.c(1); f.get(t); v.div(); return;
    case 'relu':
      // x > 0 or NaN ? x : +0
      f.set(t);
      f.get(t);
      v.c(0);
      f.get(t);
      v.c(0);
      v.gt();
      f.get(t).get(t);
      v.ne();
      f.v128_or();
      f.v128_bitselect();
      return;
    case 'step':
      f.set(t);
      v.c(1);
      f.get(t);
      v.c(0);
      v.gt();
      f.v128_and();
      return;
    case 'exp': emitExp(v, L); return;
    case 'sigmoid':
      // 1 / (1 + exp(-x))
      v.neg();
      emitExp(v, L);
      v.c(1);
      v.add();
      f.set(t);
      v.c(1);
      f.get(t);
      v.div();
      return;
    case 'silu':
      // x / (1 + exp(-x))
      f.tee(t);
      v.neg();
      emitExp(v, L);
      v.c(1);
      v.add();
      f.set(L.n); // reuse as temp
      f.get(t).get(L.n);
      v.div();
      return;
  }
}

/** `un_<op>_<dt>(s, e, x, out)`. */
function emitUnaryMap(mb: ModuleBuilder, dt: DT, op: SimdUnary): string {
  const name = `un_${op}_${dt}`;
  const f = mb.fn(name, [I32, I32, I32, I32]);
  const v = new V(f, dt);
  const [s, e, x, out] = [0, 1, 2, 3];
  const px = f.local(I32), po = f.local(I32), pe = f.local(I32), pv = f.local(I32);
  const L = expLocals(f);
  const t = f.local(V128);
  // byte pointers
  f.get(x).get(s).i32_const(v.E).i32_mul().i32_add().set(px);
  f.get(out).get(s).i32_const(v.E).i32_mul().i32_add().set(po);
  f.get(out).get(e).i32_const(v.E).i32_mul().i32_add().set(pe);
  // vector end: po + floor((e - s)/lanes)*16
  f.get(po).get(e).get(s).i32_sub().i32_const(v.lanes - 1).i32_const(-1).i32_mul().i32_and().i32_const(v.E).i32_mul().i32_add().set(pv);
  f.block().loop();
  f.get(po).get(pv).i32_ge_s().br_if(1);
  f.get(po).get(px).v128_load(0);
  emitUnary(v, op, L, t);
  f.v128_store(0);
  f.get(px).i32_const(16).i32_add().set(px);
  f.get(po).i32_const(16).i32_add().set(po);
  f.br(0);
  f.end().end();
  f.block().loop();
  f.get(po).get(pe).i32_ge_s().br_if(1);
  f.get(po).get(px);
  v.splat();
  emitUnary(v, op, L, t);
  v.store0();
  f.get(px).i32_const(v.E).i32_add().set(px);
  f.get(po).i32_const(v.E).i32_add().set(po);
  f.br(0);
  f.end().end();
  return name;
}

function emitBinaryOp(v: V, op: SimdBinary): void {
  switch (op) {
    case 'add': v.add(); return;
    case 'sub': v.sub(); return;
    case 'mul': v.mul(); return;
    case 'div': v.div(); return;
  }
}

/** `bin_<op>_<dt>_<pat>(s, e, a, b, out, inner, aso, bso)`. */
function emitBinaryMap(mb: ModuleBuilder, dt: DT, op: SimdBinary, pat: Pattern): string {
  const name = `bin_${op}_${dt}_${pat}`;
  const f = mb.fn(name, [I32, I32, I32, I32, I32, I32, I32, I32]);
  const v = new V(f, dt);
  const E = v.E;
  const [s, e, a, b, out, inner, aso, bso] = [0, 1, 2, 3, 4, 5, 6, 7];
  const i = f.local(I32), o = f.local(I32), j = f.local(I32), len = f.local(I32);
  const pa = f.local(I32), pb = f.local(I32), po = f.local(I32), pv = f.local(I32), pe = f.local(I32);
  const va = f.local(V128), vb = f.local(V128);
  const av = pat[0] === 'v', bv = pat[1] === 'v';
  f.get(s).set(i);
  f.block().loop();
  {
    f.get(i).get(e).i32_ge_s().br_if(1);
    f.get(i).get(inner).i32_div_s().set(o);
    f.get(i).get(o).get(inner).i32_mul().i32_sub().set(j);
    // len = min(inner - j, e - i)
    f.get(inner).get(j).i32_sub().get(e).get(i).i32_sub();
    f.get(inner).get(j).i32_sub().get(e).get(i).i32_sub().i32_lt_s().select().set(len);
    f.get(a).get(o).get(aso).i32_mul();
    if (av) f.get(j).i32_add();
    f.i32_const(E).i32_mul().i32_add().set(pa);
    f.get(b).get(o).get(bso).i32_mul();
    if (bv) f.get(j).i32_add();
    f.i32_const(E).i32_mul().i32_add().set(pb);
    f.get(out).get(i).i32_const(E).i32_mul().i32_add().set(po);
    f.get(po).get(len).i32_const(E).i32_mul().i32_add().set(pe);
    f.get(po).get(len).i32_const(-v.lanes).i32_and().i32_const(E).i32_mul().i32_add().set(pv);
    if (!av) {
      f.get(pa);
      v.splat();
      f.set(va);
    }
    if (!bv) {
      f.get(pb);
      v.splat();
      f.set(vb);
    }
    // vector part
    f.block().loop();
    {
      f.get(po).get(pv).i32_ge_s().br_if(1);
      f.get(po);
      if (av) f.get(pa).v128_load(0);
      else f.get(va);
      if (bv) f.get(pb).v128_load(0);
      else f.get(vb);
      emitBinaryOp(v, op);
      f.v128_store(0);
      if (av) f.get(pa).i32_const(16).i32_add().set(pa);
      if (bv) f.get(pb).i32_const(16).i32_add().set(pb);
      f.get(po).i32_const(16).i32_add().set(po);
      f.br(0);
    }
    f.end().end();
    // tail
    f.block().loop();
    {
      f.get(po).get(pe).i32_ge_s().br_if(1);
      f.get(po);
      if (av) {
        f.get(pa);
        v.splat();
      } else f.get(va);
      if (bv) {
        f.get(pb);
        v.splat();
      } else f.get(vb);
      emitBinaryOp(v, op);
      v.store0();
      if (av) f.get(pa).i32_const(E).i32_add().set(pa);
      if (bv) f.get(pb).i32_const(E).i32_add().set(pb);
      f.get(po).i32_const(E).i32_add().set(po);
      f.br(0);
    }
    f.end().end();
    f.get(i).get(len).i32_add().set(i);
    f.br(0);
  }
  f.end().end();
  return name;
}

/** Adds the float64 value(s) of the v128 `x` (element type dt) into accumulators acc0/acc1. */
function accumulate(v: V, x: number, acc0: number, acc1: number): void {
  const f = v.f;
  if (v.dt === 'f32') {
    f.get(acc0).get(x).f64x2_promote_low_f32x4().f64x2_add().set(acc0);
    f.get(acc1).get(x).get(x).i8x16_shuffle([8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]).f64x2_promote_low_f32x4().f64x2_add().set(acc1);
  } else {
    f.get(acc0).get(x).f64x2_add().set(acc0);
  }
}

/** `rsum_<dt>(s, e, x, out, n)`. */
function emitRowSum(mb: ModuleBuilder, dt: DT): string {
  const name = `rsum_${dt}`;
  const f = mb.fn(name, [I32, I32, I32, I32, I32]);
  const v = new V(f, dt);
  const E = v.E;
  const [s, e, x, out, n] = [0, 1, 2, 3, 4];
  const r = f.local(I32), p = f.local(I32), pv = f.local(I32), pe = f.local(I32);
  const acc0 = f.local(V128), acc1 = f.local(V128), t = f.local(V128);
  const tail = f.local(F64);
  f.get(s).set(r);
  f.block().loop();
  {
    f.get(r).get(e).i32_ge_s().br_if(1);
    f.get(x).get(r).get(n).i32_mul().i32_const(E).i32_mul().i32_add().set(p);
    f.get(p).get(n).i32_const(E).i32_mul().i32_add().set(pe);
    f.get(p).get(n).i32_const(-v.lanes).i32_and().i32_const(E).i32_mul().i32_add().set(pv);
    f.f64x2_const(0).set(acc0);
    f.f64x2_const(0).set(acc1);
    f.f64_const(0).set(tail);
    f.block().loop();
    f.get(p).get(pv).i32_ge_s().br_if(1);
    f.get(p).v128_load(0).set(t);
    accumulate(v, t, acc0, acc1);
    f.get(p).i32_const(16).i32_add().set(p);
    f.br(0);
    f.end().end();
    f.block().loop();
    f.get(p).get(pe).i32_ge_s().br_if(1);
    f.get(tail).get(p);
    if (dt === 'f32') f.f32_load(0).f64_promote_f32();
    else f.f64_load(0);
    f.f64_add().set(tail);
    f.get(p).i32_const(E).i32_add().set(p);
    f.br(0);
    f.end().end();
    // out[r] = (acc0 + acc1 lanes) + tail
    f.get(out).get(r).i32_const(E).i32_mul().i32_add();
    f.get(acc0).get(acc1).f64x2_add().set(acc0);
    f.get(acc0).f64x2_extract_lane(0).get(acc0).f64x2_extract_lane(1).f64_add().get(tail).f64_add();
    if (dt === 'f32') f.f32_demote_f64().f32_store(0);
    else f.f64_store(0);
    f.get(r).i32_const(1).i32_add().set(r);
    f.br(0);
  }
  f.end().end();
  return name;
}

/** `csum_<dt>(s, e, x, out, R, inner, tmp)`. */
function emitColSum(mb: ModuleBuilder, dt: DT): string {
  const name = `csum_${dt}`;
  const f = mb.fn(name, [I32, I32, I32, I32, I32, I32, I32]);
  const v = new V(f, dt);
  const E = v.E;
  const [s, e, x, out, R, inner, tmpArg] = [0, 1, 2, 3, 4, 5, 6];
  const i = f.local(I32), o = f.local(I32), j = f.local(I32), len = f.local(I32), r = f.local(I32);
  const px = f.local(I32), pt = f.local(I32), pte = f.local(I32), tmp = f.local(I32), k = f.local(I32);
  const t = f.local(V128);
  // f64: accumulate in out directly
  if (dt === 'f64') f.get(out).set(tmp);
  else f.get(tmpArg).set(tmp);
  f.get(s).set(i);
  f.block().loop();
  {
    f.get(i).get(e).i32_ge_s().br_if(1);
    f.get(i).get(inner).i32_div_s().set(o);
    f.get(i).get(o).get(inner).i32_mul().i32_sub().set(j);
    f.get(inner).get(j).i32_sub().get(e).get(i).i32_sub();
    f.get(inner).get(j).i32_sub().get(e).get(i).i32_sub().i32_lt_s().select().set(len);
    // zero tmp[i .. i+len)
    f.get(tmp).get(i).i32_const(8).i32_mul().i32_add().set(pt);
    f.get(pt).get(len).i32_const(8).i32_mul().i32_add().set(pte);
    f.block().loop();
    f.get(pt).get(pte).i32_ge_s().br_if(1);
    f.get(pt).f64_const(0).f64_store(0);
    f.get(pt).i32_const(8).i32_add().set(pt);
    f.br(0);
    f.end().end();
    // for r: tmp[i..] += x[(o*R + r)*inner + j ..]
    f.i32_const(0).set(r);
    f.block().loop();
    {
      f.get(r).get(R).i32_ge_s().br_if(1);
      f.get(x).get(o).get(R).i32_mul().get(r).i32_add().get(inner).i32_mul().get(j).i32_add().i32_const(E).i32_mul().i32_add().set(px);
      f.get(tmp).get(i).i32_const(8).i32_mul().i32_add().set(pt);
      f.i32_const(0).set(k);
      // vector part: lanes elements per step
      f.block().loop();
      {
        f.get(k).i32_const(v.lanes).i32_add().get(len).i32_gt_s().br_if(1);
        f.get(px).v128_load(0).set(t);
        if (dt === 'f32') {
          f.get(pt).get(pt).v128_load(0).get(t).f64x2_promote_low_f32x4().f64x2_add().v128_store(0);
          f.get(pt).get(pt).v128_load(16).get(t).get(t).i8x16_shuffle([8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]).f64x2_promote_low_f32x4().f64x2_add().v128_store(16);
        } else {
          f.get(pt).get(pt).v128_load(0).get(t).f64x2_add().v128_store(0);
        }
        f.get(px).i32_const(16).i32_add().set(px);
        f.get(pt).i32_const(v.lanes * 8).i32_add().set(pt);
        f.get(k).i32_const(v.lanes).i32_add().set(k);
        f.br(0);
      }
      f.end().end();
      f.block().loop();
      {
        f.get(k).get(len).i32_ge_s().br_if(1);
        f.get(pt).get(pt).f64_load(0).get(px);
        if (dt === 'f32') f.f32_load(0).f64_promote_f32();
        else f.f64_load(0);
        f.f64_add().f64_store(0);
        f.get(px).i32_const(E).i32_add().set(px);
        f.get(pt).i32_const(8).i32_add().set(pt);
        f.get(k).i32_const(1).i32_add().set(k);
        f.br(0);
      }
      f.end().end();
      f.get(r).i32_const(1).i32_add().set(r);
      f.br(0);
    }
    f.end().end();
    if (dt === 'f32') {
      // out[i..i+len) = f32(tmp)
      f.i32_const(0).set(k);
      f.get(tmp).get(i).i32_const(8).i32_mul().i32_add().set(pt);
      f.get(out).get(i).i32_const(4).i32_mul().i32_add().set(px);
      f.block().loop();
      f.get(k).get(len).i32_ge_s().br_if(1);
      f.get(px).get(pt).f64_load(0).f32_demote_f64().f32_store(0);
      f.get(px).i32_const(4).i32_add().set(px);
      f.get(pt).i32_const(8).i32_add().set(pt);
      f.get(k).i32_const(1).i32_add().set(k);
      f.br(0);
      f.end().end();
    }
    f.get(i).get(len).i32_add().set(i);
    f.br(0);
  }
  f.end().end();
  return name;
}

/** `softmax_<dt>(s, e, x, out, n)`. */
function emitSoftmax(mb: ModuleBuilder, dt: DT): string {
  const name = `softmax_${dt}`;
  const f = mb.fn(name, [I32, I32, I32, I32, I32]);
  const v = new V(f, dt);
  const E = v.E;
  const [s, e, x, out, n] = [0, 1, 2, 3, 4];
  const r = f.local(I32), px = f.local(I32), po = f.local(I32), pv = f.local(I32), pe = f.local(I32), rowBytes = f.local(I32);
  const vm = f.local(V128), t = f.local(V128), acc0 = f.local(V128), acc1 = f.local(V128), sc = f.local(V128);
  const m = f.local(dt === 'f32' ? F32 : F64), tail = f.local(F64), sum = f.local(F64);
  const L = expLocals(f);
  const load = () => (dt === 'f32' ? f.f32_load(0) : f.f64_load(0));
  f.get(n).i32_const(E).i32_mul().set(rowBytes);
  f.get(s).set(r);
  f.block().loop();
  {
    f.get(r).get(e).i32_ge_s().br_if(1);
    f.get(x).get(r).get(rowBytes).i32_mul().i32_add().set(px);
    f.get(px).get(rowBytes).i32_add().set(pe);
    f.get(px).get(n).i32_const(-v.lanes).i32_and().i32_const(E).i32_mul().i32_add().set(pv);
    // ---- max (NaN propagates: a row with NaN ends all-NaN, as in the plain-TS kernel)
    v.c(-Infinity);
    f.set(vm);
    f.block().loop();
    f.get(px).get(pv).i32_ge_s().br_if(1);
    f.get(vm).get(px).v128_load(0);
    v.max();
    f.set(vm);
    f.get(px).i32_const(16).i32_add().set(px);
    f.br(0);
    f.end().end();
    f.block().loop();
    f.get(px).get(pe).i32_ge_s().br_if(1);
    f.get(vm).get(px);
    v.splat();
    v.max();
    f.set(vm);
    f.get(px).i32_const(E).i32_add().set(px);
    f.br(0);
    f.end().end();
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
    f.f64x2_const(0).set(acc0);
    f.f64x2_const(0).set(acc1);
    f.f64_const(0).set(tail);
    f.block().loop();
    f.get(px).get(pv).i32_ge_s().br_if(1);
    f.get(po);
    f.get(px).v128_load(0).get(vm);
    v.sub();
    emitExp(v, L);
    f.tee(t);
    f.v128_store(0);
    accumulate(v, t, acc0, acc1);
    f.get(px).i32_const(16).i32_add().set(px);
    f.get(po).i32_const(16).i32_add().set(po);
    f.br(0);
    f.end().end();
    f.block().loop();
    f.get(px).get(pe).i32_ge_s().br_if(1);
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
    f.get(px).i32_const(E).i32_add().set(px);
    f.get(po).i32_const(E).i32_add().set(po);
    f.br(0);
    f.end().end();
    f.get(acc0).get(acc1).f64x2_add().set(acc0);
    f.get(acc0).f64x2_extract_lane(0).get(acc0).f64x2_extract_lane(1).f64_add().get(tail).f64_add().set(sum);
    // ---- out /= sum (f32: multiply by the rounded reciprocal)
    if (dt === 'f32') f.f32_const(1).f64_promote_f32().get(sum).f64_div().f32_demote_f64().f32x4_splat().set(sc);
    else f.get(sum).f64x2_splat().set(sc);
    f.get(out).get(r).get(rowBytes).i32_mul().i32_add().set(po);
    f.get(po).get(rowBytes).i32_add().set(pe);
    f.get(po).get(n).i32_const(-v.lanes).i32_and().i32_const(E).i32_mul().i32_add().set(pv);
    f.block().loop();
    f.get(po).get(pv).i32_ge_s().br_if(1);
    f.get(po).get(po).v128_load(0).get(sc);
    if (dt === 'f32') v.mul();
    else v.div();
    f.v128_store(0);
    f.get(po).i32_const(16).i32_add().set(po);
    f.br(0);
    f.end().end();
    f.block().loop();
    f.get(po).get(pe).i32_ge_s().br_if(1);
    f.get(po).get(po);
    load();
    if (dt === 'f32') f.get(sc).f32x4_extract_lane(0).f32_mul().f32_store(0);
    else f.get(sum).f64_div().f64_store(0);
    f.get(po).i32_const(E).i32_add().set(po);
    f.br(0);
    f.end().end();
    f.get(r).i32_const(1).i32_add().set(r);
    f.br(0);
  }
  f.end().end();
  return name;
}

/** `smgrad_<dt>(s, e, y, g, out, n)`: softmax backward of rows [s, e): out = y ⊙ (g − Σ y·g). */
function emitSoftmaxGrad(mb: ModuleBuilder, dt: DT): string {
  const name = `smgrad_${dt}`;
  const f = mb.fn(name, [I32, I32, I32, I32, I32, I32]);
  const v = new V(f, dt);
  const E = v.E;
  const [s, e, y, g, out, n] = [0, 1, 2, 3, 4, 5];
  const r = f.local(I32), py = f.local(I32), pg = f.local(I32), po = f.local(I32), pv = f.local(I32), pe = f.local(I32), rowBytes = f.local(I32);
  const t = f.local(V128), acc0 = f.local(V128), acc1 = f.local(V128), vs = f.local(V128);
  const tail = f.local(F64), sum = f.local(F64);
  f.get(n).i32_const(E).i32_mul().set(rowBytes);
  f.get(s).set(r);
  f.block().loop();
  {
    f.get(r).get(e).i32_ge_s().br_if(1);
    f.get(y).get(r).get(rowBytes).i32_mul().i32_add().set(py);
    f.get(g).get(r).get(rowBytes).i32_mul().i32_add().set(pg);
    f.get(py).get(rowBytes).i32_add().set(pe);
    f.get(py).get(n).i32_const(-v.lanes).i32_and().i32_const(E).i32_mul().i32_add().set(pv);
    f.f64x2_const(0).set(acc0);
    f.f64x2_const(0).set(acc1);
    f.f64_const(0).set(tail);
    // Σ y·g (products in the element type, summed in float64)
    f.block().loop();
    f.get(py).get(pv).i32_ge_s().br_if(1);
    f.get(py).v128_load(0).get(pg).v128_load(0);
    v.mul();
    f.set(t);
    accumulate(v, t, acc0, acc1);
    f.get(py).i32_const(16).i32_add().set(py);
    f.get(pg).i32_const(16).i32_add().set(pg);
    f.br(0);
    f.end().end();
    f.block().loop();
    f.get(py).get(pe).i32_ge_s().br_if(1);
    f.get(tail);
    if (dt === 'f32') f.get(py).f32_load(0).get(pg).f32_load(0).f32_mul().f64_promote_f32();
    else f.get(py).f64_load(0).get(pg).f64_load(0).f64_mul();
    f.f64_add().set(tail);
    f.get(py).i32_const(E).i32_add().set(py);
    f.get(pg).i32_const(E).i32_add().set(pg);
    f.br(0);
    f.end().end();
    f.get(acc0).get(acc1).f64x2_add().set(acc0);
    f.get(acc0).f64x2_extract_lane(0).get(acc0).f64x2_extract_lane(1).f64_add().get(tail).f64_add().set(sum);
    if (dt === 'f32') f.get(sum).f32_demote_f64().f32x4_splat().set(vs);
    else f.get(sum).f64x2_splat().set(vs);
    // out = y ⊙ (g − s)
    f.get(y).get(r).get(rowBytes).i32_mul().i32_add().set(py);
    f.get(g).get(r).get(rowBytes).i32_mul().i32_add().set(pg);
    f.get(out).get(r).get(rowBytes).i32_mul().i32_add().set(po);
    f.block().loop();
    f.get(py).get(pv).i32_ge_s().br_if(1);
    f.get(po).get(py).v128_load(0).get(pg).v128_load(0).get(vs);
    v.sub();
    v.mul();
    f.v128_store(0);
    f.get(py).i32_const(16).i32_add().set(py);
    f.get(pg).i32_const(16).i32_add().set(pg);
    f.get(po).i32_const(16).i32_add().set(po);
    f.br(0);
    f.end().end();
    f.block().loop();
    f.get(py).get(pe).i32_ge_s().br_if(1);
    f.get(po).get(py);
    v.splat();
    f.get(pg);
    v.splat();
    f.get(vs);
    v.sub();
    v.mul();
    v.store0();
    f.get(py).i32_const(E).i32_add().set(py);
    f.get(pg).i32_const(E).i32_add().set(pg);
    f.get(po).i32_const(E).i32_add().set(po);
    f.br(0);
    f.end().end();
    f.get(r).i32_const(1).i32_add().set(r);
    f.br(0);
  }
  f.end().end();
  return name;
}

/** Emits every map function; returns their names in dispatch-table order. */
export function emitElementwise(mb: ModuleBuilder): string[] {
  const names: string[] = [];
  for (const dt of ['f32', 'f64'] as const) {
    for (const op of SIMD_UNARY) names.push(emitUnaryMap(mb, dt, op));
    for (const op of SIMD_BINARY) for (const pat of PATTERNS) names.push(emitBinaryMap(mb, dt, op, pat));
    names.push(emitRowSum(mb, dt));
    names.push(emitColSum(mb, dt));
    names.push(emitSoftmax(mb, dt));
    names.push(emitSoftmaxGrad(mb, dt));
  }
  return names;
}
