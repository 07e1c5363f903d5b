/**
 * WebAssembly EMA kernel build and its VJP (the plain-TS kernels are `emaKernelCpu` /
 * `emaKernelGradCpu` in cpu/fused.ts; this is the same arithmetic, instruction for instruction,
 * so the results are bitwise equal):
 *
 * - `fdexp(x)`: exp by the fdlibm algorithm (`__ieee754_exp`, the one V8's `Math.exp` runs),
 *   scalar f64. ema-simd.ts checks it against `Math.exp` once before using these kernels.
 * - `ema_<dt>(cfg, t, tid)`: rows d of task t of `k[d, l] = Σ_n coef·q^l`. Powers are
 *   exp(l0·ln q)·exp(j·ln q) with l = l0 + j, j < B = {@link emaBlock}(L) (B + ⌈L/B⌉ exps per
 *   state instead of one per value); the accumulation
 *   `acc[l] += base·pw[j]` runs two l per f64x2 (each acc[l] still sums n in order); blocks past
 *   the cut-off are skipped as in the TS kernel.
 * - `emagrad_<dt>(cfg, t, tid)`: rows d of task t of the VJP `(Σ_l g·q^l, coef·Σ_l g·l·q^(l−1))`:
 *   two n per f64x2, four n per pass (lane = n, each lane sums l in order, so the sums equal the
 *   scalar ones); where one lane reaches its cut-off first, each lane finishes alone
 *   (`emarest_<dt>`).
 *
 * All sums are float64; outputs are rounded once to the element type. Thread scratch (tid):
 * the f64 accumulator of a row, the power table, two f64 sums.
 */
import { F64, I32, V128, type Fn, type ModuleBuilder } from './builder.js';
import { inc, loop, minInto, whileLt, whileLtU, type DT } from './vector.js';

/** Byte offsets of the i32 fields of the configuration block. */
export const EMA_CFG = {
  /** rows D, states N, length L (forward) or gradient length (VJP) */
  D: 0,
  N: 4,
  L: 8,
  /** f64 records per (d, n): coef, ln q, q */
  TBL: 12,
  OUT: 16,
  /** the VJP's output gradient `[D, L]`, contiguous */
  G: 20,
  SCR: 24,
  SCRB: 28,
  /** rows per task */
  PER: 32,
  /** powers per block, {@link emaBlock}(L) */
  BLK: 36,
} as const;
/** Size of the configuration block in bytes. */
export const EMA_CFG_BYTES = 64;
/** Most powers per block (the size of the power tables in the thread scratch). */
export const EMA_MAX_BLOCK = 32;

/**
 * Powers per block for length `L`: exp(j·ln q), j < B, are a table and each block of B values
 * takes one more exp, so a state costs B + ⌈L/B⌉ exps — fewest near B = √L (ListOps' L ≈ 24:
 * 10 instead of 25 with blocks of 32). Every value is still base·table[j], a product of two
 * exps (≤ 2 ulp from exp(l·ln q)). The plain-TS and wasm kernels use the same B.
 */
export function emaBlock(L: number): number {
  return Math.min(EMA_MAX_BLOCK, Math.max(1, Math.ceil(Math.sqrt(L))));
}
/**
 * Blocks whose first power is below exp(EMA_CUTOFF) ≈ 1e−280 (relative to coef) and all later
 * ones are skipped: negligible, and their products would be subnormal numbers (~100× slower).
 */
export const EMA_CUTOFF = -645;
/** Thread scratch bytes for length `L`: accumulator, power tables (two of state pairs), two sums. */
export function emaScratchBytes(L: number): number {
  return Math.ceil((L * 8) / 64) * 64 + EMA_MAX_BLOCK * 32 + 64;
}

// fdlibm e_exp.c constants
const LN2HI = 6.9314718036912381649e-1;
const LN2LO = 1.90821492927058770002e-10;
const INVLN2 = 1.442695040888963387;
const P1 = 1.66666666666666019037e-1,
  P2 = -2.77777777770155933842e-3,
  P3 = 6.61375632143793436117e-5,
  P4 = -1.6533902205465251539e-6,
  P5 = 4.13813679705723846039e-8;
const O_THRESHOLD = 7.09782712893383973096e2,
  U_THRESHOLD = -7.4513321910194110842e2;
const TWOM1000 = 9.3326361850321887899e-302,
  TWO1023 = 8.98846567431157953865e307;

/** `fdexp(x: f64) → f64`: fdlibm's exp, step for step (V8's `base::ieee754::exp`). */
function emitFdexp(mb: ModuleBuilder): Fn {
  const f = mb.fn('fdexp', [F64], [F64]);
  const x = 0;
  const hx = f.local(I32),
    xsb = f.local(I32),
    k = f.local(I32);
  const hi = f.local(F64),
    lo = f.local(F64),
    t = f.local(F64),
    c = f.local(F64),
    y = f.local(F64),
    twopk = f.local(F64);
  f.get(x).i64_reinterpret_f64().i64_const(32).i64_shr_u().i32_wrap_i64().set(hx);
  f.get(hx).i32_const(31).i32_shr_u().set(xsb);
  f.get(hx).i32_const(0x7fffffff).i32_and().set(hx);
  // |x| ≥ 709.78: non-finite, overflow, underflow
  f.get(hx).i32_const(0x40862e42).i32_ge_s().if_();
  {
    f.get(hx).i32_const(0x7ff00000).i32_ge_s().if_();
    {
      f.get(hx).i32_const(0xfffff).i32_and().get(x).i64_reinterpret_f64().i32_wrap_i64().i32_or().if_();
      f.get(x).get(x).f64_add().return_();
      f.end();
      f.get(x).f64_const(0).get(xsb).i32_eqz().select().return_(); // exp(±∞) = {∞, 0}
    }
    f.end();
    f.get(x).f64_const(O_THRESHOLD).f64_gt().if_();
    f.f64_const(Infinity).return_();
    f.end();
    f.get(x).f64_const(U_THRESHOLD).f64_lt().if_();
    f.f64_const(0).return_();
    f.end();
  }
  f.end();
  // argument reduction
  f.get(hx).i32_const(0x3fd62e42).i32_gt_s().if_();
  {
    f.get(hx).i32_const(0x3ff0a2b2).i32_lt_s().if_();
    {
      f.get(x).f64_const(1).f64_eq().if_();
      f.f64_const(Math.E).return_(); // V8's special case: the reduction would miss e's last bit
      f.end();
      f.get(x).f64_const(-LN2HI).f64_const(LN2HI).get(xsb).select().f64_sub().set(hi);
      f.f64_const(-LN2LO).f64_const(LN2LO).get(xsb).select().set(lo);
      f.i32_const(1).get(xsb).i32_const(1).i32_shl().i32_sub().set(k);
    }
    f.else_();
    {
      f.f64_const(INVLN2).get(x).f64_mul().f64_const(-0.5).f64_const(0.5).get(xsb).select().f64_add().i32_trunc_f64_s().set(k);
      f.get(k).f64_convert_i32_s().set(t);
      f.get(x).get(t).f64_const(LN2HI).f64_mul().f64_sub().set(hi);
      f.get(t).f64_const(LN2LO).f64_mul().set(lo);
    }
    f.end();
    f.get(hi).get(lo).f64_sub().set(x);
  }
  f.else_();
  {
    f.get(hx).i32_const(0x3e300000).i32_lt_s().if_();
    f.f64_const(1).get(x).f64_add().return_(); // |x| < 2⁻²⁸
    f.end();
    f.i32_const(0).set(k);
  }
  f.end();
  f.get(x).get(x).f64_mul().set(t);
  // twopk = 2^k (2^(k+1000) below −1021)
  f.get(k).get(k).i32_const(1000).i32_add().get(k).i32_const(-1021).i32_ge_s().select();
  f.i32_const(20).i32_shl().i32_const(0x3ff00000).i32_add().i64_extend_i32_u().i64_const(32).i64_shl().f64_reinterpret_i64().set(twopk);
  // c = x − t·(P1 + t·(P2 + t·(P3 + t·(P4 + t·P5))))
  f.get(x).get(t);
  f.get(t).f64_const(P5).f64_mul().f64_const(P4).f64_add();
  for (const p of [P3, P2, P1]) f.get(t).f64_mul().f64_const(p).f64_add();
  f.f64_mul().f64_sub().set(c);
  f.get(k).i32_eqz().if_();
  // 1 − ((x·c)/(c − 2) − x)
  f.f64_const(1).get(x).get(c).f64_mul().get(c).f64_const(2).f64_sub().f64_div().get(x).f64_sub().f64_sub().return_();
  f.end();
  // y = 1 − ((lo − (x·c)/(2 − c)) − hi)
  f.f64_const(1).get(lo).get(x).get(c).f64_mul().f64_const(2).get(c).f64_sub().f64_div().f64_sub().get(hi).f64_sub().f64_sub().set(y);
  f.get(k).i32_const(-1021).i32_ge_s().if_();
  {
    f.get(k).i32_const(1024).i32_eq().if_();
    f.get(y).f64_const(2).f64_mul().f64_const(TWO1023).f64_mul().return_();
    f.end();
    f.get(y).get(twopk).f64_mul().return_();
  }
  f.end();
  f.get(y).get(twopk).f64_mul().f64_const(TWOM1000).f64_mul();
  return f;
}

/** Emits `fdexp(f64(i)·lq)` (i an i32 local, lq an f64 local). */
function expOf(f: Fn, fdexp: Fn, i: number, lq: number): void {
  f.get(i).f64_convert_i32_s().get(lq).f64_mul().call(fdexp);
}

/** Emits the i32 condition "block l0 is past the end or the cut-off of lq". */
function blockDone(f: Fn, l0: number, L: number, lq: number): void {
  f.get(l0).get(L).i32_ge_s();
  f.get(l0).f64_convert_i32_s().get(lq).f64_mul().f64_const(EMA_CUTOFF).f64_lt().i32_or();
}

/** Emits `m = min(blk, L − l0)`. */
function blockLen(f: Fn, L: number, l0: number, m: number, blk: number): void {
  minInto(
    f,
    m,
    () => f.get(blk),
    () => f.get(L).get(l0).i32_sub(),
  );
}

/** Scalar f64 of the element at the address on the stack. */
function loadF64(f: Fn, dt: DT): void {
  if (dt === 'f32') f.f32_load(0).f64_promote_f32();
  else f.f64_load(0);
}

/** Stores the f64 on the stack (address below it) rounded to the element type. */
function storeAs(f: Fn, dt: DT, off = 0): void {
  if (dt === 'f32') f.f32_demote_f64().f32_store(off);
  else f.f64_store(off);
}

/** Sets `d0, d1` to the row range of task t and `scr` to the thread's scratch. */
function taskRows(f: Fn, [cfg, t, tid]: number[], d: number, d1: number, scr: number): void {
  const C = EMA_CFG;
  f.get(t).get(cfg).i32_load(C.PER).i32_mul().set(d);
  f.get(d).get(cfg).i32_load(C.PER).i32_add().tee(d1).get(cfg).i32_load(C.D).get(d1).get(cfg).i32_load(C.D).i32_lt_s().select().set(d1);
  f.get(cfg).i32_load(C.SCR).get(tid).get(cfg).i32_load(C.SCRB).i32_mul().i32_add().set(scr);
}

function emitForward(mb: ModuleBuilder, dt: DT, fdexp: Fn): void {
  const E = dt === 'f32' ? 4 : 8;
  const f = mb.fn(`ema_${dt}`, [I32, I32, I32]);
  const cfg = 0;
  const C = EMA_CFG;
  const [N, L, tbl, out, d, d1, acc, pw, n, j, P, l0, m, p, q, pe, blk] = Array.from({ length: 17 }, () => f.local(I32));
  const cn = f.local(F64),
    lq = f.local(F64),
    base = f.local(F64);
  const bv = f.local(V128);
  taskRows(f, [0, 1, 2], d, d1, acc);
  f.get(cfg).i32_load(C.N).set(N);
  f.get(cfg).i32_load(C.L).set(L);
  f.get(cfg).i32_load(C.TBL).set(tbl);
  f.get(cfg).i32_load(C.OUT).set(out);
  f.get(cfg).i32_load(C.BLK).set(blk);
  f.get(acc).get(L).i32_const(8).i32_mul().i32_const(63).i32_add().i32_const(-64).i32_and().i32_add().set(pw);
  minInto(
    f,
    P,
    () => f.get(blk),
    () => f.get(L),
  ); // the powers a block uses
  whileLt(f, d, d1, () => {
    // acc = 0
    f.get(acc).set(p);
    f.get(acc).get(L).i32_const(3).i32_shl().i32_add().set(pe);
    whileLtU(f, p, pe, () => {
      f.get(p).f64_const(0).f64_store(0);
      inc(f, p, 8);
    });
    f.i32_const(0).set(n);
    whileLt(f, n, N, () => {
      f.get(tbl).get(d).get(N).i32_mul().get(n).i32_add().i32_const(24).i32_mul().i32_add().set(p);
      f.get(p).f64_load(0).set(cn);
      f.get(p).f64_load(8).set(lq);
      f.i32_const(0).set(j);
      whileLt(f, j, P, () => {
        f.get(pw).get(j).i32_const(3).i32_shl().i32_add();
        expOf(f, fdexp, j, lq);
        f.f64_store(0);
        inc(f, j, 1);
      });
      f.i32_const(0).set(l0);
      loop(
        f,
        () => blockDone(f, l0, L, lq),
        () => {
          f.get(cn);
          expOf(f, fdexp, l0, lq);
          f.f64_mul().tee(base).f64x2_splat().set(bv);
          blockLen(f, L, l0, m, blk);
          // acc[l0 + j] += base · pw[j], two j per vector
          f.get(acc).get(l0).i32_const(3).i32_shl().i32_add().tee(p);
          f.get(m).i32_const(-2).i32_and().i32_const(3).i32_shl().i32_add().set(pe);
          f.get(pw).set(q);
          whileLtU(f, p, pe, () => {
            f.get(p).get(p).v128_load(0).get(bv).get(q).v128_load(0).f64x2_mul().f64x2_add().v128_store(0);
            inc(f, p, 16);
            inc(f, q, 16);
          });
          f.get(m).i32_const(1).i32_and().if_();
          f.get(p).get(p).f64_load(0).get(base).get(q).f64_load(0).f64_mul().f64_add().f64_store(0);
          f.end();
          f.get(l0).get(blk).i32_add().set(l0);
        },
      );
      inc(f, n, 1);
    });
    // out[d, ·] = acc (rounded to the element type)
    f.get(out).get(d).get(L).i32_mul().i32_const(E).i32_mul().i32_add().set(q);
    f.get(acc).set(p);
    f.get(acc).get(L).i32_const(3).i32_shl().i32_add().set(pe);
    whileLtU(f, p, pe, () => {
      f.get(q).get(p).f64_load(0);
      storeAs(f, dt);
      inc(f, p, 8);
      inc(f, q, E);
    });
    inc(f, d, 1);
  });
}

/**
 * `emarest_<dt>(g, L, lq, pw, l0, sums, blk)`: the scalar VJP sums of one n from block l0 on,
 * continuing the two f64 at `sums` (powers pw[j] 16 bytes apart).
 */
function emitRest(mb: ModuleBuilder, dt: DT, fdexp: Fn): Fn {
  const E = dt === 'f32' ? 4 : 8;
  const f = mb.fn(`emarest_${dt}`, [I32, I32, F64, I32, I32, I32, I32]);
  const [g, L, lq, pw, l0, sums, blk] = [0, 1, 2, 3, 4, 5, 6];
  const m = f.local(I32),
    p = f.local(I32),
    pe = f.local(I32),
    q = f.local(I32),
    l = f.local(I32);
  const base = f.local(F64),
    s0 = f.local(F64),
    s1 = f.local(F64),
    v = f.local(F64);
  f.get(sums).f64_load(0).set(s0);
  f.get(sums).f64_load(8).set(s1);
  loop(
    f,
    () => blockDone(f, l0, L, lq),
    () => {
      expOf(f, fdexp, l0, lq);
      f.set(base);
      blockLen(f, L, l0, m, blk);
      f.get(g).get(l0).i32_const(E).i32_mul().i32_add().tee(p);
      f.get(m).i32_const(E).i32_mul().i32_add().set(pe);
      f.get(pw).set(q);
      f.get(l0).set(l);
      whileLtU(f, p, pe, () => {
        // v = g[l]·(base·pw[j]); s0 += v; s1 += l·v
        f.get(p);
        loadF64(f, dt);
        f.get(base).get(q).f64_load(0).f64_mul().f64_mul().tee(v);
        f.get(s0).f64_add().set(s0); // s0 + v: IEEE addition commutes
        f.get(s1).get(l).f64_convert_i32_s().get(v).f64_mul().f64_add().set(s1);
        inc(f, p, E);
        inc(f, q, 16);
        inc(f, l, 1);
      });
      f.get(l0).get(blk).i32_add().set(l0);
    },
  );
  f.get(sums).get(s0).f64_store(0);
  f.get(sums).get(s1).f64_store(8);
  return f;
}

/**
 * `emagrad_<dt>(cfg, t, tid)`: states in groups of 4 (two f64x2 of sums: independent addition
 * chains, whose latency bounds this loop), then of 2, then 1; lane = state, each lane sums l in
 * order. A group runs while none of its states reached its cut-off; then each state finishes
 * alone (`emarest_<dt>`).
 */
function emitGrad(mb: ModuleBuilder, dt: DT, fdexp: Fn, rest: Fn): void {
  const E = dt === 'f32' ? 4 : 8;
  const f = mb.fn(`emagrad_${dt}`, [I32, I32, I32]);
  const cfg = 0;
  const C = EMA_CFG;
  const [D, N, L, tbl, out, d, d1, scr, pw, sums, gp, n, j, P, l0, m, p, q, pe, rec, blk] = Array.from({ length: 21 }, () => f.local(I32));
  const lq = Array.from({ length: 4 }, () => f.local(F64));
  const bv = [f.local(V128), f.local(V128)],
    s0 = [f.local(V128), f.local(V128)],
    s1 = [f.local(V128), f.local(V128)],
    v = f.local(V128),
    gv = f.local(V128),
    lv = f.local(V128);
  const PWB = EMA_MAX_BLOCK * 16; // bytes from one pair's power table to the next
  taskRows(f, [0, 1, 2], d, d1, scr);
  f.get(cfg).i32_load(C.D).set(D);
  f.get(cfg).i32_load(C.N).set(N);
  f.get(cfg).i32_load(C.L).set(L);
  f.get(cfg).i32_load(C.TBL).set(tbl);
  f.get(cfg).i32_load(C.OUT).set(out);
  f.get(scr).get(L).i32_const(8).i32_mul().i32_const(63).i32_add().i32_const(-64).i32_and().i32_add().tee(pw);
  f.i32_const(2 * PWB)
    .i32_add()
    .set(sums);
  f.get(cfg).i32_load(C.BLK).set(blk);
  minInto(
    f,
    P,
    () => f.get(blk),
    () => f.get(L),
  ); // the powers a block uses
  /** lq[k] = ln q of state n + k; its powers exp(j·ln q) at pw + (k >> 1)·PWB + (k & 1)·8, 16 bytes apart. */
  const state = (k: number) => {
    f.get(tbl)
      .get(d)
      .get(N)
      .i32_mul()
      .get(n)
      .i32_add()
      .i32_const(24)
      .i32_mul()
      .i32_add()
      .f64_load(8 + k * 24)
      .set(lq[k]);
    f.i32_const(0).set(j);
    whileLt(f, j, P, () => {
      f.get(pw).get(j).i32_const(4).i32_shl().i32_add();
      expOf(f, fdexp, j, lq[k]);
      f.f64_store((k >> 1) * PWB + (k & 1) * 8);
      inc(f, j, 1);
    });
  };
  /** Writes the outputs of state n + k from the sums. */
  const finish = (k: number) => {
    f.get(d).get(N).i32_mul().get(n).i32_add().i32_const(k).i32_add().set(rec); // d·N + n + k
    f.get(out).get(rec).i32_const(E).i32_mul().i32_add().get(sums).f64_load(0);
    storeAs(f, dt);
    // coef·s1 / q
    f.get(out).get(D).get(N).i32_mul().get(rec).i32_add().i32_const(E).i32_mul().i32_add();
    f.get(tbl).get(rec).i32_const(24).i32_mul().i32_add().tee(rec).f64_load(0).get(sums).f64_load(8).f64_mul().get(rec).f64_load(16).f64_div();
    storeAs(f, dt);
  };
  /** State n + k alone from block l0 (sums at `sums`), then its outputs. */
  const alone = (k: number, from: () => void) => {
    f.get(gp).get(L).get(lq[k]).get(pw);
    f.i32_const((k >> 1) * PWB + (k & 1) * 8).i32_add();
    from();
    f.get(sums).get(blk).call(rest);
    finish(k);
  };
  /** States n … n + 2V − 1 in V vectors. */
  const group = (V: number) => {
    for (let k = 0; k < 2 * V; k++) state(k);
    for (let i = 0; i < V; i++) f.f64x2_const(0).tee(s0[i]).set(s1[i]);
    f.i32_const(0).set(l0);
    loop(
      f,
      () => {
        blockDone(f, l0, L, lq[0]);
        for (let k = 1; k < 2 * V; k++) f.get(l0).f64_convert_i32_s().get(lq[k]).f64_mul().f64_const(EMA_CUTOFF).f64_lt().i32_or();
      },
      () => {
        for (let i = 0; i < V; i++) {
          expOf(f, fdexp, l0, lq[2 * i]);
          f.f64x2_splat();
          expOf(f, fdexp, l0, lq[2 * i + 1]);
          f.f64x2_replace_lane(1).set(bv[i]);
        }
        f.get(l0).f64_convert_i32_s().f64x2_splat().set(lv);
        blockLen(f, L, l0, m, blk);
        f.get(gp).get(l0).i32_const(E).i32_mul().i32_add().tee(p);
        f.get(m).i32_const(E).i32_mul().i32_add().set(pe);
        f.get(pw).set(q);
        whileLtU(f, p, pe, () => {
          // v = g[l]·(base·pw[j]); s0 += v; s1 += l·v
          f.get(p);
          loadF64(f, dt);
          f.f64x2_splat().set(gv);
          for (let i = 0; i < V; i++) {
            f.get(gv)
              .get(bv[i])
              .get(q)
              .v128_load(i * PWB)
              .f64x2_mul()
              .f64x2_mul()
              .tee(v);
            f.get(s0[i]).f64x2_add().set(s0[i]);
            f.get(s1[i]).get(lv).get(v).f64x2_mul().f64x2_add().set(s1[i]);
          }
          f.get(lv).f64x2_const(1).f64x2_add().set(lv);
          inc(f, p, E);
          inc(f, q, 16);
        });
        f.get(l0).get(blk).i32_add().set(l0);
      },
    );
    for (let k = 0; k < 2 * V; k++) {
      f.get(sums)
        .get(s0[k >> 1])
        .f64x2_extract_lane(k & 1)
        .f64_store(0);
      f.get(sums)
        .get(s1[k >> 1])
        .f64x2_extract_lane(k & 1)
        .f64_store(8);
      alone(k, () => f.get(l0));
    }
    inc(f, n, 2 * V);
  };
  whileLt(f, d, d1, () => {
    f.get(cfg).i32_load(C.G).get(d).get(L).i32_mul().i32_const(E).i32_mul().i32_add().set(gp);
    f.i32_const(0).set(n);
    loop(
      f,
      () => f.get(n).i32_const(3).i32_add().get(N).i32_ge_s(),
      () => group(2),
    );
    f.get(n).i32_const(1).i32_add().get(N).i32_lt_s().if_();
    group(1);
    f.end();
    f.get(n).get(N).i32_lt_s().if_();
    {
      state(0);
      f.get(sums).f64_const(0).f64_store(0);
      f.get(sums).f64_const(0).f64_store(8);
      alone(0, () => f.i32_const(0));
    }
    f.end();
    inc(f, d, 1);
  });
}

/** Emits `fdexp` and the EMA kernel functions for both dtypes. */
export function emitEma(mb: ModuleBuilder): void {
  const fdexp = emitFdexp(mb);
  for (const dt of ['f32', 'f64'] as const) {
    emitForward(mb, dt, fdexp);
    emitGrad(mb, dt, fdexp, emitRest(mb, dt, fdexp));
  }
}
