/**
 * WebAssembly SIMD kernels of the relative-position bias's Toeplitz matrix (the plain-TS kernels
 * in ../toeplitz.ts are the reference; same additions in the same order, so the same bits), as
 * map functions:
 *
 * - `toeplitz_<dt>(s, e, w, out, n, M)`: rows i ∈ [s, e) of the `[n, n]` matrix at `out`: row i
 *   is the slice `w[M − 1 − i, M − 1 − i + n)` of the `[2M − 1]` vector at `w`.
 * - `tgrad_<dt>(s, e, g, out, n, M)`: entries d ∈ [s, e) of the `[2M − 1]` vector at `out`
 *   (zeros on entry): `out[d] += g[i, d − (M − 1) + i]` for the rows i in increasing order, each
 *   row's part in [s, e) as one run of vector adds — so a task owns its entries, and each entry
 *   sums its terms in increasing i, in the element type, as the scalar loop does.
 */
import { I32, type ModuleBuilder } from './builder.js';
import { inc, maxInto, minInto, Simd, whileLt, type DT } from './vector.js';

/** Adds (or copies) `len` elements from byte address `src` to `dst`: vectors, then single elements. */
function run(v: Simd, dst: number, src: number, len: number, end: number, vend: number, add: boolean): void {
  const f = v.f;
  f.get(dst).get(len).i32_const(v.E).i32_mul().i32_add().set(end);
  v.vectorEnd(dst, len, vend);
  whileLt(f, dst, vend, () => {
    f.get(dst);
    if (add) f.get(dst).v128_load(0);
    f.get(src).v128_load(0);
    if (add) v.add();
    f.v128_store(0);
    inc(f, dst, 16);
    inc(f, src, 16);
  });
  whileLt(f, dst, end, () => {
    f.get(dst);
    if (add) {
      f.get(dst);
      v.load();
    }
    f.get(src);
    v.load();
    if (add) {
      if (v.dt === 'f32') f.f32_add();
      else f.f64_add();
    }
    v.store();
    inc(f, dst, v.E);
    inc(f, src, v.E);
  });
}

function emitToeplitz(mb: ModuleBuilder, dt: DT): string {
  const name = `toeplitz_${dt}`;
  const f = mb.fn(name, [I32, I32, I32, I32, I32, I32]);
  const v = new Simd(f, dt);
  const [s, e, w, out, n, M] = [0, 1, 2, 3, 4, 5];
  const i = f.local(I32),
    pd = f.local(I32),
    ps = f.local(I32),
    end = f.local(I32),
    vend = f.local(I32);
  f.get(s).set(i);
  whileLt(f, i, e, () => {
    // out + i·n·E ← w + (M − 1 − i)·E, n elements
    f.get(out).get(i).get(n).i32_mul().i32_const(v.E).i32_mul().i32_add().set(pd);
    f.get(w).get(M).i32_const(1).i32_sub().get(i).i32_sub().i32_const(v.E).i32_mul().i32_add().set(ps);
    run(v, pd, ps, n, end, vend, false);
    inc(f, i, 1);
  });
  return name;
}

function emitToeplitzGrad(mb: ModuleBuilder, dt: DT): string {
  const name = `tgrad_${dt}`;
  const f = mb.fn(name, [I32, I32, I32, I32, I32, I32]);
  const v = new Simd(f, dt);
  const [s, e, g, out, n, M] = [0, 1, 2, 3, 4, 5];
  const i = f.local(I32),
    base = f.local(I32),
    top = f.local(I32),
    lo = f.local(I32),
    hi = f.local(I32),
    len = f.local(I32),
    pd = f.local(I32),
    ps = f.local(I32),
    end = f.local(I32),
    vend = f.local(I32);
  f.i32_const(0).set(i);
  whileLt(f, i, n, () => {
    // row i covers out[base, base + n), base = M − 1 − i; this task's part: [lo, hi)
    f.get(M).i32_const(1).i32_sub().get(i).i32_sub().set(base);
    f.get(base).get(n).i32_add().set(top);
    maxInto(
      f,
      lo,
      () => f.get(s),
      () => f.get(base),
    );
    minInto(
      f,
      hi,
      () => f.get(e),
      () => f.get(top),
    );
    f.get(hi).get(lo).i32_sub().set(len);
    f.get(len).i32_const(0).i32_gt_s().if_();
    {
      f.get(out).get(lo).i32_const(v.E).i32_mul().i32_add().set(pd);
      // g[i, lo − base]
      f.get(g).get(i).get(n).i32_mul().get(lo).i32_add().get(base).i32_sub().i32_const(v.E).i32_mul().i32_add().set(ps);
      run(v, pd, ps, len, end, vend, true);
    }
    f.end();
    inc(f, i, 1);
  });
  return name;
}

/** Emits the Toeplitz map functions; returns their names. */
export function emitToeplitzMaps(mb: ModuleBuilder): string[] {
  return (['f32', 'f64'] as const).flatMap((dt) => [emitToeplitz(mb, dt), emitToeplitzGrad(mb, dt)]);
}
