/**
 * WebAssembly SIMD pieces of the batch-normalisation backward (../simd-fused.ts
 * `batchNormGradSimd`), as map functions of a task range `[s, e)` of the flat `[N, D]` elements:
 * the elementwise steps of the generic composition fused into two passes, each step rounded to
 * the element type in the composition's order (so the result keeps its bits); the column sums
 * between them stay `csum_<dt>`.
 *
 * `st` is the byte address of a scratch block: the rows `mean`, `r`, `m1`, `m2` (D elements
 * each), then the `[N, D]` arrays `xh`, `t1`, `gh`, `t2` (see {@link bnBlock}).
 *
 * - `bngprep_<dt>(s, e, x, g, w, st, D, n)`: `xh = (x − mean)·r`, `t1 = g·xh`; with a weight `w`
 *   (address ≠ 0) also `gh = g·w`, `t2 = gh·xh`.
 * - `bngout_<dt>(s, e, src, st, D, out)`: `out = ((src − m1) − xh·m2)·r` (src: gh, or g
 *   without a weight).
 */
import { I32, V128, type Fn, type ModuleBuilder } from './builder.js';
import { inc, rowSegment, Simd, whileLt, type DT } from './vector.js';

/**
 * Byte offsets in the scratch block of `batchNormGradSimd`: four D rows, then four n arrays (the
 * maps below compute the same offsets from their `st`, `D`, `n` arguments).
 */
export function bnBlock(D: number, n: number, E: number): { rows: number[]; xh: number; t1: number; gh: number; t2: number; bytes: number } {
  const xh = 4 * D * E;
  return { rows: [0, 1, 2, 3].map((k) => k * D * E), xh, t1: xh + n * E, gh: xh + 2 * n * E, t2: xh + 3 * n * E, bytes: xh + 4 * n * E };
}

/**
 * The loop both maps share: for each row segment of [s, e) (row o, columns [j, j + len)), sets
 * `p[k]` to `base[k] + ((o·D + j)·E` for full arrays, `j·E` for rows) and runs `step(load, store)`
 * over the segment's vectors, then its tail elements one at a time.
 */
function segments(
  f: Fn,
  v: Simd,
  io: { s: number; e: number; D: number },
  ptrs: { base: () => void; row: boolean; p: number }[],
  step: (load: (p: number) => void, store: (p: number, val: () => void) => void) => void,
): void {
  const E = v.E;
  const i = f.local(I32),
    o = f.local(I32),
    j = f.local(I32),
    len = f.local(I32),
    k = f.local(I32),
    kv = f.local(I32);
  f.get(io.s).set(i);
  whileLt(f, i, io.e, () => {
    rowSegment(f, i, io.e, io.D, o, j, len);
    for (const q of ptrs) {
      q.base();
      if (!q.row) f.get(o).get(io.D).i32_mul().get(j).i32_add();
      else f.get(j);
      f.i32_const(E).i32_mul().i32_add().set(q.p);
    }
    // k counts the segment's elements: whole vectors, then the rest
    f.i32_const(0).set(k);
    f.get(len).i32_const(-v.lanes).i32_and().set(kv);
    const advance = (by: number) => {
      for (const q of ptrs) inc(f, q.p, by * E);
      inc(f, k, by);
    };
    whileLt(f, k, kv, () => {
      step(
        (p) => f.get(p).v128_load(0),
        (p, val) => {
          f.get(p);
          val();
          f.v128_store(0);
        },
      );
      advance(v.lanes);
    });
    whileLt(f, k, len, () => {
      step(
        (p) => {
          f.get(p);
          v.splat();
        },
        (p, val) => {
          f.get(p);
          val();
          v.store0();
        },
      );
      advance(1);
    });
    f.get(i).get(len).i32_add().set(i);
  });
}

/** `bngprep_<dt>(s, e, x, g, w, st, D, n)`. */
function emitPrep(mb: ModuleBuilder, dt: DT): string {
  const name = `bngprep_${dt}`;
  const f = mb.fn(name, [I32, I32, I32, I32, I32, I32, I32, I32]);
  const v = new Simd(f, dt);
  const E = v.E;
  const [s, e, x, g, w, st, D, n] = [0, 1, 2, 3, 4, 5, 6, 7];
  const P = () => f.local(I32);
  const [px, pg, pw, pmean, pr, pxh, pt1, pgh, pt2] = [P(), P(), P(), P(), P(), P(), P(), P(), P()];
  const xh = f.local(V128),
    gv = f.local(V128),
    gh = f.local(V128);
  /** st + 4·D·E + k·n·E: array k of the block */
  const arr = (k: number) => () =>
    f
      .get(st)
      .get(D)
      .i32_const(4 * E)
      .i32_mul()
      .i32_add()
      .get(n)
      .i32_const(k * E)
      .i32_mul()
      .i32_add();
  const common = [
    { base: () => f.get(x), row: false, p: px },
    { base: () => f.get(g), row: false, p: pg },
    { base: () => f.get(st), row: true, p: pmean },
    { base: () => f.get(st).get(D).i32_const(E).i32_mul().i32_add(), row: true, p: pr },
    { base: arr(0), row: false, p: pxh },
    { base: arr(1), row: false, p: pt1 },
  ];
  const body = (weighted: boolean) =>
    segments(
      f,
      v,
      { s, e, D },
      weighted ? [...common, { base: () => f.get(w), row: true, p: pw }, { base: arr(2), row: false, p: pgh }, { base: arr(3), row: false, p: pt2 }] : common,
      (load, store) => {
        // xh = (x − mean)·r; t1 = g·xh
        load(px);
        load(pmean);
        v.sub();
        load(pr);
        v.mul();
        f.set(xh);
        load(pg);
        f.set(gv);
        store(pxh, () => f.get(xh));
        store(pt1, () => {
          f.get(gv).get(xh);
          v.mul();
        });
        if (weighted) {
          // gh = g·w; t2 = gh·xh
          f.get(gv);
          load(pw);
          v.mul();
          f.set(gh);
          store(pgh, () => f.get(gh));
          store(pt2, () => {
            f.get(gh).get(xh);
            v.mul();
          });
        }
      },
    );
  f.get(w).if_();
  body(true);
  f.else_();
  body(false);
  f.end();
  return name;
}

/** `bngout_<dt>(s, e, src, st, D, out)`. */
function emitOut(mb: ModuleBuilder, dt: DT): string {
  const name = `bngout_${dt}`;
  const f = mb.fn(name, [I32, I32, I32, I32, I32, I32]);
  const v = new Simd(f, dt);
  const E = v.E;
  const [s, e, src, st, D, out] = [0, 1, 2, 3, 4, 5];
  const P = () => f.local(I32);
  const [ps, pxh, pr, pm1, pm2, po] = [P(), P(), P(), P(), P(), P()];
  const t = f.local(V128);
  const row = (k: number) => () =>
    f
      .get(st)
      .get(D)
      .i32_const(k * E)
      .i32_mul()
      .i32_add();
  segments(
    f,
    v,
    { s, e, D },
    [
      { base: () => f.get(src), row: false, p: ps },
      {
        base: () =>
          f
            .get(st)
            .get(D)
            .i32_const(4 * E)
            .i32_mul()
            .i32_add(),
        row: false,
        p: pxh,
      },
      { base: row(1), row: true, p: pr },
      { base: row(2), row: true, p: pm1 },
      { base: row(3), row: true, p: pm2 },
      { base: () => f.get(out), row: false, p: po },
    ],
    (load, store) => {
      // t = xh·m2; out = ((src − m1) − t)·r
      load(pxh);
      load(pm2);
      v.mul();
      f.set(t);
      store(po, () => {
        load(ps);
        load(pm1);
        v.sub();
        f.get(t);
        v.sub();
        load(pr);
        v.mul();
      });
    },
  );
  return name;
}

/** Emits the batch-norm backward maps; returns their names in dispatch-table order. */
export function emitBatchNormMaps(mb: ModuleBuilder): string[] {
  return (['f32', 'f64'] as const).flatMap((dt) => [emitPrep(mb, dt), emitOut(mb, dt)]);
}
