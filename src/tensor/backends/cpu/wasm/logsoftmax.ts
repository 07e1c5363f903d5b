/**
 * WebAssembly SIMD log-softmax along rows and its backward, as map functions of a row range
 * `[s, e)` (emitted into the dispatch table by elementwise.ts). f64 computes everything after the
 * row maximum in float64, as the plain-TS kernels (reduce.ts `softmaxCpu`, fused.ts
 * `softmaxGradCpu`) do. f32 evaluates exp in float32 on four lanes (as the release's float32
 * kernels do; the float64 exp on two lanes took most of a language model's output layer) and keeps
 * the row sums and the final `x − (m + log Σ)` in float64:
 *
 * - `lsmstats_<dt>(s, e, x, st, n)`: for row r, st[2r] = max m, st[2r+1] = Σ exp(x − m) (float64
 *   sum; f32: `x − m` and its exp in float32, each exp within one ulp, so the sum is within about
 *   two float32 ulp of the exact one). The caller then replaces st[2r] by m + log(st[2r+1]) (wasm
 *   has no log instruction; one Math.log per row).
 * - `lsmout_<dt>(s, e, x, st, out, n)`: out = x − st[2r] (float64, one rounding).
 * - `lsmgrad_<dt>(s, e, y, g, out, n)`: out = g − exp(y)·Σ g (Σ g in float64; f32: exp(y) in
 *   float32 and `g − exp(y)·Σg` with the float32-rounded sum, one multiply-add).
 *
 * Against the float64 computation rounded once, f32 outputs are within one float32 ulp of the
 * result plus two of `1` (log-softmax: the sum's error is an absolute error of its log) or of
 * `exp(y)·Σ|g|` (backward) — the bounds test/tensor/backends/cpu/simd-fused.test.ts checks.
 */
import { F32, F64, I32, V128, type Fn, type ModuleBuilder } from './builder.js';
import { relaxedSimd } from './features.js';
import { accumulate, emitExp, expLocals, HIGH_HALF, inc, rowMax, rowSum, Simd, sumTotal, whileLt, zeroSum, type DT, type ExpLocals } from './vector.js';

/** Low f64 halves of two demoted f32x4 (lanes [a0, a1, b0, b1]). */
const LOW_PAIRS = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];

/**
 * Loops over the `n` elements of a row: the inputs' byte pointers `ins` and the output pointer
 * `out` advance together. `compute(push)` must leave one f64x2 on the stack, computed from the
 * inputs' values as f64x2 (`push(k)` pushes input k's); f32 values are widened and the results
 * rounded back. `vals` are scratch v128 locals, one per input, `lo` one more; `pv`, `pe` i32
 * scratch (end of the whole vectors, end of the row).
 */
function rowMapF64(
  f: Fn,
  dt: DT,
  ins: number[],
  out: number,
  n: number,
  vals: number[],
  lo: number,
  pv: number,
  pe: number,
  compute: (push: (k: number) => void) => void,
): void {
  const v = new Simd(f, dt);
  const E = v.E;
  f.get(out).get(n).i32_const(E).i32_mul().i32_add().set(pe);
  v.vectorEnd(out, n, pv);
  const step = (bytes: number) => {
    for (const p of ins) inc(f, p, bytes);
    inc(f, out, bytes);
  };
  whileLt(f, out, pv, () => {
    if (dt === 'f32') {
      ins.forEach((p, k) => f.get(p).v128_load(0).set(vals[k]));
      compute((k) => f.get(vals[k]).f64x2_promote_low_f32x4());
      f.f32x4_demote_f64x2_zero().set(lo);
      compute((k) => f.get(vals[k]).get(vals[k]).i8x16_shuffle(HIGH_HALF).f64x2_promote_low_f32x4());
      f.f32x4_demote_f64x2_zero().set(vals[0]);
      f.get(out).get(lo).get(vals[0]).i8x16_shuffle(LOW_PAIRS).v128_store(0);
    } else {
      f.get(out);
      compute((k) => f.get(ins[k]).v128_load(0));
      f.v128_store(0);
    }
    step(16);
  });
  whileLt(f, out, pe, () => {
    f.get(out);
    if (dt === 'f32') {
      compute((k) => f.get(ins[k]).v128_load32_splat(0).f64x2_promote_low_f32x4());
      f.f64x2_extract_lane(0).f32_demote_f64().f32_store(0);
    } else {
      compute((k) => f.get(ins[k]).v128_load64_splat(0));
      f.f64x2_extract_lane(0).f64_store(0);
    }
    step(E);
  });
}

/** `lsmstats_<dt>(s, e, x, st, n)`. */
function emitStats(mb: ModuleBuilder, dt: DT): string {
  const name = `lsmstats_${dt}`;
  const f = mb.fn(name, [I32, I32, I32, I32, I32]);
  const v = new Simd(f, dt);
  const d = new Simd(f, 'f64');
  const E = v.E;
  const [s, e, x, st, n] = [0, 1, 2, 3, 4];
  const r = f.local(I32),
    px = f.local(I32),
    pv = f.local(I32),
    pe = f.local(I32);
  const vm = f.local(V128),
    t = f.local(V128),
    acc0 = f.local(V128),
    acc1 = f.local(V128);
  const m = f.local(F64),
    m32 = f.local(F32),
    tail = f.local(F64);
  const L: ExpLocals = expLocals(f);
  /** Adds exp(f64x2 on the stack − m) to acc0 (f64). */
  const addExp = () => {
    f.get(vm);
    d.sub();
    emitExp(d, L);
    f.get(acc0).f64x2_add().set(acc0);
  };
  /** exp(f32x4 on the stack − m) in float32 (f32), left on the stack. */
  const exp32 = () => {
    f.get(vm);
    v.sub();
    emitExp(v, L);
  };
  f.get(s).set(r);
  whileLt(f, r, e, () => {
    f.get(x).get(r).get(n).i32_mul().i32_const(E).i32_mul().i32_add().set(px);
    f.get(px).get(n).i32_const(E).i32_mul().i32_add().set(pe);
    v.vectorEnd(px, n, pv);
    // ---- max in the element type (NaN propagates: the row's sum, and so its outputs, are NaN)
    rowMax(v, px, pv, pe, vm);
    if (dt === 'f32') {
      f.get(vm).f32x4_extract_lane(0).get(vm).f32x4_extract_lane(1).f32_max();
      f.get(vm).f32x4_extract_lane(2).get(vm).f32x4_extract_lane(3).f32_max().f32_max().tee(m32).f64_promote_f32().set(m);
      f.get(m32).f32x4_splat().set(vm);
    } else {
      f.get(vm).f64x2_extract_lane(0).get(vm).f64x2_extract_lane(1).f64_max().set(m);
      f.get(m).f64x2_splat().set(vm);
    }
    // ---- Σ exp(x − m) in float64 (f32: the exps in float32)
    f.get(x).get(r).get(n).i32_mul().i32_const(E).i32_mul().i32_add().set(px);
    zeroSum(f, acc0, acc1, tail);
    whileLt(f, px, pv, () => {
      f.get(px).v128_load(0);
      if (dt === 'f32') {
        exp32();
        f.set(t);
        accumulate(v, t, acc0, acc1);
      } else addExp();
      inc(f, px, 16);
    });
    whileLt(f, px, pe, () => {
      f.get(px);
      v.splat();
      if (dt === 'f32') {
        exp32();
        f.f32x4_extract_lane(0).f64_promote_f32();
      } else {
        f.get(vm);
        d.sub();
        emitExp(d, L);
        f.f64x2_extract_lane(0);
      }
      f.get(tail).f64_add().set(tail);
      inc(f, px, E);
    });
    f.get(st).get(r).i32_const(16).i32_mul().i32_add().get(m).f64_store(0);
    f.get(st).get(r).i32_const(16).i32_mul().i32_add();
    sumTotal(f, acc0, acc1, tail);
    f.f64_store(8);
    inc(f, r, 1);
  });
  return name;
}

/** `lsmout_<dt>(s, e, x, st, out, n)`. */
function emitOut(mb: ModuleBuilder, dt: DT): string {
  const name = `lsmout_${dt}`;
  const f = mb.fn(name, [I32, I32, I32, I32, I32, I32]);
  const E = dt === 'f32' ? 4 : 8;
  const [s, e, x, st, out, n] = [0, 1, 2, 3, 4, 5];
  const r = f.local(I32),
    px = f.local(I32),
    po = f.local(I32),
    pv = f.local(I32),
    pe = f.local(I32);
  const ls = f.local(V128),
    val = f.local(V128),
    lo = f.local(V128);
  f.get(s).set(r);
  whileLt(f, r, e, () => {
    f.get(x).get(r).get(n).i32_mul().i32_const(E).i32_mul().i32_add().set(px);
    f.get(out).get(r).get(n).i32_mul().i32_const(E).i32_mul().i32_add().set(po);
    f.get(st).get(r).i32_const(16).i32_mul().i32_add().v128_load64_splat(0).set(ls);
    rowMapF64(f, dt, [px], po, n, [val], lo, pv, pe, (push) => {
      push(0);
      f.get(ls).f64x2_sub();
    });
    inc(f, r, 1);
  });
  return name;
}

/** `lsmgrad_<dt>(s, e, y, g, out, n)`. */
function emitGrad(mb: ModuleBuilder, dt: DT): string {
  const name = `lsmgrad_${dt}`;
  const f = mb.fn(name, [I32, I32, I32, I32, I32, I32]);
  const v = new Simd(f, dt);
  const d = new Simd(f, 'f64');
  const E = v.E;
  const [s, e, y, g, out, n] = [0, 1, 2, 3, 4, 5];
  const r = f.local(I32),
    py = f.local(I32),
    pg = f.local(I32),
    po = f.local(I32),
    pv = f.local(I32),
    pe = f.local(I32);
  const t = f.local(V128),
    acc0 = f.local(V128),
    acc1 = f.local(V128),
    vs = f.local(V128),
    vy = f.local(V128),
    vg = f.local(V128),
    lo = f.local(V128);
  const tail = f.local(F64);
  const L = expLocals(f);
  f.get(s).set(r);
  whileLt(f, r, e, () => {
    // Σ g in float64
    f.get(g).get(r).get(n).i32_mul().i32_const(E).i32_mul().i32_add().set(pg);
    f.get(pg).get(n).i32_const(E).i32_mul().i32_add().set(pe);
    v.vectorEnd(pg, n, pv);
    rowSum(v, pg, pv, pe, t, acc0, acc1, tail);
    sumTotal(f, acc0, acc1, tail);
    // out = g − exp(y)·Σg (f32: −Σg rounded to float32 in every lane)
    if (dt === 'f32') f.f32_demote_f64().f32_neg().f32x4_splat().set(vs);
    else f.f64x2_splat().set(vs);
    f.get(y).get(r).get(n).i32_mul().i32_const(E).i32_mul().i32_add().set(py);
    f.get(g).get(r).get(n).i32_mul().i32_const(E).i32_mul().i32_add().set(pg);
    f.get(out).get(r).get(n).i32_mul().i32_const(E).i32_mul().i32_add().set(po);
    if (dt === 'f32') gradRow32(v, L, py, pg, po, n, vs, pv, pe);
    else
      rowMapF64(f, dt, [py, pg], po, n, [vy, vg], lo, pv, pe, (push) => {
        push(1);
        push(0);
        emitExp(d, L);
        f.get(vs);
        d.mul();
        d.sub();
      });
    inc(f, r, 1);
  });
  return name;
}

/**
 * One f32 row of the backward: out = exp(y)·(−Σg) + g over the `n` elements from `py`, `pg`, `po`
 * (advanced to the row's end), `negSum` the splat −Σg: exp in float32, then one `relaxed_madd`
 * (fused where the CPU has FMA) or a multiply and an add.
 */
function gradRow32(v: Simd, L: ExpLocals, py: number, pg: number, po: number, n: number, negSum: number, pv: number, pe: number): void {
  const f = v.f;
  /** One step: `load` pushes a value (a vector, or one element splatted), `store` writes it. */
  const step = (load: () => void, store: () => void, bytes: number) => {
    f.get(po);
    f.get(py);
    load();
    emitExp(v, L);
    f.get(negSum);
    if (relaxedSimd()) {
      f.get(pg);
      load();
      f.f32x4_relaxed_madd();
    } else {
      v.mul();
      f.get(pg);
      load();
      v.add();
    }
    store();
    for (const p of [py, pg, po]) inc(f, p, bytes);
  };
  f.get(po).get(n).i32_const(4).i32_mul().i32_add().set(pe);
  v.vectorEnd(po, n, pv);
  whileLt(f, po, pv, () =>
    step(
      () => f.v128_load(0),
      () => f.v128_store(0),
      16,
    ),
  );
  // the last elements one at a time (splat loads: the lanes beyond lane 0 are ignored)
  whileLt(f, po, pe, () =>
    step(
      () => v.splat(),
      () => v.store0(),
      4,
    ),
  );
}

/** Emits the log-softmax map functions; returns their names in dispatch-table order. */
export function emitLogSoftmaxMaps(mb: ModuleBuilder): string[] {
  const names: string[] = [];
  for (const dt of ['f32', 'f64'] as const) names.push(emitStats(mb, dt), emitOut(mb, dt), emitGrad(mb, dt));
  return names;
}
