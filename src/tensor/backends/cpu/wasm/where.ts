/**
 * WebAssembly SIMD kernel of `where` in its masked-fill form (`out = mask ? v : x` with one
 * value v), a map function over rows:
 *
 * `where_<dt>(s, e, desc)`: rows r ∈ [s, e) of an n0 × n1 grid of rows of n2 elements; the
 * descriptor at byte address `desc` holds i32 fields (bytes offsets):
 *   0 n1, 4 n2, 8 x, 12 xs0, 16 xs1, 20 m, 24 ms0, 28 ms1, 32 mInner, 36 out, 48 v (one element).
 * Row (i0, i1) reads x from `x + i0·xs0 + i1·xs1` (byte strides; unit-stride rows) and the mask
 * from `m + i0·ms0 + i1·ms1`: element-wide entries, all bits set (true) or clear, one per element
 * (`mInner` = 1) or one for the whole row (`mInner` = 0). Output rows are contiguous from `out`.
 * A select copies bits: the result equals the scalar `mask ? v : x` exactly.
 */
import { I32, V128, type ModuleBuilder } from './builder.js';
import { inc, Simd, whileLt, type DT } from './vector.js';

/** Byte offsets of the descriptor fields. */
export const WHERE_DESC = { n1: 0, n2: 4, x: 8, xs0: 12, xs1: 16, m: 20, ms0: 24, ms1: 28, mInner: 32, out: 36, v: 48, bytes: 64 } as const;

function emitWhere(mb: ModuleBuilder, dt: DT): string {
  const name = `where_${dt}`;
  const f = mb.fn(name, [I32, I32, I32]);
  const v = new Simd(f, dt);
  const E = v.E;
  const D = WHERE_DESC;
  const [s, e, desc] = [0, 1, 2];
  const r = f.local(I32),
    i0 = f.local(I32),
    i1 = f.local(I32),
    n1 = f.local(I32),
    n2 = f.local(I32),
    px = f.local(I32),
    pm = f.local(I32),
    po = f.local(I32),
    pv = f.local(I32),
    pe = f.local(I32),
    inner = f.local(I32);
  const vv = f.local(V128),
    vm = f.local(V128);
  const field = (off: number): void => {
    f.get(desc).i32_load(off);
  };
  field(D.n1);
  f.set(n1);
  field(D.n2);
  f.set(n2);
  field(D.mInner);
  f.set(inner);
  f.get(desc);
  v.splat(D.v);
  f.set(vv);
  f.get(s).set(r);
  whileLt(f, r, e, () => {
    f.get(r).get(n1).i32_div_s().set(i0);
    f.get(r).get(i0).get(n1).i32_mul().i32_sub().set(i1);
    field(D.x);
    f.get(i0);
    field(D.xs0);
    f.i32_mul().i32_add().get(i1);
    field(D.xs1);
    f.i32_mul().i32_add().set(px);
    field(D.m);
    f.get(i0);
    field(D.ms0);
    f.i32_mul().i32_add().get(i1);
    field(D.ms1);
    f.i32_mul().i32_add().set(pm);
    field(D.out);
    f.get(r).get(n2).i32_mul().i32_const(E).i32_mul().i32_add().set(po);
    f.get(po).get(n2).i32_const(E).i32_mul().i32_add().set(pe);
    v.vectorEnd(po, n2, pv);
    f.get(inner).if_();
    {
      // one mask entry per element
      whileLt(f, po, pv, () => {
        f.get(po).get(vv).get(px).v128_load(0).get(pm).v128_load(0).v128_bitselect().v128_store(0);
        inc(f, px, 16);
        inc(f, pm, 16);
        inc(f, po, 16);
      });
      whileLt(f, po, pe, () => {
        f.get(po).get(vv);
        f.get(px);
        v.splat();
        f.get(pm);
        v.splat();
        f.v128_bitselect();
        v.store0();
        inc(f, px, E);
        inc(f, pm, E);
        inc(f, po, E);
      });
    }
    f.else_();
    {
      // one mask entry for the row
      f.get(pm);
      v.splat();
      f.set(vm);
      whileLt(f, po, pv, () => {
        f.get(po).get(vv).get(px).v128_load(0).get(vm).v128_bitselect().v128_store(0);
        inc(f, px, 16);
        inc(f, po, 16);
      });
      whileLt(f, po, pe, () => {
        f.get(po).get(vv);
        f.get(px);
        v.splat();
        f.get(vm).v128_bitselect();
        v.store0();
        inc(f, px, E);
        inc(f, po, E);
      });
    }
    f.end();
    inc(f, r, 1);
  });
  return name;
}

/** Emits `where_f32` and `where_f64`; returns their names in dispatch-table order. */
export function emitWhereMaps(mb: ModuleBuilder): string[] {
  return [emitWhere(mb, 'f32'), emitWhere(mb, 'f64')];
}
