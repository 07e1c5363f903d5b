/**
 * WebAssembly SIMD FFT convolution (the EMA's long convolution), vectorised across rows.
 *
 * A "group" is R = 2·lanes real rows (8 in f32, 4 in f64): lane l of a complex buffer holds the
 * pair (row 2l as the real part, row 2l+1 as the imaginary part), so one radix-2 complex FFT of
 * size n transforms R real rows at once. Spectra of the two rows of a pair are separated with
 * the conjugate symmetry of real signals, multiplied by the kernels' spectra (prepared the same
 * way, with the 1/n of the inverse folded in), recombined, and one inverse complex FFT returns
 * both real outputs. All arithmetic is in the element type.
 *
 * Buffers: element i of a complex buffer is 32 bytes (re v128, im v128). Kernel spectra: for
 * k ∈ [0, n/2], 64 bytes (KA.re, KA.im, KB.re, KB.im).
 *
 * `fftconv_<dt>(cfg, t, tid)` runs task t: read (class c, groups [g0, g1)) from the task table,
 * transform the class's kernel rows once, then every group of the class. Scratch per thread.
 * Rows move in and out of the buffers in fft-io.ts.
 */
import { I32, V128, type Fn, type ModuleBuilder } from './builder.js';
import { emitLoad, emitStore } from './fft-io.js';
import { inc, loop, Simd, whileLt, whileLtU, type DT } from './vector.js';

/** Byte offsets of the i32 fields of the configuration block. */
export const FFT_CFG = {
  N: 0,
  TW: 4,
  TWI: 8,
  BREV: 12,
  SCR: 16,
  SCRB: 20,
  GROUPS: 24,
  CLASSES: 28,
  TASKS: 32,
  LX: 36,
  LK: 40,
  START: 44,
  LEN: 48,
  FULL: 52,
  XSTEP: 56,
} as const;
/** Size of the configuration block in bytes. */
export const FFT_CFG_BYTES = 64;

/** `fft_<dt>(buf, n, tw, brev)`: in-place radix-2 complex FFT (twiddles (cos, sin) pairs), two stages per pass. */
function emitFft(mb: ModuleBuilder, dt: DT): Fn {
  const f = mb.fn(`fft_${dt}`, [I32, I32, I32, I32]);
  const v = new Simd(f, dt);
  const E = v.E;
  const [buf, n, tw, brev] = [0, 1, 2, 3];
  const i = f.local(I32),
    j = f.local(I32),
    pa = f.local(I32),
    pb = f.local(I32),
    half = f.local(I32),
    blk = f.local(I32);
  const pw = f.local(I32),
    tws = f.local(I32),
    pe = f.local(I32);
  const ar = f.local(V128),
    ai = f.local(V128),
    br = f.local(V128),
    bi = f.local(V128),
    wr = f.local(V128),
    wi = f.local(V128);
  const tr = f.local(V128),
    ti = f.local(V128);
  const C = [f.local(V128), f.local(V128)],
    D = [f.local(V128), f.local(V128)];
  const pc = f.local(I32),
    pd = f.local(I32),
    pq = f.local(I32),
    pw2 = f.local(I32),
    tws2 = f.local(I32),
    hb = f.local(I32);
  // bit reversal
  f.i32_const(0).set(i);
  whileLt(f, i, n, () => {
    f.get(brev).get(i).i32_const(4).i32_mul().i32_add().i32_load(0).set(j);
    f.get(i).get(j).i32_lt_s();
    f.if_();
    {
      f.get(buf).get(i).i32_const(5).i32_shl().i32_add().set(pa);
      f.get(buf).get(j).i32_const(5).i32_shl().i32_add().set(pb);
      f.get(pa).v128_load(0).set(ar);
      f.get(pa).v128_load(16).set(ai);
      f.get(pa).get(pb).v128_load(0).v128_store(0);
      f.get(pa).get(pb).v128_load(16).v128_store(16);
      f.get(pb).get(ar).v128_store(0);
      f.get(pb).get(ai).v128_store(16);
    }
    f.end();
    inc(f, i, 1);
  });
  /** t = w·b; b = a − t; a = a + t (the radix-2 butterfly, complex v128 pairs in locals). */
  const butterfly = ([ar, ai]: number[], [br, bi]: number[], [wr, wi]: number[]) => {
    f.get(wr).get(br);
    v.mul();
    f.get(wi).get(bi);
    v.mul();
    v.sub();
    f.set(tr);
    f.get(wr).get(bi);
    v.mul();
    f.get(wi).get(br);
    v.mul();
    v.add();
    f.set(ti);
    f.get(ar).get(tr);
    v.sub();
    f.set(br);
    f.get(ai).get(ti);
    v.sub();
    f.set(bi);
    f.get(ar).get(tr);
    v.add();
    f.set(ar);
    f.get(ai).get(ti);
    v.add();
    f.set(ai);
  };
  const load = (p: number, [re, im]: number[]) => {
    f.get(p).v128_load(0).set(re);
    f.get(p).v128_load(16).set(im);
  };
  const store = (p: number, [re, im]: number[]) => {
    f.get(p).get(re).v128_store(0);
    f.get(p).get(im).v128_store(16);
  };
  const twiddle = (p: number, [re, im]: number[]) => {
    f.get(p);
    v.splat(0);
    f.set(re);
    f.get(p);
    v.splat(E);
    f.set(im);
  };
  const A = [ar, ai],
    B = [br, bi],
    W = [wr, wi];
  // log2 n odd: the first stage (half = 1, twiddle tw[0]) alone
  f.i32_const(1).set(half);
  f.get(n)
    .i32_const(0xaaaaaaaa | 0)
    .i32_and()
    .if_();
  {
    f.get(buf).set(pa);
    f.get(buf).get(n).i32_const(5).i32_shl().i32_add().set(pe);
    twiddle(tw, W);
    whileLtU(f, pa, pe, () => {
      load(pa, A);
      f.get(pa).i32_const(32).i32_add().set(pb);
      load(pb, B);
      butterfly(A, B, W);
      store(pa, A);
      store(pb, B);
      inc(f, pa, 64);
    });
    f.i32_const(2).set(half);
  }
  f.end();
  // then two stages per pass (half = h and 2h): for j < h in each block of 4h, elements
  // x0..x3 at j, j + h, j + 2h, j + 3h: stage h pairs (x0, x1) and (x2, x3) with tw[j·n/2h],
  // stage 2h pairs (x0, x2) with tw[j·n/4h] and (x1, x3) with tw[(j + h)·n/4h] — the radix-2
  // butterflies of the two stages, in the same order per element, with half the passes over buf
  whileLt(f, half, n, () => {
    // twiddle strides in bytes: (n / 2h)·2E and (n / 4h)·2E; tw[(j + h)·n/4h] is n·E/2 bytes on
    f.get(n).get(half).i32_div_s().i32_const(E).i32_mul().set(tws);
    f.get(tws).i32_const(1).i32_shr_s().set(tws2);
    f.get(half).i32_const(5).i32_shl().set(hb);
    f.i32_const(0).set(blk);
    whileLt(f, blk, n, () => {
      f.get(buf).get(blk).i32_const(5).i32_shl().i32_add().tee(pa).get(hb).i32_add().set(pe);
      f.get(tw).tee(pw).set(pw2);
      whileLtU(f, pa, pe, () => {
        f.get(pa).get(hb).i32_add().set(pb);
        twiddle(pw, W);
        load(pa, A);
        load(pb, B);
        butterfly(A, B, W);
        f.get(pb).get(hb).i32_add().set(pc);
        f.get(pc).get(hb).i32_add().set(pd);
        load(pc, C);
        load(pd, D);
        butterfly(C, D, W);
        twiddle(pw2, W);
        butterfly(A, C, W);
        store(pa, A);
        store(pc, C);
        f.get(pw2)
          .get(n)
          .i32_const(E / 2)
          .i32_mul()
          .i32_add()
          .set(pq);
        twiddle(pq, W);
        butterfly(B, D, W);
        store(pb, B);
        store(pd, D);
        inc(f, pa, 32);
        f.get(pw).get(tws).i32_add().set(pw);
        f.get(pw2).get(tws2).i32_add().set(pw2);
      });
      f.get(blk).get(half).i32_const(2).i32_shl().i32_add().set(blk);
    });
    f.get(half).i32_const(2).i32_shl().set(half);
  });
  return f;
}

/**
 * The loop over k ∈ [0, n/2] of the kernel-spectrum functions: pk, pm point at elements k and
 * (n − k) mod n of `buf` (loaded into the v128 locals kr, ki, mr, mi), ps at the 64-byte record k
 * of the spectra from `spec` on.
 */
function forConjugatePairs(
  f: Fn,
  buf: number,
  spec: number,
  n: number,
  [k, pk, pm, ps]: readonly [number, number, number, number],
  [kr, ki, mr, mi]: readonly [number, number, number, number],
  body: () => void,
): void {
  f.i32_const(0).set(k);
  f.get(spec).set(ps);
  loop(
    f,
    () => f.get(k).get(n).i32_const(1).i32_shr_s().i32_gt_s(),
    () => {
      f.get(buf).get(k).i32_const(5).i32_shl().i32_add().set(pk);
      f.get(buf).get(n).get(k).i32_sub().get(n).i32_const(1).i32_sub().i32_and().i32_const(5).i32_shl().i32_add().set(pm);
      f.get(pk).v128_load(0).set(kr);
      f.get(pk).v128_load(16).set(ki);
      f.get(pm).v128_load(0).set(mr);
      f.get(pm).v128_load(16).set(mi);
      body();
      inc(f, ps, 64);
      inc(f, k, 1);
    },
  );
}

/** `fftkprep_<dt>(kbuf, kspec, n)`: separated kernel spectra for k ∈ [0, n/2], scaled by 1/(4n). */
function emitKPrep(mb: ModuleBuilder, dt: DT): Fn {
  const f = mb.fn(`fftkprep_${dt}`, [I32, I32, I32]);
  const v = new Simd(f, dt);
  const [kbuf, kspec, n] = [0, 1, 2];
  const k = f.local(I32),
    pk = f.local(I32),
    pm = f.local(I32),
    ps = f.local(I32);
  const kr = f.local(V128),
    ki = f.local(V128),
    mr = f.local(V128),
    mi = f.local(V128),
    c = f.local(V128);
  // c = 1/(4n)
  if (dt === 'f32') f.f32_const(1).get(n).i32_const(4).i32_mul().f32_convert_i32_s().f32_div().f32x4_splat().set(c);
  else f.f64_const(1).get(n).i32_const(4).i32_mul().f64_convert_i32_s().f64_div().f64x2_splat().set(c);
  forConjugatePairs(f, kbuf, kspec, n, [k, pk, pm, ps], [kr, ki, mr, mi], () => {
    // KA = ((kr + mr) c, (ki − mi) c) ; KB = ((ki + mi) c, (mr − kr) c)
    const put = (off: number, a: number, b: number, plus: boolean) => {
      f.get(ps).get(a).get(b);
      if (plus) v.add();
      else v.sub();
      f.get(c);
      v.mul();
      f.v128_store(off);
    };
    put(0, kr, mr, true);
    put(16, ki, mi, false);
    put(32, ki, mi, true);
    put(48, mr, kr, false);
  });
  return f;
}

/** `fftmul_<dt>(buf, kspec, n)`: separate, multiply by the kernel spectra, recombine, in place. */
function emitMul(mb: ModuleBuilder, dt: DT): Fn {
  const f = mb.fn(`fftmul_${dt}`, [I32, I32, I32]);
  const v = new Simd(f, dt);
  const [buf, kspec, n] = [0, 1, 2];
  const k = f.local(I32),
    pk = f.local(I32),
    pm = f.local(I32),
    ps = f.local(I32);
  const zkr = f.local(V128),
    zki = f.local(V128),
    zmr = f.local(V128),
    zmi = f.local(V128);
  const xr = f.local(V128),
    xi = f.local(V128),
    yar = f.local(V128),
    yai = f.local(V128),
    ybr = f.local(V128),
    ybi = f.local(V128);
  forConjugatePairs(f, buf, kspec, n, [k, pk, pm, ps], [zkr, zki, zmr, zmi], () => {
    // XA' = (zkr + zmr, zki − zmi); YA = XA' · KA
    f.get(zkr).get(zmr);
    v.add();
    f.set(xr);
    f.get(zki).get(zmi);
    v.sub();
    f.set(xi);
    const cmul = (ore: number, oim: number, kOff: number) => {
      // (xr + i xi)(kr + i ki)
      f.get(xr).get(ps).v128_load(kOff);
      v.mul();
      f.get(xi)
        .get(ps)
        .v128_load(kOff + 16);
      v.mul();
      v.sub();
      f.set(ore);
      f.get(xr)
        .get(ps)
        .v128_load(kOff + 16);
      v.mul();
      f.get(xi).get(ps).v128_load(kOff);
      v.mul();
      v.add();
      f.set(oim);
    };
    cmul(yar, yai, 0);
    // XB' = (zki + zmi, zmr − zkr); YB = XB' · KB
    f.get(zki).get(zmi);
    v.add();
    f.set(xr);
    f.get(zmr).get(zkr);
    v.sub();
    f.set(xi);
    cmul(ybr, ybi, 32);
    // Q(m) = (YA.re + YB.im, YB.re − YA.im), then Q(k) = (YA.re − YB.im, YA.im + YB.re)
    f.get(pm).get(yar).get(ybi);
    v.add();
    f.v128_store(0);
    f.get(pm).get(ybr).get(yai);
    v.sub();
    f.v128_store(16);
    f.get(pk).get(yar).get(ybi);
    v.sub();
    f.v128_store(0);
    f.get(pk).get(yai).get(ybr);
    v.add();
    f.v128_store(16);
  });
  return f;
}

/** Rows per group: two per lane of a v128 (8 in f32, 4 in f64). */
export function groupRows(dt: DT): number {
  return 2 * (16 / (dt === 'f32' ? 4 : 8));
}

/**
 * The task walk of `fftconv_<dt>` and `dconv_<dt>` (dconv.ts): reads task `t`'s class and group
 * range from the task table, moves the class's R kernel rows into `kbuf` (zero up to the local
 * `kLen`), runs `kernel()`, then `group(gt)` for each group, `gt` (a local) the address of its
 * row-table entry (R input rows, then R output rows). Locals: `cfg`, `t`, `kbuf`, `kLen`.
 */
export function forClassGroups(
  f: Fn,
  dt: DT,
  load: Fn,
  L: { cfg: number; t: number; kbuf: number; kLen: number },
  kernel: () => void,
  group: (gt: number) => void,
): void {
  const R = groupRows(dt);
  const C = FFT_CFG;
  const te = f.local(I32),
    c = f.local(I32),
    g = f.local(I32),
    g1 = f.local(I32),
    gt = f.local(I32);
  f.get(L.cfg).i32_load(C.TASKS).get(L.t).i32_const(12).i32_mul().i32_add().set(te);
  f.get(te).i32_load(0).set(c);
  f.get(te).i32_load(4).set(g);
  f.get(te).i32_load(8).set(g1);
  f.get(L.kbuf)
    .get(L.kLen)
    .get(L.cfg)
    .i32_load(C.CLASSES)
    .get(c)
    .i32_const(R * 4)
    .i32_mul()
    .i32_add()
    .get(L.cfg)
    .i32_load(C.LK)
    .i32_const(dt === 'f32' ? 4 : 8)
    .call(load);
  kernel();
  whileLt(f, g, g1, () => {
    f.get(L.cfg)
      .i32_load(C.GROUPS)
      .get(g)
      .i32_const(2 * R * 4)
      .i32_mul()
      .i32_add()
      .set(gt);
    group(gt);
    inc(f, g, 1);
  });
}

/** Emits `fftconv_f32` / `fftconv_f64`; returns each dtype's row movers (fftload, fftstore) for the direct path (dconv.ts). */
export function emitFftConv(mb: ModuleBuilder): Record<DT, { load: Fn; store: Fn }> {
  const movers = {} as Record<DT, { load: Fn; store: Fn }>;
  for (const dt of ['f32', 'f64'] as const) {
    const fft = emitFft(mb, dt);
    const load = emitLoad(mb, dt);
    const kprep = emitKPrep(mb, dt);
    const mul = emitMul(mb, dt);
    const store = emitStore(mb, dt);
    movers[dt] = { load, store };
    const R = groupRows(dt);
    const f = mb.fn(`fftconv_${dt}`, [I32, I32, I32]);
    const [cfg, t, tid] = [0, 1, 2];
    const n = f.local(I32),
      buf = f.local(I32),
      kbuf = f.local(I32),
      kspec = f.local(I32);
    const C = FFT_CFG;
    f.get(cfg).i32_load(C.N).set(n);
    f.get(cfg).i32_load(C.SCR).get(tid).get(cfg).i32_load(C.SCRB).i32_mul().i32_add().set(buf);
    f.get(buf).get(n).i32_const(5).i32_shl().i32_add().set(kbuf);
    f.get(kbuf).get(n).i32_const(5).i32_shl().i32_add().set(kspec);
    forClassGroups(
      f,
      dt,
      load,
      { cfg, t, kbuf, kLen: n },
      () => {
        // kernel spectra of the class
        f.get(kbuf).get(n).get(cfg).i32_load(C.TW).get(cfg).i32_load(C.BREV).call(fft);
        f.get(kbuf).get(kspec).get(n).call(kprep);
      },
      (gt) => {
        f.get(buf).get(n).get(gt).get(cfg).i32_load(C.LX).get(cfg).i32_load(C.XSTEP).call(load);
        f.get(buf).get(n).get(cfg).i32_load(C.TW).get(cfg).i32_load(C.BREV).call(fft);
        f.get(buf).get(kspec).get(n).call(mul);
        f.get(buf).get(n).get(cfg).i32_load(C.TWI).get(cfg).i32_load(C.BREV).call(fft);
        f.get(buf)
          .get(gt)
          .i32_const(R * 4)
          .i32_add()
          .get(cfg)
          .i32_load(C.START)
          .get(cfg)
          .i32_load(C.LEN)
          .get(cfg)
          .i32_load(C.FULL)
          .call(store);
      },
    );
  }
  return movers;
}
