/**
 * Plain-TypeScript CPU kernels of the Mega layer's gates (see `FusedKernels` in backend.ts:
 * gateQK, siluMul, gateOut and their VJPs, and the silu backward siluGrad): one pass over the operands each, float64 inside,
 * rounded once on the store. Each is tested equal (within rounding) to the composition of
 * primitive kernels it replaces, generic-fused.ts (test/tensor/backends/cpu/fused-gates.test.ts).
 *
 * Operands are read in place through their strides when the last axis is unit-stride and the axes
 * before the last two merge (the Mega layer's `L × B × ·` pieces of one projection, transposed
 * attention outputs, broadcast dropout masks); anything else is copied first.
 */
import type { GateActivation } from '../../backend.js';
import { allocate, type FloatStorage } from '../../dtype.js';
import { allocateOut } from './resident.js';
import { fromStorage, type Tensor } from '../../tensor.js';
import * as V from '../../view.js';
import { checkGateOperands, checkGateQK } from '../checks.js';
import { copyCpu, dense } from './elementwise.js';

/** An operand as `na × nb` rows of a unit-stride last axis: row (a, b) starts at `o + a·sa + b·sb`. */
interface Rows {
  s: FloatStorage;
  o: number;
  sa: number;
  sb: number;
}

/** `[na, nb]`: the axes before the last two merged, and the second-to-last axis. */
function outerDims(shape: readonly number[]): [number, number] {
  const nd = shape.length;
  let na = 1;
  for (let i = 0; i < nd - 2; i++) na *= shape[i];
  return [na, nd >= 2 ? shape[nd - 2] : 1];
}

/** `t` as {@link Rows} (a contiguous copy when its layout does not fit). */
function rowsOf(t: Tensor): Rows {
  const nd = t.ndim;
  const sh = t.shape,
    st = t.strides;
  if (nd > 0 && sh[nd - 1] !== 1 && st[nd - 1] !== 1) return rowsOf(copyCpu(t));
  // the axes before the last two (size-1 ones aside) must merge into one stride
  let sa = 0,
    prev = -1;
  for (let i = 0; i < nd - 2; i++) {
    if (sh[i] === 1) continue;
    if (prev >= 0 && st[prev] !== st[i] * sh[i]) return rowsOf(copyCpu(t));
    prev = i;
    sa = st[i];
  }
  return { s: t.storage as FloatStorage, o: t.offset, sa, sb: nd >= 2 ? st[nd - 2] : 0 };
}

const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));

/** CPU `gateQK`: `[..., 2Z]` = [silu(z)·γ0 + β0 | silu(z)·γ1 + β1]. */
export function gateQKCpu(z: Tensor, gamma: Tensor, beta: Tensor): Tensor {
  checkGateQK('gateQK', z, [gamma, beta]);
  const Z = z.shape[z.ndim - 1];
  const [na, nb] = outerDims(z.shape);
  const G = dense(gamma),
    Bt = dense(beta);
  const R = rowsOf(z),
    zs = R.s;
  const out = allocateOut(z.dtype, na * nb * 2 * Z, false) as FloatStorage;
  let d = 0;
  for (let a = 0; a < na; a++) {
    for (let b = 0; b < nb; b++, d += 2 * Z) {
      const p = R.o + a * R.sa + b * R.sb;
      for (let j = 0; j < Z; j++) {
        const v = zs[p + j];
        const s = v / (1 + Math.exp(-v));
        out[d + j] = s * G[j] + Bt[j];
        out[d + Z + j] = s * G[Z + j] + Bt[Z + j];
      }
    }
  }
  return fromStorage(out, [...z.shape.slice(0, -1), 2 * Z]);
}

/** CPU `gateQKGrad`: `[dz, dgamma, dbeta]` (parameter sums in float64). */
export function gateQKGradCpu(z: Tensor, gamma: Tensor, gq: Tensor, gk: Tensor): [Tensor, Tensor, Tensor] {
  checkGateQK('gateQKGrad', z, [gamma]);
  checkGateOperands('gateQKGrad', [z, gq, gk]);
  const Z = z.shape[z.ndim - 1];
  const [na, nb] = outerDims(z.shape);
  const G = dense(gamma);
  const R = rowsOf(z),
    Q = rowsOf(gq),
    Kk = rowsOf(gk);
  const zs = R.s,
    qs = Q.s,
    ks = Kk.s;
  const dz = allocateOut(z.dtype, na * nb * Z, false) as FloatStorage;
  const acc = new Float64Array(4 * Z); // dγ0, dγ1, dβ0, dβ1
  let d = 0;
  for (let a = 0; a < na; a++) {
    for (let b = 0; b < nb; b++, d += Z) {
      const pz = R.o + a * R.sa + b * R.sb,
        pq = Q.o + a * Q.sa + b * Q.sb,
        pk = Kk.o + a * Kk.sa + b * Kk.sb;
      for (let j = 0; j < Z; j++) {
        const v = zs[pz + j],
          q = qs[pq + j],
          k = ks[pk + j];
        const sg = 1 / (1 + Math.exp(-v));
        const s = v * sg;
        dz[d + j] = (q * G[j] + k * G[Z + j]) * (sg * (1 + v * (1 - sg)));
        acc[j] += q * s;
        acc[Z + j] += k * s;
        acc[2 * Z + j] += q;
        acc[3 * Z + j] += k;
      }
    }
  }
  const dg = allocate(z.dtype, 2 * Z) as FloatStorage,
    db = allocate(z.dtype, 2 * Z) as FloatStorage;
  dg.set(acc.subarray(0, 2 * Z));
  db.set(acc.subarray(2 * Z));
  return [fromStorage(dz, z.shape), fromStorage(dg, [2, Z]), fromStorage(db, [2, Z])];
}

/** CPU `siluGrad`: `g ⊙ silu'(x)`. */
export function siluGradCpu(x: Tensor, g: Tensor): Tensor {
  checkGateOperands('siluGrad', [x, g]);
  const W = x.shape[x.ndim - 1] ?? 1;
  const [na, nb] = outerDims(x.shape);
  const X = rowsOf(x),
    Gg = rowsOf(g);
  const xs = X.s,
    gs = Gg.s;
  const out = allocateOut(x.dtype, x.size, false) as FloatStorage;
  let d = 0;
  for (let a = 0; a < na; a++) {
    for (let b = 0; b < nb; b++, d += W) {
      const px = X.o + a * X.sa + b * X.sb,
        pg = Gg.o + a * Gg.sa + b * Gg.sb;
      for (let j = 0; j < W; j++) {
        const v = xs[px + j];
        const sg = 1 / (1 + Math.exp(-v));
        out[d + j] = gs[pg + j] * (sg * (1 + v * (1 - sg)));
      }
    }
  }
  return fromStorage(out, x.shape);
}

/** CPU `siluMul`: `h ⊙ silu(r)`. */
export function siluMulCpu(h: Tensor, r: Tensor): Tensor {
  checkGateOperands('siluMul', [h, r]);
  const W = h.shape[h.ndim - 1] ?? 1;
  const [na, nb] = outerDims(h.shape);
  const Hh = rowsOf(h),
    Rr = rowsOf(r);
  const hs = Hh.s,
    rs = Rr.s;
  const out = allocateOut(h.dtype, h.size, false) as FloatStorage;
  let d = 0;
  for (let a = 0; a < na; a++) {
    for (let b = 0; b < nb; b++, d += W) {
      const ph = Hh.o + a * Hh.sa + b * Hh.sb,
        pr = Rr.o + a * Rr.sa + b * Rr.sb;
      for (let j = 0; j < W; j++) {
        const v = rs[pr + j];
        out[d + j] = hs[ph + j] * (v / (1 + Math.exp(-v)));
      }
    }
  }
  return fromStorage(out, h.shape);
}

/** CPU `siluMulGrad`: `[g ⊙ silu(r), g ⊙ h ⊙ silu'(r)]`. */
export function siluMulGradCpu(h: Tensor, r: Tensor, g: Tensor): [Tensor, Tensor] {
  checkGateOperands('siluMulGrad', [h, r, g]);
  const W = h.shape[h.ndim - 1] ?? 1;
  const [na, nb] = outerDims(h.shape);
  const Hh = rowsOf(h),
    Rr = rowsOf(r),
    Gg = rowsOf(g);
  const hs = Hh.s,
    rs = Rr.s,
    gs = Gg.s;
  const dh = allocateOut(h.dtype, h.size, false) as FloatStorage,
    dr = allocateOut(h.dtype, h.size, false) as FloatStorage;
  let d = 0;
  for (let a = 0; a < na; a++) {
    for (let b = 0; b < nb; b++, d += W) {
      const ph = Hh.o + a * Hh.sa + b * Hh.sb,
        pr = Rr.o + a * Rr.sa + b * Rr.sb,
        pg = Gg.o + a * Gg.sa + b * Gg.sb;
      for (let j = 0; j < W; j++) {
        const v = rs[pr + j],
          gv = gs[pg + j];
        const sg = 1 / (1 + Math.exp(-v));
        dh[d + j] = gv * (v * sg);
        dr[d + j] = gv * hs[ph + j] * (sg * (1 + v * (1 - sg)));
      }
    }
  }
  return [fromStorage(dh, h.shape), fromStorage(dr, h.shape)];
}

/** The mask of gateOut (x's dtype, broadcastable to x) as rows over x's shape, or null. */
function maskRows(mask: Tensor | null, x: Tensor, op: string): Rows | null {
  if (!mask) return null;
  const m = V.expand(mask, x.shape);
  checkGateOperands(op, [x, m]);
  return rowsOf(m);
}

/** CPU `gateOut`: `x + σ(u) ⊙ (act(hx + y) ⊙ mask − x)`. */
export function gateOutCpu(x: Tensor, u: Tensor, hx: Tensor, y: Tensor, mask: Tensor | null, act: GateActivation): Tensor {
  checkGateOperands('gateOut', [x, u, hx, y]);
  const W = x.shape[x.ndim - 1] ?? 1;
  const [na, nb] = outerDims(x.shape);
  const X = rowsOf(x),
    U = rowsOf(u),
    Hx = rowsOf(hx),
    Y = rowsOf(y),
    M = maskRows(mask, x, 'gateOut');
  const xs = X.s,
    us = U.s,
    hs = Hx.s,
    ys = Y.s;
  const out = allocateOut(x.dtype, x.size, false) as FloatStorage;
  const silu = act === 'silu',
    relu = act === 'relu';
  let d = 0;
  for (let a = 0; a < na; a++) {
    for (let b = 0; b < nb; b++, d += W) {
      const px = X.o + a * X.sa + b * X.sb,
        pu = U.o + a * U.sa + b * U.sb,
        ph = Hx.o + a * Hx.sa + b * Hx.sb,
        py = Y.o + a * Y.sa + b * Y.sb;
      const pm = M ? M.o + a * M.sa + b * M.sb : 0;
      for (let j = 0; j < W; j++) {
        const s = activate(hs[ph + j] + ys[py + j], silu, relu);
        const hh = M ? s * M.s[pm + j] : s;
        const xv = xs[px + j];
        out[d + j] = xv + sigmoid(us[pu + j]) * (hh - xv);
      }
    }
  }
  return fromStorage(out, x.shape);
}

/** act(a) of gateOut. */
function activate(a: number, silu: boolean, relu: boolean): number {
  if (silu) return a / (1 + Math.exp(-a));
  if (relu) return a > 0 || a !== a ? a : 0;
  return a;
}

/** CPU `gateOutGrad`: `[dx, du, d(hx + y)]`. */
export function gateOutGradCpu(x: Tensor, u: Tensor, hx: Tensor, y: Tensor, mask: Tensor | null, act: GateActivation, g: Tensor): [Tensor, Tensor, Tensor] {
  checkGateOperands('gateOutGrad', [x, u, hx, y, g]);
  const W = x.shape[x.ndim - 1] ?? 1;
  const [na, nb] = outerDims(x.shape);
  const X = rowsOf(x),
    U = rowsOf(u),
    Hx = rowsOf(hx),
    Y = rowsOf(y),
    Gg = rowsOf(g),
    M = maskRows(mask, x, 'gateOutGrad');
  const xs = X.s,
    us = U.s,
    hs = Hx.s,
    ys = Y.s,
    gs = Gg.s;
  const n = x.size;
  const dx = allocateOut(x.dtype, n, false) as FloatStorage,
    du = allocateOut(x.dtype, n, false) as FloatStorage,
    da = allocateOut(x.dtype, n, false) as FloatStorage;
  const silu = act === 'silu',
    relu = act === 'relu';
  let d = 0;
  for (let a = 0; a < na; a++) {
    for (let b = 0; b < nb; b++, d += W) {
      const px = X.o + a * X.sa + b * X.sb,
        pu = U.o + a * U.sa + b * U.sb,
        ph = Hx.o + a * Hx.sa + b * Hx.sb,
        py = Y.o + a * Y.sa + b * Y.sb,
        pg = Gg.o + a * Gg.sa + b * Gg.sb;
      const pm = M ? M.o + a * M.sa + b * M.sb : 0;
      for (let j = 0; j < W; j++) {
        const av = hs[ph + j] + ys[py + j];
        const gv = gs[pg + j];
        const su = sigmoid(us[pu + j]);
        const m = M ? M.s[pm + j] : 1;
        let f: number, df: number;
        if (silu) {
          const sa = 1 / (1 + Math.exp(-av));
          f = av * sa;
          df = sa * (1 + av * (1 - sa));
        } else if (relu) {
          f = av > 0 || av !== av ? av : 0;
          df = av > 0 ? 1 : 0;
        } else {
          f = av;
          df = 1;
        }
        dx[d + j] = gv * (1 - su);
        du[d + j] = gv * (f * m - xs[px + j]) * (su * (1 - su));
        da[d + j] = gv * su * m * df;
      }
    }
  }
  return [fromStorage(dx, x.shape), fromStorage(du, x.shape), fromStorage(da, x.shape)];
}
