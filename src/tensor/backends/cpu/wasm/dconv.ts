/**
 * WebAssembly SIMD direct convolution: the short-length regime of the CPU `fftConv` kernel, on
 * the FFT path's row layout (fft.ts, fft-io.ts). A group's R rows sit in the lanes of a buffer
 * of 32-byte elements (re v128, im v128: rows 2l and 2l+1 in lane l), the class's R kernel rows
 * the same way, and every output is a lane-wise sum
 *
 *   y[t] = Σ_j k[j] · x[start + t − j],   j ∈ [0, Lk), x zero outside [0, Lx),
 *
 * j increasing, one multiply-add per term (`relaxed_madd` where relaxed SIMD is available, else
 * multiply then add), in the element type. TB = 3 outputs at a time (six accumulators): their j
 * range is the union of the three, so x is read up to {@link PAD} elements outside [0, Lx) —
 * zeros in the buffer, adding 0·k to sums that exclude those terms.
 *
 * `dconv_<dt>(cfg, t, tid)` runs task t of the FFT path's task table (class c, groups [g0, g1))
 * with the same configuration block (`FFT_CFG`; N unused); per-thread scratch:
 * {@link directScratchBytes}.
 */
import { I32, V128, type Fn, type ModuleBuilder } from './builder.js';
import { FFT_CFG, forClassGroups, groupRows } from './fft.js';
import { inc, maxInto, minInto, whileLt, whileLtU, type DT } from './vector.js';
import { relaxedSimd } from './features.js';

/**
 * Outputs computed together: 2·TB accumulators, and Turbofan loads a step's 2·TB x vectors and
 * 2 kernel vectors before the arithmetic — 14 of the 15 usable registers (TB 4 spilled).
 */
const TB = 3;
/** Zero buffer elements kept before and after x (a block of TB outputs reads ≤ TB − 1 beyond). */
const PAD = TB - 1;

/** Per-thread scratch bytes of the direct path: x with its pads, the kernel rows, the outputs. */
export function directScratchBytes(Lx: number, Lk: number, length: number): number {
  return (Lx + 2 * PAD + Lk + Math.ceil(length / TB) * TB) * 32;
}

/** `dconv_<dt>(cfg, t, tid)`, using the FFT path's row movers `load` (fftload) and `store` (fftstore). */
export function emitDirectConv(mb: ModuleBuilder, dt: DT, load: Fn, store: Fn): void {
  const R = groupRows(dt);
  const fma = relaxedSimd();
  const f = mb.fn(`dconv_${dt}`, [I32, I32, I32]);
  const [cfg, t, tid] = [0, 1, 2];
  const C = FFT_CFG;
  const Lx = f.local(I32),
    Lk = f.local(I32),
    start = f.local(I32),
    len = f.local(I32);
  const xb = f.local(I32),
    kb = f.local(I32),
    ob = f.local(I32);
  const t0 = f.local(I32),
    jlo = f.local(I32),
    jhi = f.local(I32),
    pk = f.local(I32),
    pke = f.local(I32),
    px = f.local(I32),
    po = f.local(I32);
  const kr = f.local(V128),
    ki = f.local(V128),
    xv = f.local(V128);
  const acc = Array.from({ length: 2 * TB }, () => f.local(V128));
  f.get(cfg).i32_load(C.LX).set(Lx);
  f.get(cfg).i32_load(C.LK).set(Lk);
  f.get(cfg).i32_load(C.START).set(start);
  f.get(cfg).i32_load(C.LEN).set(len);
  // scratch: [PAD zeros | x (Lx) | PAD zeros] [kernel rows (Lk)] [outputs (len rounded up to TB)]
  f.get(cfg).i32_load(C.SCR).get(tid).get(cfg).i32_load(C.SCRB).i32_mul().i32_add().set(xb);
  for (let i = 0; i < PAD; i++)
    f.get(xb)
      .f64x2_const(0)
      .v128_store(32 * i)
      .get(xb)
      .f64x2_const(0)
      .v128_store(32 * i + 16);
  inc(f, xb, PAD * 32);
  f.get(xb).get(Lx).i32_const(PAD).i32_add().i32_const(5).i32_shl().i32_add().set(kb);
  f.get(kb).get(Lk).i32_const(5).i32_shl().i32_add().set(ob);
  forClassGroups(
    f,
    dt,
    load,
    { cfg, t, kbuf: kb, kLen: Lk },
    () => {},
    (gt) => {
      // x rows, zero up to Lx + PAD
      f.get(xb).get(Lx).i32_const(PAD).i32_add().get(gt).get(Lx).get(cfg).i32_load(C.XSTEP).call(load);
      f.i32_const(0).set(t0);
      f.get(ob).set(po);
      whileLt(f, t0, len, () => {
        // j ∈ [jlo, jhi): the terms of outputs t0 … t0 + TB − 1 (jlo from the first, jhi from the last)
        maxInto(
          f,
          jlo,
          () => f.i32_const(0),
          () => f.get(start).get(t0).i32_add().get(Lx).i32_sub().i32_const(1).i32_add(),
        );
        minInto(
          f,
          jhi,
          () => f.get(Lk),
          () => f.get(start).get(t0).i32_add().i32_const(TB).i32_add(),
        );
        // an empty range (outputs outside the full convolution) as jlo = jhi within [0, Lk]
        minInto(
          f,
          jlo,
          () => f.get(jlo),
          () => f.get(Lk),
        );
        maxInto(
          f,
          jhi,
          () => f.get(jhi),
          () => f.get(jlo),
        );
        for (const a of acc) f.f64x2_const(0).set(a);
        f.get(kb).get(jlo).i32_const(5).i32_shl().i32_add().set(pk);
        f.get(kb).get(jhi).i32_const(5).i32_shl().i32_add().set(pke);
        // x[start + t0 − j] for output t0 (output t0 + i reads i elements further)
        f.get(xb).get(start).get(t0).i32_add().get(jlo).i32_sub().i32_const(5).i32_shl().i32_add().set(px);
        whileLtU(f, pk, pke, () => {
          f.get(pk).v128_load(0).set(kr);
          f.get(pk).v128_load(16).set(ki);
          for (let i = 0; i < 2 * TB; i++) {
            const part = i % 2;
            f.get(px)
              .v128_load(32 * (i >> 1) + 16 * part)
              .set(xv);
            const a = acc[i];
            if (fma) {
              f.get(part ? ki : kr)
                .get(xv)
                .get(a);
              if (dt === 'f32') f.f32x4_relaxed_madd();
              else f.f64x2_relaxed_madd();
            } else {
              f.get(a)
                .get(part ? ki : kr)
                .get(xv);
              if (dt === 'f32') f.f32x4_mul().f32x4_add();
              else f.f64x2_mul().f64x2_add();
            }
            f.set(a);
          }
          inc(f, pk, 32);
          inc(f, px, -32);
        });
        acc.forEach((a, i) =>
          f
            .get(po)
            .get(a)
            .v128_store(32 * (i >> 1) + 16 * (i % 2)),
        );
        inc(f, po, 32 * TB);
        inc(f, t0, TB);
      });
      f.get(ob)
        .get(gt)
        .i32_const(R * 4)
        .i32_add()
        .i32_const(0)
        .get(len)
        .get(len)
        .call(store);
    },
  );
}
