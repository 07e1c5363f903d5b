/**
 * The data movement of the WebAssembly FFT convolution (fft.ts): rows into the complex buffer of
 * a group (`fftload_<dt>`) and the buffer's outputs back into rows (`fftstore_<dt>`). Lane l of
 * buffer element i holds element i of two rows (re, im); contiguous rows move `lanes` elements at
 * a time through a v128 transpose (byte shuffles, so the bits are those of a scalar copy).
 */
import { I32, V128, type Fn, type ModuleBuilder } from './builder.js';
import { inc, Simd, whileLt, whileLtU, type DT } from './vector.js';

/**
 * Transposes `lanes` v128 locals in place (4 × 4 f32 or 2 × 2 f64, byte shuffles: the same bits):
 * afterwards lane l of local k holds what lane k of local l held. `tmp`: scratch locals.
 */
function transpose(f: Fn, lanes: number, v: number[], tmp: number[]): void {
  /** 16 shuffle lanes: w bytes from each start in turn. */
  const pick = (w: number, firsts: number[]) => firsts.flatMap((x) => Array.from({ length: w }, (_, k) => x + k));
  if (lanes === 4) {
    f.get(v[0])
      .get(v[1])
      .i8x16_shuffle(pick(4, [0, 16, 4, 20]))
      .set(tmp[0]);
    f.get(v[0])
      .get(v[1])
      .i8x16_shuffle(pick(4, [8, 24, 12, 28]))
      .set(tmp[1]);
    f.get(v[2])
      .get(v[3])
      .i8x16_shuffle(pick(4, [0, 16, 4, 20]))
      .set(tmp[2]);
    f.get(v[2])
      .get(v[3])
      .i8x16_shuffle(pick(4, [8, 24, 12, 28]))
      .set(tmp[3]);
    f.get(tmp[0])
      .get(tmp[2])
      .i8x16_shuffle(pick(8, [0, 16]))
      .set(v[0]);
    f.get(tmp[0])
      .get(tmp[2])
      .i8x16_shuffle(pick(8, [8, 24]))
      .set(v[1]);
    f.get(tmp[1])
      .get(tmp[3])
      .i8x16_shuffle(pick(8, [0, 16]))
      .set(v[2]);
    f.get(tmp[1])
      .get(tmp[3])
      .i8x16_shuffle(pick(8, [8, 24]))
      .set(v[3]);
  } else {
    f.get(v[0])
      .get(v[1])
      .i8x16_shuffle(pick(8, [0, 16]))
      .set(tmp[0]);
    f.get(v[0])
      .get(v[1])
      .i8x16_shuffle(pick(8, [8, 24]))
      .set(v[1]);
    f.get(tmp[0]).set(v[0]);
  }
}

/**
 * `fftload_<dt>(buf, n, tbl, L, step)`: lane l ← rows tbl[2l] (re) and tbl[2l+1] (im), elements
 * [0, L) `step` bytes apart (the element size for a contiguous row), zero up to n.
 */
export function emitLoad(mb: ModuleBuilder, dt: DT): Fn {
  const f = mb.fn(`fftload_${dt}`, [I32, I32, I32, I32, I32]);
  const v = new Simd(f, dt);
  const E = v.E,
    lanes = v.lanes;
  const [buf, n, tbl, L, step] = [0, 1, 2, 3, 4];
  const p = f.local(I32),
    pe = f.local(I32),
    src = f.local(I32),
    i0 = f.local(I32),
    off = f.local(I32);
  const rows = Array.from({ length: lanes }, () => f.local(V128)),
    tmp = Array.from({ length: lanes }, () => f.local(V128));
  // zero [L, n)
  f.get(buf).get(L).i32_const(5).i32_shl().i32_add().set(p);
  f.get(buf).get(n).i32_const(5).i32_shl().i32_add().set(pe);
  whileLtU(f, p, pe, () => {
    f.get(p).f64x2_const(0).v128_store(0);
    f.get(p).f64x2_const(0).v128_store(16);
    inc(f, p, 32);
  });
  // contiguous rows: `lanes` elements of each lane's row per v128 load, transposed into
  // `lanes` buffer elements (byte shuffles: the same bits); the rest element by element
  f.i32_const(0).set(i0);
  f.get(step).i32_const(E).i32_eq().if_();
  {
    f.get(L).i32_const(-lanes).i32_and().set(i0);
    f.i32_const(0).set(off); // byte offset of element i in a row
    f.get(buf).set(p);
    f.get(buf).get(i0).i32_const(5).i32_shl().i32_add().set(pe);
    whileLtU(f, p, pe, () => {
      for (const part of [0, 1]) {
        for (let l = 0; l < lanes; l++) {
          f.get(tbl)
            .i32_load((2 * l + part) * 4)
            .get(off)
            .i32_add()
            .v128_load(0)
            .set(rows[l]);
        }
        transpose(f, lanes, rows, tmp);
        rows.forEach((e, k) =>
          f
            .get(p)
            .get(e)
            .v128_store(32 * k + 16 * part),
        );
      }
      inc(f, p, 32 * lanes);
      inc(f, off, 16);
    });
  }
  f.end();
  for (let l = 0; l < lanes; l++) {
    for (const part of [0, 1]) {
      f.get(tbl)
        .i32_load((2 * l + part) * 4)
        .get(i0)
        .get(step)
        .i32_mul()
        .i32_add()
        .set(src);
      f.get(buf).get(i0).i32_const(5).i32_shl().i32_add().set(p);
      f.get(buf).get(L).i32_const(5).i32_shl().i32_add().set(pe);
      whileLtU(f, p, pe, () => {
        f.get(p).get(src);
        v.load(0);
        v.store(part * 16 + l * E);
        inc(f, p, 32);
        f.get(src).get(step).i32_add().set(src);
      });
    }
  }
  return f;
}

/**
 * `fftstore_<dt>(buf, tbl, start, len, full)`: row tbl[2l][t] ← re lane l of element start+t,
 * row tbl[2l+1][t] ← im lane l (0 outside [0, full)). The in-range part t ∈ [t0, t1) is copied
 * `lanes` elements at a time through a transpose (then one by one); the rest is zero-filled.
 */
export function emitStore(mb: ModuleBuilder, dt: DT): Fn {
  const f = mb.fn(`fftstore_${dt}`, [I32, I32, I32, I32, I32]);
  const v = new Simd(f, dt);
  const E = v.E,
    lanes = v.lanes;
  const [buf, tbl, start, len, full] = [0, 1, 2, 3, 4];
  const t0 = f.local(I32),
    t1 = f.local(I32),
    tv = f.local(I32),
    t = f.local(I32),
    dst = f.local(I32),
    end = f.local(I32),
    src = f.local(I32);
  const rows = Array.from({ length: lanes }, () => f.local(V128)),
    tmp = Array.from({ length: lanes }, () => f.local(V128));
  /** out ← clamp(value on the stack, lo, len), lo ≤ len */
  const clampTo = (out: number, lo: () => void) => {
    f.set(out);
    f.get(out);
    lo();
    f.get(out);
    lo();
    f.i32_gt_s().select().set(out);
    f.get(out).get(len).get(out).get(len).i32_lt_s().select().set(out);
  };
  f.i32_const(0).get(start).i32_sub();
  clampTo(t0, () => f.i32_const(0)); // t0 = clamp(−start, 0, len)
  f.get(full).get(start).i32_sub();
  clampTo(t1, () => f.get(t0)); // t1 = clamp(full − start, t0, len)
  // [t0, tv): `lanes` buffer elements at a time, transposed into one v128 per row
  f.get(t1).get(t0).i32_sub().i32_const(-lanes).i32_and().get(t0).i32_add().set(tv);
  f.get(t0).set(t);
  f.get(buf).get(start).get(t0).i32_add().i32_const(5).i32_shl().i32_add().set(src);
  whileLt(f, t, tv, () => {
    for (const part of [0, 1]) {
      rows.forEach((r, k) =>
        f
          .get(src)
          .v128_load(32 * k + 16 * part)
          .set(r),
      );
      transpose(f, lanes, rows, tmp);
      rows.forEach((r, l) => {
        f.get(tbl)
          .i32_load((2 * l + part) * 4)
          .get(t)
          .i32_const(E)
          .i32_mul()
          .i32_add()
          .get(r)
          .v128_store(0);
      });
    }
    inc(f, t, lanes);
    inc(f, src, 32 * lanes);
  });
  for (let l = 0; l < lanes; l++) {
    for (const part of [0, 1]) {
      f.get(tbl)
        .i32_load((2 * l + part) * 4)
        .set(dst);
      // zeros before t0
      f.get(dst).get(t0).i32_const(E).i32_mul().i32_add().set(end);
      whileLtU(f, dst, end, () => {
        f.get(dst);
        v.zero();
        v.store(0);
        inc(f, dst, E);
      });
      // buf elements start + tv … start + t1 − 1 (the rest of the in-range span)
      f.get(dst).get(tv).get(t0).i32_sub().i32_const(E).i32_mul().i32_add().set(dst);
      f.get(buf).get(start).get(tv).i32_add().i32_const(5).i32_shl().i32_add().set(src);
      f.get(dst).get(t1).get(tv).i32_sub().i32_const(E).i32_mul().i32_add().set(end);
      whileLtU(f, dst, end, () => {
        f.get(dst).get(src);
        v.load(part * 16 + l * E);
        v.store(0);
        inc(f, dst, E);
        inc(f, src, 32);
      });
      // zeros from t1
      f.get(dst).get(len).get(t1).i32_sub().i32_const(E).i32_mul().i32_add().set(end);
      whileLtU(f, dst, end, () => {
        f.get(dst);
        v.zero();
        v.store(0);
        inc(f, dst, E);
      });
    }
  }
  return f;
}

/** Emits the FFT convolution functions for both dtypes. */
