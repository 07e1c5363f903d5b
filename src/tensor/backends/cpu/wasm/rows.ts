/**
 * WebAssembly kernels of row gathers and row scatter-adds — `indexSelect` / `indexAdd` along the
 * first axis of a matrix: an embedding's lookup and its gradient. Map functions over rows:
 *
 * - `rows_gather(s, e, desc)`: output rows r ∈ [s, e) of `dst` get the `rb` bytes of row idx[r]
 *   of `src` (a copy: any dtype).
 * - `rows_add_<dt>(s, e, desc)`: destination rows [s, e) of `dst`, zeroed, then for i = 0 … m−1 in
 *   order, when idx[i] ∈ [s, e), row i of `src` is added to row idx[i] — per element the order of
 *   the scalar loop `dst[idx[i]][j] += src[i][j]`, so the sums are bitwise its sums whatever the
 *   split.
 *
 * The descriptor at byte address `desc` holds i32 fields ({@link ROWS_DESC}, byte offsets): the
 * address of the m i32 indices, m, `src`, `dst`, and the bytes per row. Indices are checked by the
 * caller.
 */
import { I32, type ModuleBuilder } from './builder.js';
import { inc, Simd, whileLt, whileLtU, type DT } from './vector.js';

/** Byte offsets of the descriptor's fields. */
export const ROWS_DESC = { idx: 0, m: 4, src: 8, dst: 12, rb: 16, bytes: 32 } as const;

function emitGather(mb: ModuleBuilder): string {
  const f = mb.fn('rows_gather', [I32, I32, I32]);
  const [s, e, desc] = [0, 1, 2];
  const [r, idx, src, dst, rb] = Array.from({ length: 5 }, () => f.local(I32));
  f.get(desc).i32_load(ROWS_DESC.idx).set(idx);
  f.get(desc).i32_load(ROWS_DESC.src).set(src);
  f.get(desc).i32_load(ROWS_DESC.dst).set(dst);
  f.get(desc).i32_load(ROWS_DESC.rb).set(rb);
  f.get(s).set(r);
  whileLt(f, r, e, () => {
    f.get(dst).get(r).get(rb).i32_mul().i32_add(); // destination row r
    f.get(src).get(idx).get(r).i32_const(2).i32_shl().i32_add().i32_load(0).get(rb).i32_mul().i32_add(); // source row idx[r]
    f.get(rb).memory_copy();
    inc(f, r, 1);
  });
  return 'rows_gather';
}

function emitAdd(mb: ModuleBuilder, dt: DT): string {
  const name = `rows_add_${dt}`;
  const f = mb.fn(name, [I32, I32, I32]);
  const v = new Simd(f, dt);
  const [s, e, desc] = [0, 1, 2];
  const [i, m, row, idx, src, dst, rb, pd, ps, pv, pe] = Array.from({ length: 11 }, () => f.local(I32));
  f.get(desc).i32_load(ROWS_DESC.idx).set(idx);
  f.get(desc).i32_load(ROWS_DESC.m).set(m);
  f.get(desc).i32_load(ROWS_DESC.src).set(src);
  f.get(desc).i32_load(ROWS_DESC.dst).set(dst);
  f.get(desc).i32_load(ROWS_DESC.rb).set(rb);
  // zero rows [s, e)
  f.get(dst).get(s).get(rb).i32_mul().i32_add().i32_const(0).get(e).get(s).i32_sub().get(rb).i32_mul().memory_fill();
  f.i32_const(0).set(i);
  whileLt(f, i, m, () => {
    f.get(idx).get(i).i32_const(2).i32_shl().i32_add().i32_load(0).set(row);
    f.get(row).get(s).i32_ge_s().get(row).get(e).i32_lt_s().i32_and().if_();
    {
      f.get(dst).get(row).get(rb).i32_mul().i32_add().set(pd);
      f.get(src).get(i).get(rb).i32_mul().i32_add().set(ps);
      f.get(pd).get(rb).i32_add().set(pe);
      f.get(pd).get(rb).i32_const(-16).i32_and().i32_add().set(pv);
      whileLtU(f, pd, pv, () => {
        f.get(pd).get(pd).v128_load(0).get(ps).v128_load(0);
        v.add();
        f.v128_store(0);
        inc(f, pd, 16);
        inc(f, ps, 16);
      });
      whileLtU(f, pd, pe, () => {
        f.get(pd).get(pd);
        v.load();
        f.get(ps);
        v.load();
        if (dt === 'f32') f.f32_add();
        else f.f64_add();
        v.store();
        inc(f, pd, v.E);
        inc(f, ps, v.E);
      });
    }
    f.end();
    inc(f, i, 1);
  });
  return name;
}

/** Emits the row kernels; returns their names (map functions). */
export function emitRows(mb: ModuleBuilder): string[] {
  return [emitGather(mb), emitAdd(mb, 'f32'), emitAdd(mb, 'f64')];
}
