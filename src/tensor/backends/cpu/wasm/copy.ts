/**
 * WebAssembly strided copies (map functions, see runtime.ts `mapTask`): a view of a tensor in the
 * wasm memory → rows of a destination in the wasm memory, for `copy` (materialising transposes,
 * permutes, flips), the staging of operands of the other kernels, `concat` and `pad`.
 *
 * The copy is described by a descriptor of i32 slots at byte address `d` (written by simd.ts
 * `wasmCopy`; strides in bytes, any sign):
 * `[0] src, [1] dst, [2] n, [3] sj, [4] m, [5] si, [6] di, [7] k, then k × (size, src stride, dst
 * stride)`: element `(o, i, j)` — o a combination of the k outer axes, i < m, j < n — is read at
 * `src + Σ o·ss + i·si + j·sj` and written at `dst + Σ o·ds + i·di + j·E` (destination rows are
 * unit-stride). Work items are the `blocks · m` rows (o, i), row-major.
 *
 * - `copy_rows_<dt>(s, e, d)`: row by row; unit-stride rows (`sj = E`) and reversed rows (`sj =
 *   −E`, a flip) move whole vectors, other strides single elements.
 * - `copy_tr_<dt>(s, e, d)`: a transpose (`si = E`: the source is unit-stride along i, strided
 *   along j): square tiles of lanes × lanes elements (f32 4 × 4, f64 2 × 2) — one vector load per
 *   source row of a tile, a shuffle transpose, one vector store per destination row.
 *
 * A copy moves bits: no arithmetic, so every path gives exactly the source's values.
 */
import { I32, V128, type Fn, type ModuleBuilder } from './builder.js';
import { inc, Simd, whileLt, whileLtU, type DT } from './vector.js';

/** Descriptor slots before the outer axes. */
export const COPY_HEAD = 8;
/** Bytes of a descriptor (at most COPY_MAX_OUTER outer axes). */
export const COPY_DESC_BYTES = 256;
/** Most outer axes a descriptor holds. */
export const COPY_MAX_OUTER = 4;

/** Byte lanes of a v128 whose element lanes are `lanes` (of `E` bytes) in the given order. */
function byteLanes(order: number[], E: number): number[] {
  return order.flatMap((l) => Array.from({ length: E }, (_, b) => l * E + b));
}

interface Segment {
  /** Row pointers: source and destination of row (o, i). */
  ps: number;
  pd: number;
  /** Row index i and the end i1 of the run of rows of one block being copied. */
  i: number;
  i1: number;
}

/** The outer-axis walk and the row loop shared by both functions. */
function emitWalk(f: Fn, perSegment: (g: Segment, n: number, sj: number, si: number, di: number) => void): void {
  const [s, e, d] = [0, 1, 2];
  const n = f.local(I32),
    sj = f.local(I32),
    m = f.local(I32),
    si = f.local(I32),
    di = f.local(I32);
  const r = f.local(I32),
    q = f.local(I32),
    a = f.local(I32),
    base = f.local(I32),
    sz = f.local(I32),
    idx = f.local(I32),
    nq = f.local(I32),
    zero = f.local(I32);
  const g: Segment = { ps: f.local(I32), pd: f.local(I32), i: f.local(I32), i1: f.local(I32) };
  f.get(d).i32_load(8).set(n);
  f.get(d).i32_load(12).set(sj);
  f.get(d).i32_load(16).set(m);
  f.get(d).i32_load(20).set(si);
  f.get(d).i32_load(24).set(di);
  f.get(s).set(r);
  whileLt(f, r, e, () => {
    // q = block, i = row in the block
    f.get(r).get(m).i32_div_s().set(q);
    f.get(r).get(q).get(m).i32_mul().i32_sub().set(g.i);
    f.get(d).i32_load(0).get(g.i).get(si).i32_mul().i32_add().set(g.ps);
    f.get(d).i32_load(4).get(g.i).get(di).i32_mul().i32_add().set(g.pd);
    // outer axes, innermost (a = k − 1) first: idx = q mod size, q = q / size
    f.get(d).i32_load(28).set(a);
    whileLt(f, zero, a, () => {
      inc(f, a, -1);
      f.get(d)
        .get(a)
        .i32_const(12)
        .i32_mul()
        .i32_add()
        .i32_const(COPY_HEAD * 4)
        .i32_add()
        .set(base);
      f.get(base).i32_load(0).set(sz);
      f.get(q).get(sz).i32_div_s().set(nq);
      f.get(q).get(nq).get(sz).i32_mul().i32_sub().set(idx);
      f.get(nq).set(q);
      f.get(g.ps).get(idx).get(base).i32_load(4).i32_mul().i32_add().set(g.ps);
      f.get(g.pd).get(idx).get(base).i32_load(8).i32_mul().i32_add().set(g.pd);
    });
    // the run of rows of this block within [r, e)
    f.get(g.i).get(e).get(r).i32_sub().i32_add().tee(g.i1);
    f.get(m).get(g.i1).get(m).i32_lt_s().select().set(g.i1);
    f.get(r).get(g.i1).i32_add().get(g.i).i32_sub().set(r);
    perSegment(g, n, sj, si, di);
  });
}

/** Scratch locals of {@link emitRow}: vector end and row end (byte addresses), a v128. */
interface RowLocals {
  ov: number;
  oe: number;
  t: number;
}

/** Declares the scratch locals of {@link emitRow}. */
function rowLocals(f: Fn): RowLocals {
  return { ov: f.local(I32), oe: f.local(I32), t: f.local(V128) };
}

/**
 * Copies one row: n elements from `p` (stride `sj` bytes) to `o` (unit stride); `p`, `o` are
 * clobbered. Unit and reversed strides move vectors.
 */
function emitRow(f: Fn, v: Simd, n: number, sj: number, p: number, o: number, L: RowLocals): void {
  const E = v.E,
    lanes = v.lanes;
  const scalarTail = (step: number | null) =>
    whileLtU(f, o, L.oe, () => {
      f.get(o).get(p);
      v.load();
      v.store();
      inc(f, o, E);
      if (step === null) f.get(p).get(sj).i32_add().set(p);
      else inc(f, p, step);
    });
  f.get(o).get(n).i32_const(E).i32_mul().i32_add().set(L.oe);
  v.vectorEnd(o, n, L.ov);
  f.get(sj).i32_const(E).i32_eq().if_();
  whileLtU(f, o, L.ov, () => {
    f.get(o).get(p).v128_load(0).v128_store(0);
    inc(f, p, 16);
    inc(f, o, 16);
  });
  scalarTail(E);
  f.else_();
  f.get(sj).i32_const(-E).i32_eq().if_();
  // reversed: the vector ending at p holds elements j + lanes − 1 … j
  inc(f, p, -(lanes - 1) * E);
  const rev = byteLanes(
    Array.from({ length: lanes }, (_, l) => lanes - 1 - l),
    E,
  );
  whileLtU(f, o, L.ov, () => {
    f.get(o).get(p).v128_load(0).tee(L.t).get(L.t).i8x16_shuffle(rev).v128_store(0);
    inc(f, p, -16);
    inc(f, o, 16);
  });
  inc(f, p, (lanes - 1) * E);
  scalarTail(-E);
  f.else_();
  scalarTail(null);
  f.end();
  f.end();
}

/** `copy_rows_<dt>(s, e, d)`. */
function emitCopyRows(mb: ModuleBuilder, dt: DT): string {
  const name = `copy_rows_${dt}`;
  const f = mb.fn(name, [I32, I32, I32]);
  const v = new Simd(f, dt);
  const p = f.local(I32),
    o = f.local(I32);
  const L = rowLocals(f);
  emitWalk(f, (g, n, sj, si, di) => {
    whileLt(f, g.i, g.i1, () => {
      f.get(g.ps).set(p);
      f.get(g.pd).set(o);
      emitRow(f, v, n, sj, p, o, L);
      f.get(g.ps).get(si).i32_add().set(g.ps);
      f.get(g.pd).get(di).i32_add().set(g.pd);
      inc(f, g.i, 1);
    });
  });
  return name;
}

/** `copy_tr_<dt>(s, e, d)` (requires si = E). */
function emitCopyTranspose(mb: ModuleBuilder, dt: DT): string {
  const name = `copy_tr_${dt}`;
  const f = mb.fn(name, [I32, I32, I32]);
  const v = new Simd(f, dt);
  const E = v.E,
    lanes = v.lanes;
  const p = f.local(I32),
    o = f.local(I32),
    j = f.local(I32),
    jv = f.local(I32),
    x = f.local(I32),
    pp = f.local(I32),
    oo = f.local(I32),
    last = f.local(I32);
  const L = rowLocals(f);
  const rows = Array.from({ length: lanes }, () => f.local(V128));
  const tmp = Array.from({ length: lanes }, () => f.local(V128));
  emitWalk(f, (g, n, sj, si, di) => {
    f.get(n).i32_const(-lanes).i32_and().set(jv);
    // tiles of `lanes` rows while they fit in the run
    f.get(g.i1)
      .i32_const(lanes - 1)
      .i32_sub()
      .set(last);
    whileLt(f, g.i, last, () => {
      f.get(g.ps).set(p);
      f.get(g.pd).set(o);
      f.i32_const(0).set(j);
      whileLt(f, j, jv, () => {
        // rows[k] = source elements (i … i + lanes − 1, j + k)
        for (let k = 0; k < lanes; k++) {
          f.get(p);
          if (k > 0) f.get(sj).i32_const(k).i32_mul().i32_add();
          f.v128_load(0).set(rows[k]);
        }
        if (lanes === 4) {
          f.get(rows[0])
            .get(rows[1])
            .i8x16_shuffle(byteLanes([0, 4, 1, 5], 4))
            .set(tmp[0]);
          f.get(rows[0])
            .get(rows[1])
            .i8x16_shuffle(byteLanes([2, 6, 3, 7], 4))
            .set(tmp[1]);
          f.get(rows[2])
            .get(rows[3])
            .i8x16_shuffle(byteLanes([0, 4, 1, 5], 4))
            .set(tmp[2]);
          f.get(rows[2])
            .get(rows[3])
            .i8x16_shuffle(byteLanes([2, 6, 3, 7], 4))
            .set(tmp[3]);
          const pairs: [number, number, number[]][] = [
            [0, 2, [0, 2]],
            [0, 2, [1, 3]],
            [1, 3, [0, 2]],
            [1, 3, [1, 3]],
          ];
          pairs.forEach(([a, b, order], r) => {
            f.get(o);
            if (r > 0) f.get(di).i32_const(r).i32_mul().i32_add();
            f.get(tmp[a]).get(tmp[b]).i8x16_shuffle(byteLanes(order, 8)).v128_store(0);
          });
        } else {
          f.get(o)
            .get(rows[0])
            .get(rows[1])
            .i8x16_shuffle(byteLanes([0, 2], 8))
            .v128_store(0);
          f.get(o)
            .get(di)
            .i32_add()
            .get(rows[0])
            .get(rows[1])
            .i8x16_shuffle(byteLanes([1, 3], 8))
            .v128_store(0);
        }
        f.get(p).get(sj).i32_const(lanes).i32_mul().i32_add().set(p);
        inc(f, o, 16);
        inc(f, j, lanes);
      });
      // the last n mod lanes columns, element by element for each row of the tile
      for (let k = 0; k < lanes; k++) {
        f.get(p)
          .i32_const(k * E)
          .i32_add()
          .set(pp);
        f.get(o).get(di).i32_const(k).i32_mul().i32_add().set(oo);
        f.get(j).set(x);
        whileLt(f, x, n, () => {
          f.get(oo).get(pp);
          v.load();
          v.store();
          f.get(pp).get(sj).i32_add().set(pp);
          inc(f, oo, E);
          inc(f, x, 1);
        });
      }
      f.get(g.ps)
        .i32_const(lanes * E)
        .i32_add()
        .set(g.ps);
      f.get(g.pd).get(di).i32_const(lanes).i32_mul().i32_add().set(g.pd);
      inc(f, g.i, lanes);
    });
    // remaining rows of the run
    whileLt(f, g.i, g.i1, () => {
      f.get(g.ps).set(p);
      f.get(g.pd).set(o);
      emitRow(f, v, n, sj, p, o, L);
      f.get(g.ps).get(si).i32_add().set(g.ps);
      f.get(g.pd).get(di).i32_add().set(g.pd);
      inc(f, g.i, 1);
    });
  });
  return name;
}

/** Emits the copy map functions; returns their names. */
export function emitCopy(mb: ModuleBuilder): string[] {
  const names: string[] = [];
  for (const dt of ['f32', 'f64'] as const) names.push(emitCopyRows(mb, dt), emitCopyTranspose(mb, dt));
  return names;
}
