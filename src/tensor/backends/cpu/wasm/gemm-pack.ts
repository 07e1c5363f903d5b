/**
 * The gemm's packing kernels (emitted with {@link ModuleBuilder}): copy an operand into the
 * zero-padded, k-major panels the macro-kernel of gemm.ts reads, for the operands that are not
 * read in place (see gemm-run.ts).
 */
import { I32, type ModuleBuilder } from './builder.js';
import type { DT } from './vector.js';

/**
 * `pack_<dt>_<W>(src, rows, K, si, sk, dst, p0, p1, nm, ss, ds)`: for each of `nm` matrices z
 * (source at src + z·ss, packed at dst + z·ds, byte strides), panels p ∈ [p0, p1) of width W of
 * the logical rows × K matrix whose element (i, k) is at byte address `src + i·si + k·sk`, into
 * dst (panel p at dst + p·K·W·es, k-major: (k, r) at + (k·W + r)·es), zero past `rows`.
 */
export function emitPack(mb: ModuleBuilder, dt: DT, W: number): void {
  const E = dt === 'f32' ? 4 : 8;
  const f = mb.fn(`pack_${dt}_${W}`, [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32]);
  const [src, rows, K, si, sk, dst, p0, p1, nm, ss, ds] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const z = f.local(I32),
    p = f.local(I32),
    i0 = f.local(I32),
    s = f.local(I32),
    d = f.local(I32),
    k = f.local(I32),
    r = f.local(I32);
  const vec = W % (16 / E) === 0;
  /** panels copied together from contiguous rows */
  const G = 4;
  const dg = Array.from({ length: G }, () => f.local(I32));
  const load = (off = 0) => (dt === 'f32' ? f.f32_load(off) : f.f64_load(off));
  const store = (off = 0) => (dt === 'f32' ? f.f32_store(off) : f.f64_store(off));
  // for (z = 0; z < nm; z++, src += ss, dst += ds)
  f.i32_const(0).set(z);
  f.block().loop();
  f.get(z).get(nm).i32_ge_s().br_if(1);
  f.get(p0).set(p);
  f.block().loop();
  {
    f.get(p).get(p1).i32_ge_s().br_if(1);
    f.get(p).i32_const(W).i32_mul().set(i0);
    // d = dst + p*K*W*E ; s = src + i0*si
    f.get(dst)
      .get(p)
      .get(K)
      .i32_mul()
      .i32_const(W * E)
      .i32_mul()
      .i32_add()
      .set(d);
    f.get(src).get(i0).get(si).i32_mul().i32_add().set(s);
    f.get(i0).i32_const(W).i32_add().get(rows).i32_le_s();
    f.if_();
    {
      // full panel
      if (vec) {
        // contiguous rows of the panel (si == E): vector copies, G full panels at a time where
        // there are that many (one pass over each source row segment of G·W elements: fewer
        // pages and lines touched per k than G passes)
        f.get(si).i32_const(E).i32_eq();
        f.if_();
        {
          f.get(p)
            .i32_const(G)
            .i32_add()
            .get(p1)
            .i32_le_s()
            .get(i0)
            .i32_const(G * W)
            .i32_add()
            .get(rows)
            .i32_le_s()
            .i32_and();
          f.if_();
          {
            for (let g = 1; g < G; g++)
              f.get(d)
                .get(K)
                .i32_const(g * W * E)
                .i32_mul()
                .i32_add()
                .set(dg[g]);
            f.get(K).set(k);
            f.block().loop();
            f.get(k).i32_eqz().br_if(1);
            for (let g = 0; g < G; g++) {
              for (let v = 0; v < (W * E) / 16; v++)
                f.get(g === 0 ? d : dg[g])
                  .get(s)
                  .v128_load(g * W * E + v * 16)
                  .v128_store(v * 16);
            }
            for (let g = 0; g < G; g++)
              f.get(g === 0 ? d : dg[g])
                .i32_const(W * E)
                .i32_add()
                .set(g === 0 ? d : dg[g]);
            f.get(s).get(sk).i32_add().set(s);
            f.get(k).i32_const(1).i32_sub().set(k);
            f.br(0);
            f.end().end();
            f.get(p).i32_const(G).i32_add().set(p);
            f.br(3); // continue the panel loop
          }
          f.end();
          f.get(K).set(k);
          f.block().loop();
          f.get(k).i32_eqz().br_if(1);
          for (let v = 0; v < (W * E) / 16; v++)
            f.get(d)
              .get(s)
              .v128_load(v * 16)
              .v128_store(v * 16);
          f.get(d)
            .i32_const(W * E)
            .i32_add()
            .set(d);
          f.get(s).get(sk).i32_add().set(s);
          f.get(k).i32_const(1).i32_sub().set(k);
          f.br(0);
          f.end().end();
          f.get(p).i32_const(1).i32_add().set(p);
          f.br(2); // continue the panel loop
        }
        f.end();
      }
      if (!vec && W * E < 16) {
        // contiguous rows of G full panels narrower than a vector (si == E, e.g. A's columns):
        // one unaligned vector copy per panel and k, whose extra lanes the next k overwrites;
        // the last k element by element (its extra lanes would land in the next panel)
        f.get(si)
          .i32_const(E)
          .i32_eq()
          .get(p)
          .i32_const(G)
          .i32_add()
          .get(p1)
          .i32_le_s()
          .i32_and()
          .get(i0)
          .i32_const(G * W)
          .i32_add()
          .get(rows)
          .i32_le_s()
          .i32_and();
        f.if_();
        {
          for (let g = 0; g < G; g++)
            f.get(d)
              .get(K)
              .i32_const(g * W * E)
              .i32_mul()
              .i32_add()
              .set(dg[g]);
          f.get(K).i32_const(1).i32_sub().set(k);
          f.block().loop();
          f.get(k).i32_eqz().br_if(1);
          for (let g = 0; g < G; g++)
            f.get(dg[g])
              .get(s)
              .v128_load(g * W * E)
              .v128_store(0);
          for (let g = 0; g < G; g++)
            f.get(dg[g])
              .i32_const(W * E)
              .i32_add()
              .set(dg[g]);
          f.get(s).get(sk).i32_add().set(s);
          f.get(k).i32_const(1).i32_sub().set(k);
          f.br(0);
          f.end().end();
          for (let g = 0; g < G; g++) {
            for (let rr = 0; rr < W; rr++) {
              f.get(dg[g]).get(s);
              load((g * W + rr) * E);
              store(rr * E);
            }
          }
          f.get(p).i32_const(G).i32_add().set(p);
          f.br(2); // continue the panel loop
        }
        f.end();
      }
      f.get(K).set(k);
      f.block().loop();
      {
        f.get(k).i32_eqz().br_if(1);
        for (let rr = 0; rr < W; rr++) {
          f.get(d);
          f.get(s);
          if (rr > 0) f.get(si).i32_const(rr).i32_mul().i32_add();
          load();
          if (dt === 'f32') f.f32_store(rr * E);
          else f.f64_store(rr * E);
        }
        f.get(d)
          .i32_const(W * E)
          .i32_add()
          .set(d);
        f.get(s).get(sk).i32_add().set(s);
        f.get(k).i32_const(1).i32_sub().set(k);
        f.br(0);
      }
      f.end().end();
    }
    f.else_();
    {
      // last, partial panel: element by element, zero past rows
      f.get(K).set(k);
      f.block().loop();
      {
        f.get(k).i32_eqz().br_if(1);
        f.i32_const(0).set(r);
        f.block().loop();
        {
          f.get(r).i32_const(W).i32_ge_s().br_if(1);
          f.get(d).get(r).i32_const(E).i32_mul().i32_add();
          // value = (i0 + r < rows) ? src[s + r*si] : 0
          if (dt === 'f32') f.f32_const(0);
          else f.f64_const(0);
          f.get(s).get(r).get(si).i32_mul().i32_add();
          // guard the load: clamp the address to s when out of range (the value is discarded)
          f.get(s);
          f.get(i0).get(r).i32_add().get(rows).i32_lt_s();
          f.select();
          load();
          f.get(i0).get(r).i32_add().get(rows).i32_ge_s();
          f.select();
          store();
          f.get(r).i32_const(1).i32_add().set(r);
          f.br(0);
        }
        f.end().end();
        f.get(d)
          .i32_const(W * E)
          .i32_add()
          .set(d);
        f.get(s).get(sk).i32_add().set(s);
        f.get(k).i32_const(1).i32_sub().set(k);
        f.br(0);
      }
      f.end().end();
    }
    f.end();
    f.get(p).i32_const(1).i32_add().set(p);
    f.br(0);
  }
  f.end().end();
  f.get(src).get(ss).i32_add().set(src);
  f.get(dst).get(ds).i32_add().set(dst);
  f.get(z).i32_const(1).i32_add().set(z);
  f.br(0);
  f.end().end();
}
