/**
 * WebAssembly SIMD gemm kernels (emitted with {@link ModuleBuilder}).
 *
 * GotoBLAS structure: B is read in column panels of NR columns, A in row panels of MR rows, both
 * k-major; the macro-kernel walks K in blocks of KC, a block of A panels that stays in L2, every
 * B panel (L1) over it, and for each (A panel, B panel) pair runs the register-tiled
 * micro-kernel: MR × NR accumulators in v128 registers (`NR / lanes` vectors per row), per k one
 * vector load per B column group and one `load32_splat` (f64: `load64_splat`) per A row, then
 * multiply and add — two instructions (plain SIMD128), or one `relaxed_madd` where relaxed SIMD
 * is available (see features.ts). The kernel reads A through one pointer per tile row and B with
 * a k step, so either operand may be packed (`pack_<dt>_<W>`, gemm-pack.ts: zero-padded k-major panels) or read
 * where it lies when its layout already has the panel's elements side by side (A row-major or
 * with short columns; B with contiguous columns): the driver (gemm-run.ts) decides per operand.
 *
 * Numerics: every output element is `(((c₀ + a₀b₀) + a₁b₁) + …)` in the element type, k
 * increasing, c₀ = 0 — K blocking reloads the running sum from C, so blocking does not change the
 * order. With mul + add each step rounds twice (the product, then the sum); with `relaxed_madd`
 * on a CPU with FMA (V8 emits `vfmadd231ps` there) it rounds once — a different last bit, the
 * same error bound `(K+2)·u·Σ|a·b|`. Each tile is computed the same way whatever thread runs it: results are deterministic
 * and independent of the thread count.
 *
 * C is read and written only at its own M × N elements (any row pitch ≥ N), so the kernel can
 * write a resident output in place.
 */
import { I32, V128, type ModuleBuilder } from './builder.js';
import { relaxedSimd } from './features.js';
import { maxInto, minInto, type DT } from './vector.js';

/** Tile and blocking parameters of one dtype. */
export interface GemmShape {
  /** rows of the register tile */
  MR: number;
  /** columns of the register tile (a multiple of the lane count) */
  NR: number;
  /** K block (elements) */
  KC: number;
  /** A panels per L2 block */
  PB: number;
  /** multiply-add with relaxed SIMD's `relaxed_madd` (needs relaxed SIMD) instead of mul + add */
  fma?: boolean;
}

/**
 * Tile shapes with plain SIMD128 (mul then add), chosen by measurement on Zen 4 / V8 11
 * (docs/PERF.md): 4×8 f32 (8 accumulators) and 4×4 f64. Turbofan loads every B vector and A
 * splat of a k step before the arithmetic, so a tile needs MR·NV accumulators + NV + MR
 * registers of the 15 it can use (plus a temporary for mul + add): larger tiles (6×8, 5×8, 4×12,
 * 8×8) spill and ran 2× slower; unrolling k made no difference.
 */
export const PLAIN_GEMM_SHAPES: Record<'f32' | 'f64', GemmShape> = {
  f32: { MR: 4, NR: 8, KC: 256, PB: 32 },
  f64: { MR: 4, NR: 4, KC: 256, PB: 32 },
};

/**
 * Tile shapes with relaxed SIMD's fused multiply-add (no temporary register): 3×12 f32 (9
 * accumulators, 9 FMAs per 6 loads, the 15 registers exactly) measured fastest; f64 keeps 4×4.
 */
export const FMA_GEMM_SHAPES: Record<'f32' | 'f64', GemmShape> = {
  f32: { MR: 3, NR: 12, KC: 256, PB: 32, fma: true },
  f64: { MR: 4, NR: 4, KC: 256, PB: 32, fma: true },
};

/**
 * The shapes in use: with fused multiply-add where relaxed SIMD is available (see features.ts;
 * decided when this module loads, because the worker source names the packing widths).
 */
export const GEMM_SHAPES: Record<'f32' | 'f64', GemmShape> = relaxedSimd() ? FMA_GEMM_SHAPES : PLAIN_GEMM_SHAPES;

/**
 * Triangular structure of a product (the `tri` argument of `gemm_<dt>`), with rows i and columns
 * j of C and the k of the sum counted in the whole matrix (square chunks of causal attention):
 * - `OUT_LOWER`: C = tril(A·B) — tiles wholly above the diagonal are not computed, and every
 *   C(i, j) with j > i is written 0;
 * - `A_LOWER`: A(i, k) = 0 for k > i (the caller's promise): a tile sums k ≤ its last row;
 * - `A_UPPER`: A(i, k) = 0 for k < i: a tile sums k ≥ its first row;
 * - `B_LOWER`: B(k, j) = 0 for k < j: a tile sums k ≥ its first column.
 * The terms skipped are zeros the full sum would add, so C is the full product's (up to the sign
 * of a zero); the k order of every sum is unchanged.
 */
export const TRI = { NONE: 0, OUT_LOWER: 1, A_LOWER: 2, A_UPPER: 3, B_LOWER: 4 } as const;
export type Tri = (typeof TRI)[keyof typeof TRI];

function es(dt: DT): number {
  return dt === 'f32' ? 4 : 8;
}

/**
 * `gemm_<dt>(pa, aps, ars, aks, pb, bps, bks, c, ldc, K, p0, p1, q0, q1, M, N, nb, sa, sb, sc, tri, i0, bias)`:
 * for each of `nb` matrices z (A at pa + z·sa, B at pb + z·sb, C at c + z·sc), the C tiles (p, q)
 * for p ∈ [p0, p1), q ∈ [q0, q1) of the M × N product. All addresses and strides in bytes:
 * A(p·MR + r, k) at pa + p·aps + r·ars + k·aks (packed: aps = K·MR·es, ars = es, aks = MR·es; in
 * place: aps = MR·ars); the NR columns of B panel q at k at pb + q·bps + k·bks, side by side
 * (packed: bps = K·NR·es, bks = NR·es; in place: bps = NR·es, bks = B's row pitch); C(i, j) at
 * c + i·ldc + j·es (ldc ≥ N·es). Only C's M × N elements are read or written: tiles on the last
 * row / column panel store just their rows and columns (rows past M repeat A's last row, lanes
 * past N read B's padding or the next elements, and both are dropped), and a last column panel of
 * `nc` < NR columns runs a kernel of ⌈nc / lanes⌉ vectors per row. Reads of an in-place B reach
 * up to one vector past its last element.
 *
 * A last column panel of one vector runs tiles of two A panels (2·MR rows) where the registers
 * allow it ({@link tallEdge}): a tile of MR rows × 1 vector has only MR independent accumulator
 * chains, too few to hide the multiply-add latency (N = 64 ran 6–9 % below N = 60 per flop).
 * The tiles change, not the arithmetic: every C element is the same k-ordered sequence.
 *
 * `tri` ({@link TRI}) narrows each tile's k range to the terms its structure leaves nonzero, or
 * skips it; `i0` is the row of the matrix that C's first row is (a block of rows: see gemm-run.ts).
 * `bias` (0: none; only without a triangle): the address of N values added to every row of C in
 * the last K block, before the store.
 */
export function emitGemmMacro(mb: ModuleBuilder, dt: DT, s: GemmShape): void {
  const E = es(dt);
  const lanes = 16 / E;
  const NV = s.NR / lanes;
  const tall = tallEdge(s);
  const RMAX = tall ? 2 * s.MR : s.MR;
  const params = [...'pa aps ars aks pb bps bks c ldc K p0 p1 q0 q1 M N nb sa sb sc tri i0 bias'.split(' ').keys()];
  const f = mb.fn(
    `gemm_${dt}`,
    params.map(() => I32),
  );
  const [pa, aps, ars, aks, pb, bps, bks, c, ldc, K, p0, p1, q0, q1, M, N, nb, sa, sb, sc, tri, i0, bias] = params;
  const kc = f.local(I32),
    kl = f.local(I32),
    blk = f.local(I32),
    pe = f.local(I32);
  const q = f.local(I32),
    p = f.local(I32),
    bq = f.local(I32),
    bp = f.local(I32);
  const arow = Array.from({ length: RMAX }, () => f.local(I32));
  const cp = f.local(I32),
    k = f.local(I32),
    first = f.local(I32),
    nc = f.local(I32),
    mr = f.local(I32),
    full = f.local(I32),
    z = f.local(I32);
  // the tile's rows from rowF, its k range [lo, hi), whether it runs, whether this is the last K block
  const rowF = f.local(I32),
    lo = f.local(I32),
    hi = f.local(I32),
    run = f.local(I32),
    last = f.local(I32),
    zr = f.local(I32),
    zj = f.local(I32),
    zt = f.local(I32);
  const acc: number[][] = [];
  for (let r = 0; r < RMAX; r++) acc.push(Array.from({ length: NV }, () => f.local(V128)));
  const bv = Array.from({ length: NV }, () => f.local(V128));
  const av = f.local(V128);
  const vmul = () => (dt === 'f32' ? f.f32x4_mul() : f.f64x2_mul());
  const vadd = () => (dt === 'f32' ? f.f32x4_add() : f.f64x2_add());
  /** pushes the byte address of C row r of the tile */
  const rowAddr = (r: number) => {
    f.get(cp);
    if (r > 0) f.get(ldc).i32_const(r).i32_mul().i32_add();
  };

  /**
   * The tile's k range [lo, hi) in the current K block (narrowed by `tri`) and whether it runs:
   * a tile with no terms still runs in the first K block (it writes its zeros), never with
   * OUT_LOWER when it lies wholly above the diagonal (`zeroAbove` writes those). Needs mr, q.
   */
  const tileRange = (): void => {
    f.get(i0).get(p).i32_const(s.MR).i32_mul().i32_add().set(rowF);
    f.get(kc).set(lo);
    f.get(kc).get(kl).i32_add().set(hi);
    f.get(tri).i32_const(TRI.A_LOWER).i32_eq().if_();
    minInto(
      f,
      hi,
      () => f.get(hi),
      () => f.get(rowF).get(mr).i32_add(),
    );
    f.end();
    f.get(tri).i32_const(TRI.A_UPPER).i32_eq().if_();
    maxInto(
      f,
      lo,
      () => f.get(lo),
      () => f.get(rowF),
    );
    f.end();
    f.get(tri).i32_const(TRI.B_LOWER).i32_eq().if_();
    maxInto(
      f,
      lo,
      () => f.get(lo),
      () => f.get(q).i32_const(s.NR).i32_mul(),
    );
    f.end();
    // run = (hi > lo || first) && !(OUT_LOWER && first column ≥ rowF + mr)
    f.get(hi).get(lo).i32_gt_s().get(first).i32_or();
    f.get(tri).i32_const(TRI.OUT_LOWER).i32_eq();
    f.get(q).i32_const(s.NR).i32_mul().get(rowF).get(mr).i32_add().i32_ge_s();
    f.i32_and().i32_eqz().i32_and().set(run);
    maxInto(
      f,
      hi,
      () => f.get(hi),
      () => f.get(lo),
    );
  };

  /**
   * Writes 0 to elements [zj, zEnd) of the row at byte address `row()` (locals; zj advances):
   * single elements up to a multiple of the lane count, whole vectors, then the rest.
   */
  const zeroSpan = (row: () => void, zEnd: number): void => {
    const zeroLoop = (vector: boolean, until: () => void): void => {
      f.block().loop();
      {
        f.get(zj);
        until();
        f.i32_ge_s().br_if(1);
        row();
        f.get(zj).i32_const(E).i32_mul().i32_add();
        if (vector) f.f64_const(0).f64x2_splat().v128_store(0);
        else if (dt === 'f32') f.f32_const(0).f32_store(0);
        else f.f64_const(0).f64_store(0);
        f.get(zj)
          .i32_const(vector ? lanes : 1)
          .i32_add()
          .set(zj);
        f.br(0);
      }
      f.end().end();
    };
    minInto(
      f,
      zt,
      () => f.get(zEnd),
      () =>
        f
          .get(zj)
          .i32_const(lanes - 1)
          .i32_add()
          .i32_const(-lanes)
          .i32_and(),
    );
    zeroLoop(false, () => f.get(zt));
    zeroLoop(true, () =>
      f
        .get(zEnd)
        .i32_const(lanes - 1)
        .i32_sub(),
    );
    zeroLoop(false, () => f.get(zEnd));
  };

  /**
   * OUT_LOWER, last K block, a tile that ran: C(i, j) = 0 for its j > i (rowF, mr, nc, cp of the
   * tile). Tiles wholly above the diagonal are cleared row by row by `zeroAbove`.
   */
  const zeroUpper = (): void => {
    // the tile's last column (q·NR + nc − 1) lies right of its first row
    f.get(tri).i32_const(TRI.OUT_LOWER).i32_eq().get(last).i32_and();
    f.get(q).i32_const(s.NR).i32_mul().get(nc).i32_add().i32_const(1).i32_sub().get(rowF).i32_gt_s().i32_and();
    f.if_();
    f.i32_const(0).set(zr);
    f.block().loop();
    {
      f.get(zr).get(mr).i32_ge_s().br_if(1);
      // first column of row zr to clear: max(0, rowF + zr + 1 − q·NR)
      maxInto(
        f,
        zj,
        () => f.i32_const(0),
        () => f.get(rowF).get(zr).i32_add().i32_const(1).i32_add().get(q).i32_const(s.NR).i32_mul().i32_sub(),
      );
      zeroSpan(() => f.get(cp).get(zr).get(ldc).i32_mul().i32_add(), nc);
      f.get(zr).i32_const(1).i32_add().set(zr);
      f.br(0);
    }
    f.end().end();
    f.end();
  };

  /**
   * OUT_LOWER, last K block, after the column panels [q0, q1) of the row panels [blk, pe): writes 0
   * to the columns of those column panels that lie wholly right of each row panel's last row
   * (the tiles that did not run), one span per row.
   */
  const zeroAbove = (): void => {
    f.get(tri).i32_const(TRI.OUT_LOWER).i32_eq().get(last).i32_and().if_();
    f.get(blk).set(p);
    f.block().loop();
    {
      f.get(p).get(pe).i32_ge_s().br_if(1);
      // rows of the panel: mr = min(MR, M − p·MR), from rowF = i0 + p·MR
      minInto(
        f,
        mr,
        () => f.i32_const(s.MR),
        () => f.get(M).get(p).i32_const(s.MR).i32_mul().i32_sub(),
      );
      f.get(i0).get(p).i32_const(s.MR).i32_mul().i32_add().set(rowF);
      // columns [max(q0, ⌈(rowF + mr) / NR⌉)·NR, min(q1·NR, N)) as zt… (nc holds the end)
      maxInto(
        f,
        zr,
        () => f.get(q0),
        () =>
          f
            .get(rowF)
            .get(mr)
            .i32_add()
            .i32_const(s.NR - 1)
            .i32_add()
            .i32_const(s.NR)
            .i32_div_s(),
      );
      minInto(
        f,
        nc,
        () => f.get(N),
        () => f.get(q1).i32_const(s.NR).i32_mul(),
      );
      f.get(zr).i32_const(s.NR).i32_mul().set(bq); // first column (bq is free here)
      f.i32_const(0).set(zr);
      f.block().loop();
      {
        f.get(zr).get(mr).i32_ge_s().br_if(1);
        f.get(bq).set(zj);
        zeroSpan(() => f.get(c).get(p).i32_const(s.MR).i32_mul().get(zr).i32_add().get(ldc).i32_mul().i32_add(), nc);
        f.get(zr).i32_const(1).i32_add().set(zr);
        f.br(0);
      }
      f.end().end();
      f.get(p).i32_const(1).i32_add().set(p);
      f.br(0);
    }
    f.end().end();
    f.end();
  };

  /**
   * The loop over the A panels of the block for one B panel, with `nv` vectors per tile row and
   * `R` rows per tile (MR: one panel; 2·MR: two, while two are left). `fromBlk`: start at the
   * block's first panel (else continue from the last loop's p).
   */
  const panelLoop = (nv: number, aStep: number | null, R: number, fromBlk: boolean): void => {
    const panels = R / s.MR; // A panels per tile
    // for (p = blk; p + panels ≤ pe; p += panels)
    if (fromBlk) f.get(blk).set(p);
    f.block().loop();
    {
      f.get(p)
        .i32_const(panels - 1)
        .i32_add()
        .get(pe)
        .i32_ge_s()
        .br_if(1);
      // cp = c + p*MR*ldc + q*NR*E
      f.get(c)
        .get(p)
        .i32_const(s.MR)
        .i32_mul()
        .get(ldc)
        .i32_mul()
        .i32_add()
        .get(q)
        .i32_const(s.NR * E)
        .i32_mul()
        .i32_add()
        .set(cp);
      // mr = min(R, M - p*MR): rows of this tile; full = every row and lane of the nv vectors is in C
      minInto(
        f,
        mr,
        () => f.i32_const(R),
        () => f.get(M).get(p).i32_const(s.MR).i32_mul().i32_sub(),
      );
      f.get(mr)
        .i32_const(R)
        .i32_eq()
        .get(nc)
        .i32_const(nv * lanes)
        .i32_eq()
        .i32_and()
        .set(full);
      tileRange();
      f.get(run).if_();
      // B at k = lo
      f.get(bq).get(lo).get(kc).i32_sub().get(bks).i32_mul().i32_add().set(bp);
      // row pointers: row r of panel p at k = lo: pa + p·aps + r·ars + kc·aks; rows past the last
      // repeat it (a tile of two panels: the first is never the last panel, so it is whole)
      for (let r = 0; r < R; r++) {
        const r0 = r - (r >= s.MR ? s.MR : 0); // row within its panel
        f.get(pa).get(p);
        if (r >= s.MR) f.i32_const(1).i32_add();
        f.get(aps).i32_mul().i32_add().get(lo).get(aks).i32_mul().i32_add();
        if (r0 > 0 && r >= R - s.MR) {
          minInto(
            f,
            arow[r],
            () => f.i32_const(r0),
            () =>
              f
                .get(mr)
                .i32_const(R - s.MR + 1)
                .i32_sub(),
          );
          f.get(arow[r]).get(ars).i32_mul().i32_add();
        } else if (r0 > 0) f.i32_const(r0).get(ars).i32_mul().i32_add();
        f.set(arow[r]);
      }
      // accumulators: 0 on the first K block, else the running sums from C
      f.get(first).if_();
      {
        for (let r = 0; r < R; r++) for (let v = 0; v < nv; v++) f.f64_const(0).f64x2_splat().set(acc[r][v]);
      }
      f.else_();
      {
        f.get(full).if_();
        {
          for (let r = 0; r < R; r++) {
            for (let v = 0; v < nv; v++) {
              rowAddr(r);
              f.v128_load(v * 16).set(acc[r][v]);
            }
          }
        }
        f.else_();
        {
          // edge tile: lanes past the last row / column stay 0 (and are never stored)
          for (let r = 0; r < R; r++) {
            for (let v = 0; v < nv; v++) {
              f.f64_const(0).f64x2_splat().set(acc[r][v]);
              for (let l = 0; l < lanes; l++) {
                f.get(mr)
                  .i32_const(r)
                  .i32_gt_s()
                  .get(nc)
                  .i32_const(v * lanes + l)
                  .i32_gt_s()
                  .i32_and()
                  .if_();
                f.get(acc[r][v]);
                rowAddr(r);
                if (dt === 'f32') f.f32_load(v * 16 + l * E).f32x4_replace_lane(l);
                else f.f64_load(v * 16 + l * E).f64x2_replace_lane(l);
                f.set(acc[r][v]);
                f.end();
              }
            }
          }
        }
        f.end();
      }
      f.end();
      // micro-kernel: for (k = kl; k > 0; k--)
      f.get(hi).get(lo).i32_sub().set(k);
      f.block().loop();
      {
        f.get(k).i32_eqz().br_if(1);
        for (let v = 0; v < nv; v++)
          f.get(bp)
            .v128_load(v * 16)
            .set(bv[v]);
        for (let r = 0; r < R; r++) {
          f.get(arow[r]);
          if (dt === 'f32') f.v128_load32_splat(0);
          else f.v128_load64_splat(0);
          f.set(av);
          for (let v = 0; v < nv; v++) {
            if (s.fma) {
              f.get(av).get(bv[v]).get(acc[r][v]);
              if (dt === 'f32') f.f32x4_relaxed_madd();
              else f.f64x2_relaxed_madd();
            } else {
              f.get(acc[r][v]).get(av).get(bv[v]);
              vmul();
              vadd();
            }
            f.set(acc[r][v]);
          }
        }
        for (let r = 0; r < R; r++) {
          f.get(arow[r]);
          if (aStep === null) f.get(aks);
          else f.i32_const(aStep);
          f.i32_add().set(arow[r]);
        }
        f.get(bp).get(bks).i32_add().set(bp);
        f.get(k).i32_const(1).i32_sub().set(k);
        f.br(0);
      }
      f.end().end();
      // the bias row on the last K block: each element the sum as it would be stored, plus the
      // bias (lanes past N read up to a vector past the row's end and are never stored)
      f.get(last).get(bias).i32_const(0).i32_ne().i32_and().if_();
      {
        for (let v = 0; v < nv; v++)
          f.get(bias)
            .get(q)
            .i32_const(s.NR * E)
            .i32_mul()
            .i32_add()
            .v128_load(v * 16)
            .set(bv[v]);
        for (let r = 0; r < R; r++)
          for (let v = 0; v < nv; v++) {
            f.get(acc[r][v]).get(bv[v]);
            vadd();
            f.set(acc[r][v]);
          }
      }
      f.end();
      f.get(full).if_();
      {
        for (let r = 0; r < R; r++) {
          for (let v = 0; v < nv; v++) {
            rowAddr(r);
            f.get(acc[r][v]).v128_store(v * 16);
          }
        }
      }
      f.else_();
      {
        for (let r = 0; r < R; r++) {
          for (let v = 0; v < nv; v++) {
            for (let l = 0; l < lanes; l++) {
              f.get(mr)
                .i32_const(r)
                .i32_gt_s()
                .get(nc)
                .i32_const(v * lanes + l)
                .i32_gt_s()
                .i32_and()
                .if_();
              rowAddr(r);
              f.get(acc[r][v]);
              if (dt === 'f32') f.f32x4_extract_lane(l).f32_store(v * 16 + l * E);
              else f.f64x2_extract_lane(l).f64_store(v * 16 + l * E);
              f.end();
            }
          }
        }
      }
      f.end();
      zeroUpper();
      f.end(); // run
      f.get(p).i32_const(panels).i32_add().set(p);
      f.br(0);
    }
    f.end().end();
  };

  // for (z = 0; z < nb; z++, pa += sa, pb += sb, c += sc)
  f.i32_const(0).set(z);
  f.block().loop();
  {
    f.get(z).get(nb).i32_ge_s().br_if(1);
    // for (kc = 0; kc < K; kc += KC)
    f.i32_const(0).set(kc);
    f.block().loop();
    {
      f.get(kc).get(K).i32_ge_s().br_if(1);
      // kl = min(KC, K - kc)
      minInto(
        f,
        kl,
        () => f.i32_const(s.KC),
        () => f.get(K).get(kc).i32_sub(),
      );
      f.get(kc).i32_eqz().set(first);
      f.get(kc).get(kl).i32_add().get(K).i32_ge_s().set(last);
      // for (blk = p0; blk < p1; blk += PB)
      f.get(p0).set(blk);
      f.block().loop();
      {
        f.get(blk).get(p1).i32_ge_s().br_if(1);
        minInto(
          f,
          pe,
          () => f.get(p1),
          () => f.get(blk).i32_const(s.PB).i32_add(),
        );
        // for (q = q0; q < q1; q++)
        f.get(q0).set(q);
        f.block().loop();
        {
          f.get(q).get(q1).i32_ge_s().br_if(1);
          // bq = pb + q·bps + kc·bks
          f.get(pb).get(q).get(bps).i32_mul().i32_add().get(kc).get(bks).i32_mul().i32_add().set(bq);
          // nc = min(NR, N - q*NR): columns of this panel; the kernel with the fewest vectors covering them
          minInto(
            f,
            nc,
            () => f.i32_const(s.NR),
            () => f.get(N).get(q).i32_const(s.NR).i32_mul().i32_sub(),
          );
          // the kernel for the panel's width; A's k step a constant where it is one element
          // (row-major A read in place: fewer live registers in the k loop)
          const variants = (nv: number, aStep: number | null): void => {
            if (nv === 1 && tall) {
              panelLoop(1, aStep, 2 * s.MR, true);
              return panelLoop(1, aStep, s.MR, false); // an odd last panel
            }
            if (nv === 1) return panelLoop(1, aStep, s.MR, true);
            f.get(nc)
              .i32_const((nv - 1) * lanes)
              .i32_gt_s()
              .if_();
            panelLoop(nv, aStep, s.MR, true);
            f.else_();
            variants(nv - 1, aStep);
            f.end();
          };
          f.get(aks).i32_const(E).i32_eq().if_();
          variants(NV, E);
          f.else_();
          variants(NV, null);
          f.end();
          f.get(q).i32_const(1).i32_add().set(q);
          f.br(0);
        }
        f.end().end();
        zeroAbove();
        f.get(blk).i32_const(s.PB).i32_add().set(blk);
        f.br(0);
      }
      f.end().end();
      f.get(kc).i32_const(s.KC).i32_add().set(kc);
      f.br(0);
    }
    f.end().end();
    f.get(pa).get(sa).i32_add().set(pa);
    f.get(pb).get(sb).i32_add().set(pb);
    f.get(c).get(sc).i32_add().set(c);
    f.get(z).i32_const(1).i32_add().set(z);
    f.br(0);
  }
  f.end().end();
}

/**
 * Whether one-vector tiles take two A panels: their 2·MR accumulators, one B vector and 2·MR A
 * splats must fit the 15 registers (Turbofan loads every operand of a k step before the
 * arithmetic), with no temporary (fused multiply-add) — the 3 × 12 f32 shape.
 */
export function tallEdge(s: GemmShape): boolean {
  return s.fma === true && 4 * s.MR + 1 <= 15;
}
