/**
 * WebAssembly SIMD EMA kernel build and its VJP (see `emaKernel` in tensor/backend.ts), float64
 * throughout. Map functions (rows d ∈ [s, e) per task):
 *
 * - `ema_fwd(s, e, coef, lq, out, Lp, N)`: out[d, l] = Σ_n coef[d,n]·exp(l·lq[d,n]) for l < Lp
 *   (Lp a multiple of 32; row stride Lp).
 * - `ema_bwd(s, e, coef, lq, g, out, Lp, N)`: out[(d·N + n)·2 + {0, 1}] = (Σ_l g[d,l]·q^l,
 *   Σ_l l·g[d,l]·q^l) (g zero-padded to Lp).
 *
 * Powers: q^l = exp(l0·ln q)·exp(j·ln q), l = l0 + j, j < 32 — the 32 factors exp(j·ln q) live in
 * 16 v128 locals, so the inner loop is one multiply-add per 2 values. Blocks whose first power is
 * below e^−645 (≈ 1e−280, relative to coef) are skipped: their terms are negligible, and computing
 * them would produce subnormal numbers, which are ~100× slower on x86.
 */
import { F64, I32, V128, type Fn, type ModuleBuilder } from './builder.js';
import { emitExpF64 } from './elementwise.js';

const BLOCK = 32;
/** Blocks starting below exp(CUTOFF) are skipped (see the loops). */
export const EMA_CUTOFF = -645;
const CUTOFF = EMA_CUTOFF;

function prologue(f: Fn, lqLocal: number, pw: number[], L: ReturnType<typeof emitExpF64.locals>): void {
  // pw[j] = exp([2j, 2j+1]·lq)
  for (let j = 0; j < BLOCK / 2; j++) {
    const b = Buffer.alloc(16);
    b.writeDoubleLE(2 * j, 0);
    b.writeDoubleLE(2 * j + 1, 8);
    f.v128_const(b).get(lqLocal).f64x2_splat().f64x2_mul();
    emitExpF64(f, L);
    f.set(pw[j]);
  }
}

/** Emits ema_fwd and ema_bwd; returns their names. */
export function emitEma(mb: ModuleBuilder): string[] {
  // ---- forward
  {
    const f = mb.fn('ema_fwd', [I32, I32, I32, I32, I32, I32, I32]);
    const [s, e, coef, lqp, out, Lp, N] = [0, 1, 2, 3, 4, 5, 6];
    const d = f.local(I32), n = f.local(I32), row = f.local(I32), p = f.local(I32), pe = f.local(I32), l0 = f.local(I32);
    const c = f.local(F64), lq = f.local(F64);
    const bv = f.local(V128);
    const pw = Array.from({ length: BLOCK / 2 }, () => f.local(V128));
    const L = emitExpF64.locals(f);
    f.get(s).set(d);
    f.block().loop();
    {
      f.get(d).get(e).i32_ge_s().br_if(1);
      f.get(out).get(d).get(Lp).i32_mul().i32_const(8).i32_mul().i32_add().set(row);
      f.get(row).get(Lp).i32_const(8).i32_mul().i32_add().set(pe);
      // zero the row
      f.get(row).set(p);
      f.block().loop();
      f.get(p).get(pe).i32_ge_u().br_if(1);
      f.get(p).f64x2_const(0).v128_store(0);
      f.get(p).i32_const(16).i32_add().set(p);
      f.br(0);
      f.end().end();
      f.i32_const(0).set(n);
      f.block().loop();
      {
        f.get(n).get(N).i32_ge_s().br_if(1);
        f.get(coef).get(d).get(N).i32_mul().get(n).i32_add().i32_const(8).i32_mul().i32_add().f64_load(0).set(c);
        f.get(lqp).get(d).get(N).i32_mul().get(n).i32_add().i32_const(8).i32_mul().i32_add().f64_load(0).set(lq);
        prologue(f, lq, pw, L);
        f.get(row).set(p);
        f.i32_const(0).set(l0);
        f.block().loop();
        {
          f.get(p).get(pe).i32_ge_u().br_if(1);
          // blocks whose largest power is below e^−645 (≈1e−280) and every later one are
          // negligible: stop (keeps every product a normal number — subnormals are slow)
          f.get(l0).f64_convert_i32_s().get(lq).f64_mul().f64_const(CUTOFF).f64_lt().br_if(1);
          // bv = c · exp(l0 · lq)
          f.get(l0).f64_convert_i32_s().get(lq).f64_mul().f64x2_splat();
          emitExpF64(f, L);
          f.get(c).f64x2_splat().f64x2_mul().set(bv);
          for (let j = 0; j < BLOCK / 2; j++) f.get(p).get(p).v128_load(16 * j).get(bv).get(pw[j]).f64x2_mul().f64x2_add().v128_store(16 * j);
          f.get(p).i32_const(8 * BLOCK).i32_add().set(p);
          f.get(l0).i32_const(BLOCK).i32_add().set(l0);
          f.br(0);
        }
        f.end().end();
        f.get(n).i32_const(1).i32_add().set(n);
        f.br(0);
      }
      f.end().end();
      f.get(d).i32_const(1).i32_add().set(d);
      f.br(0);
    }
    f.end().end();
  }
  // ---- backward
  {
    const f = mb.fn('ema_bwd', [I32, I32, I32, I32, I32, I32, I32, I32]);
    const [s, e, , lqp, g, out, Lp, N] = [0, 1, 2, 3, 4, 5, 6, 7];
    const d = f.local(I32), n = f.local(I32), p = f.local(I32), pe = f.local(I32), l0 = f.local(I32), o = f.local(I32);
    const lq = f.local(F64);
    const bv = f.local(V128), v = f.local(V128), s0 = f.local(V128), s1 = f.local(V128), lv = f.local(V128);
    const pw = Array.from({ length: BLOCK / 2 }, () => f.local(V128));
    const L = emitExpF64.locals(f);
    f.get(s).set(d);
    f.block().loop();
    {
      f.get(d).get(e).i32_ge_s().br_if(1);
      f.i32_const(0).set(n);
      f.block().loop();
      {
        f.get(n).get(N).i32_ge_s().br_if(1);
        f.get(lqp).get(d).get(N).i32_mul().get(n).i32_add().i32_const(8).i32_mul().i32_add().f64_load(0).set(lq);
        prologue(f, lq, pw, L);
        f.get(g).get(d).get(Lp).i32_mul().i32_const(8).i32_mul().i32_add().set(p);
        f.get(p).get(Lp).i32_const(8).i32_mul().i32_add().set(pe);
        f.f64x2_const(0).set(s0);
        f.f64x2_const(0).set(s1);
        f.i32_const(0).set(l0);
        f.block().loop();
        {
          f.get(p).get(pe).i32_ge_u().br_if(1);
          f.get(l0).f64_convert_i32_s().get(lq).f64_mul().f64_const(CUTOFF).f64_lt().br_if(1);
          f.get(l0).f64_convert_i32_s().get(lq).f64_mul().f64x2_splat();
          emitExpF64(f, L);
          f.set(bv);
          f.get(l0).f64_convert_i32_s().f64x2_splat().set(lv);
          for (let j = 0; j < BLOCK / 2; j++) {
            f.get(p).v128_load(16 * j).get(bv).get(pw[j]).f64x2_mul().f64x2_mul().set(v);
            f.get(s0).get(v).f64x2_add().set(s0);
            const b = Buffer.alloc(16);
            b.writeDoubleLE(2 * j, 0);
            b.writeDoubleLE(2 * j + 1, 8);
            f.get(s1).get(lv).v128_const(b).f64x2_add().get(v).f64x2_mul().f64x2_add().set(s1);
          }
          f.get(p).i32_const(8 * BLOCK).i32_add().set(p);
          f.get(l0).i32_const(BLOCK).i32_add().set(l0);
          f.br(0);
        }
        f.end().end();
        f.get(out).get(d).get(N).i32_mul().get(n).i32_add().i32_const(16).i32_mul().i32_add().set(o);
        f.get(o).get(s0).f64x2_extract_lane(0).get(s0).f64x2_extract_lane(1).f64_add().f64_store(0);
        f.get(o).get(s1).f64x2_extract_lane(0).get(s1).f64x2_extract_lane(1).f64_add().f64_store(8);
        f.get(n).i32_const(1).i32_add().set(n);
        f.br(0);
      }
      f.end().end();
      f.get(d).i32_const(1).i32_add().set(d);
      f.br(0);
    }
    f.end().end();
  }
  return ['ema_fwd', 'ema_bwd'];
}
