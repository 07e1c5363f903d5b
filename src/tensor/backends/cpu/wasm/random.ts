/**
 * The dropout mask in WebAssembly: the xoshiro128** draws of `Generator.fillUniforms`
 * (src/tensor/random.ts) and the keep test of `dropoutMask` in one scalar loop, with the
 * generator's state in locals. The stream is sequential (each draw needs the previous state),
 * so there is nothing to vectorise; the gain over the TypeScript loop is one pass instead of two
 * (uniforms, then the test), no float conversions and no branches.
 *
 * `dropout_<dt>(out, n, state, r0, lo, hi)`: `out` (byte address) gets n elements, the bits
 * `hi:lo` (f64) or `lo` (f32) of the scale where the draw `r` (u32) is ≥ `r0`, else 0. The
 * caller computes `r0` as the smallest draw that the TypeScript test `u ≥ p` keeps (`u` = r / 2³²,
 * rounded to f32 first for f32; the test is monotone in r, see `keepThreshold` in
 * ../random-simd.ts), so the values are bitwise those of the TypeScript loop. `state` (byte
 * address of the four u32 state words) is read and written back.
 */
import { F64, I32, type ModuleBuilder } from './builder.js';
import { whileLtU } from './vector.js';

/** Emits `dropout_f32` and `dropout_f64`; returns their names. */
export function emitRandom(mb: ModuleBuilder): string[] {
  for (const dt of ['f32', 'f64'] as const) {
    const f = mb.fn(`dropout_${dt}`, [I32, I32, I32, F64, I32, I32]);
    const [out, n, st, r0, lo, hi] = [0, 1, 2, 3, 4, 5];
    const E = dt === 'f32' ? 4 : 8;
    const [s0, s1, s2, s3, r, t, end, keep] = Array.from({ length: 8 }, () => f.local(I32));
    f.get(st).i32_load(0).set(s0);
    f.get(st).i32_load(4).set(s1);
    f.get(st).i32_load(8).set(s2);
    f.get(st).i32_load(12).set(s3);
    f.get(out).get(n).i32_const(E).i32_mul().i32_add().set(end);
    whileLtU(f, out, end, () => {
      // r = rotl(s1·5, 7)·9; t = s1 << 9
      f.get(s1).i32_const(5).i32_mul().i32_const(7).i32_rotl().i32_const(9).i32_mul().set(r);
      f.get(s1).i32_const(9).i32_shl().set(t);
      f.get(s2).get(s0).i32_xor().set(s2);
      f.get(s3).get(s1).i32_xor().set(s3);
      f.get(s1).get(s2).i32_xor().set(s1);
      f.get(s0).get(s3).i32_xor().set(s0);
      f.get(s2).get(t).i32_xor().set(s2);
      f.get(s3).i32_const(11).i32_rotl().set(s3);
      // keep = r ≥ r0 ? -1 : 0 (all bits), then the scale's bits masked by it
      f.i32_const(0).get(r).f64_convert_i32_u().get(r0).f64_ge().i32_sub().set(keep);
      f.get(out).get(lo).get(keep).i32_and().i32_store(0);
      if (dt === 'f64') f.get(out).get(hi).get(keep).i32_and().i32_store(4);
      f.get(out).i32_const(E).i32_add().set(out);
    });
    f.get(st).get(s0).i32_store(0);
    f.get(st).get(s1).i32_store(4);
    f.get(st).get(s2).i32_store(8);
    f.get(st).get(s3).i32_store(12);
  }
  return ['dropout_f32', 'dropout_f64'];
}
