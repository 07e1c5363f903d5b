/**
 * WebAssembly SIMD paths of the Mega gate kernels (wasm/gates.ts): the operands are staged into
 * one block of wasm memory (`stage`, which also reads the layer's strided pieces and broadcast
 * masks), one map function computes every output, threaded over the pool for large tensors.
 * Each returns null where it does not apply (SIMD off, a small tensor, an activation other than
 * silu, bad arguments: the plain-TypeScript kernel of fused-gates.ts then runs and reports them);
 * register.ts tries these first. Tested equal to the plain kernels (test/tensor/backends/cpu/
 * fused-gates.test.ts, forced SIMD).
 */
import type { GateActivation } from '../../backend.js';
import { allocate, type FloatStorage } from '../../dtype.js';
import { fromStorage, type Tensor } from '../../tensor.js';
import * as V from '../../view.js';
import { allocateOut, residentActive } from './resident.js';
import { inPlace, runMap, SIMD_MIN_SIZE, SIMD_RESIDENT_MIN_SIZE, stage, storageAddr } from './simd.js';
import { flatGateName, QK_BLOCK, type FlatGate } from './wasm/gates.js';
import { simdTuning, wasmArena, wasmRuntime } from './wasm/runtime.js';

/**
 * Writes `t`'s elements in row-major order into `view` from byte address `addr`: `stage`, except
 * for the short or strided rows of the small layers' pieces (rows under 32 elements, or a last axis
 * that is not unit-stride), which an element loop copies ~10× faster than row `set`s or a
 * generic copy. Handles at most three axes after merging (else `stage`).
 */
function stageGate(view: FloatStorage, addr: number, E: number, t: Tensor): void {
  const nd = t.ndim;
  if (nd === 0 || t.isContiguous()) return stage(view, addr, E, t);
  const sh = t.shape,
    st = t.strides;
  const W = sh[nd - 1],
    sw = st[nd - 1];
  if (sw === 1 && W >= 32) return stage(view, addr, E, t);
  // axes before the last two must merge into one stride (size-1 axes aside)
  let na = 1,
    sa = 0,
    prev = -1;
  for (let i = 0; i < nd - 2; i++) {
    na *= sh[i];
    if (sh[i] === 1) continue;
    if (prev >= 0 && st[prev] !== st[i] * sh[i]) return stage(view, addr, E, t);
    prev = i;
    sa = st[i];
  }
  const nb = nd >= 2 ? sh[nd - 2] : 1,
    sb = nd >= 2 ? st[nd - 2] : 0;
  const src = t.storage as FloatStorage;
  let d = addr / E;
  for (let a = 0; a < na; a++) {
    for (let b = 0; b < nb; b++) {
      let p = t.offset + a * sa + b * sb;
      for (let j = 0; j < W; j++, p += sw) view[d++] = src[p];
    }
  }
}

/** Whether the operands are float tensors of one dtype and one shape, large enough for SIMD. */
function fits(ts: readonly Tensor[]): boolean {
  const a = ts[0];
  if ((a.dtype !== 'f32' && a.dtype !== 'f64') || a.ndim === 0) return false;
  const resident = residentActive() && ts.every((t) => inPlace(t) >= 0);
  if (a.size < (simdTuning.force ? 1 : resident ? SIMD_RESIDENT_MIN_SIZE : SIMD_MIN_SIZE)) return false;
  return ts.every((t) => t.dtype === a.dtype && t.ndim === a.ndim && t.shape.every((d, i) => d === a.shape[i]));
}

/**
 * Runs flat gate `kernel` on `ins` (one shape; a mask last when `masked`); its outputs, shaped as
 * ins[0]. Resident contiguous operands are read in place and resident outputs written in place;
 * the rest goes through the per-call arena.
 */
function runFlat(kernel: FlatGate, masked: boolean, ins: readonly Tensor[], outs: number): Tensor[] | null {
  const rt = wasmRuntime();
  if (!rt) return null;
  const x = ins[0];
  const dt = x.dtype as 'f32' | 'f64';
  const E = dt === 'f32' ? 4 : 8;
  const n = x.size;
  const results = Array.from({ length: outs }, () => allocateOut(dt, n, false) as FloatStorage);
  const ar = wasmArena(rt);
  ar.reset();
  const tbl = ar.alloc(4 * (ins.length + outs));
  const inAddr = ins.map((t) => {
    const a = inPlace(t);
    return a >= 0 ? a : -1 - ar.alloc(n * E); // −1 − addr: staged there
  });
  const outAddr = results.map((o) => {
    const a = storageAddr(o);
    return a >= 0 ? a : -1 - ar.alloc(n * E);
  });
  ar.commit();
  const view = dt === 'f32' ? ar.f32 : ar.f64;
  const table = new Int32Array(ar.u8.buffer, tbl, ins.length + outs);
  ins.forEach((t, k) => {
    const a = inAddr[k];
    if (a < 0) stageGate(view, -1 - a, E, t);
    table[k] = a < 0 ? -1 - a : a;
  });
  outAddr.forEach((a, k) => (table[ins.length + k] = a < 0 ? -1 - a : a));
  runMap(rt, flatGateName(kernel, masked, dt), n, n * (ins.length + outs), [tbl]);
  outAddr.forEach((a, k) => {
    if (a < 0) results[k].set(view.subarray((-1 - a) / E, (-1 - a) / E + n));
  });
  ar.close();
  return results.map((o) => fromStorage(o, x.shape));
}

/** The mask expanded to x's shape, or undefined when it cannot be (the plain kernel reports it). */
function expandedMask(mask: Tensor, x: Tensor): Tensor | undefined {
  if (mask.dtype !== x.dtype || mask.ndim > x.ndim) return undefined;
  const lead = x.ndim - mask.ndim;
  if (mask.shape.some((d, i) => d !== 1 && d !== x.shape[i + lead])) return undefined;
  return V.expand(mask, x.shape);
}

/** SIMD `siluGrad`, or null. */
export function siluGradSimd(x: Tensor, g: Tensor): Tensor | null {
  if (!fits([x, g])) return null;
  return runFlat('siluGrad', false, [x, g], 1)?.[0] ?? null;
}

/** SIMD `siluMul`, or null. */
export function siluMulSimd(h: Tensor, r: Tensor): Tensor | null {
  if (!fits([h, r])) return null;
  return runFlat('siluMul', false, [h, r], 1)?.[0] ?? null;
}

/** SIMD `siluMulGrad`, or null. */
export function siluMulGradSimd(h: Tensor, r: Tensor, g: Tensor): [Tensor, Tensor] | null {
  if (!fits([h, r, g])) return null;
  const o = runFlat('siluMulGrad', false, [h, r, g], 2);
  return o ? [o[0], o[1]] : null;
}

/** SIMD `gateOut` (silu), or null. */
export function gateOutSimd(x: Tensor, u: Tensor, hx: Tensor, y: Tensor, mask: Tensor | null, act: GateActivation): Tensor | null {
  if (act !== 'silu' || !fits([x, u, hx, y])) return null;
  const m = mask ? expandedMask(mask, x) : null;
  if (m === undefined) return null;
  return runFlat('gateOut', m !== null, m ? [x, u, hx, y, m] : [x, u, hx, y], 1)?.[0] ?? null;
}

/** SIMD `gateOutGrad` (silu), or null. */
export function gateOutGradSimd(
  x: Tensor,
  u: Tensor,
  hx: Tensor,
  y: Tensor,
  mask: Tensor | null,
  act: GateActivation,
  g: Tensor,
): [Tensor, Tensor, Tensor] | null {
  if (act !== 'silu' || !fits([x, u, hx, y, g])) return null;
  const m = mask ? expandedMask(mask, x) : null;
  if (m === undefined) return null;
  const o = runFlat('gateOutGrad', m !== null, m ? [x, u, hx, y, g, m] : [x, u, hx, y, g], 3);
  return o ? [o[0], o[1], o[2]] : null;
}

/** SIMD `gateQK`, or null. */
export function gateQKSimd(z: Tensor, gamma: Tensor, beta: Tensor): Tensor | null {
  if (!fits([z])) return null;
  const Z = z.shape[z.ndim - 1];
  for (const p of [gamma, beta]) if (p.dtype !== z.dtype || p.ndim !== 2 || p.shape[0] !== 2 || p.shape[1] !== Z) return null;
  const rt = wasmRuntime();
  if (!rt) return null;
  const dt = z.dtype as 'f32' | 'f64';
  const E = dt === 'f32' ? 4 : 8;
  const rows = z.size / Z;
  const out = allocateOut(dt, 2 * z.size, false) as FloatStorage;
  const io = storageAddr(out),
    iz = inPlace(z);
  const ar = wasmArena(rt);
  ar.reset();
  const pz = iz >= 0 ? iz : ar.alloc(z.size * E),
    pgb = ar.alloc(4 * Z * E),
    po = io >= 0 ? io : ar.alloc(2 * z.size * E);
  ar.commit();
  const view = dt === 'f32' ? ar.f32 : ar.f64;
  if (iz < 0) stageGate(view, pz, E, z);
  stageGate(view, pgb, E, gamma);
  stageGate(view, pgb + 2 * Z * E, E, beta);
  runMap(rt, `gate_qk_${dt}`, rows, 3 * z.size, [pz, po, pgb, Z]);
  if (io < 0) out.set(view.subarray(po / E, po / E + 2 * z.size));
  ar.close();
  return fromStorage(out, [...z.shape.slice(0, -1), 2 * Z]);
}

/** SIMD `gateQKGrad`, or null: dz, and the parameter sums as float64 partials per block of rows, added in block order. */
export function gateQKGradSimd(z: Tensor, gamma: Tensor, gq: Tensor, gk: Tensor): [Tensor, Tensor, Tensor] | null {
  if (!fits([z, gq, gk])) return null;
  const Z = z.shape[z.ndim - 1];
  if (gamma.dtype !== z.dtype || gamma.ndim !== 2 || gamma.shape[0] !== 2 || gamma.shape[1] !== Z) return null;
  const rt = wasmRuntime();
  if (!rt) return null;
  const dt = z.dtype as 'f32' | 'f64';
  const E = dt === 'f32' ? 4 : 8;
  const rows = z.size / Z;
  const blocks = Math.ceil(rows / QK_BLOCK);
  const stride = z.size * E; // packed: the kernel derives rows from it
  const dz = allocateOut(dt, z.size, false) as FloatStorage;
  const io = storageAddr(dz);
  const ar = wasmArena(rt);
  ar.reset();
  const pin = ar.alloc(3 * stride),
    pg = ar.alloc(2 * Z * E),
    pacc = ar.alloc(blocks * 4 * Z * 8),
    pout = io >= 0 ? io : ar.alloc(stride);
  ar.commit();
  const view = dt === 'f32' ? ar.f32 : ar.f64;
  [z, gq, gk].forEach((t, k) => stageGate(view, pin + k * stride, E, t));
  stageGate(view, pg, E, gamma);
  const acc = ar.f64.subarray(pacc / 8, pacc / 8 + blocks * 4 * Z);
  acc.fill(0);
  runMap(rt, `gate_qkgrad_${dt}`, blocks, 4 * z.size, [pin, pout, stride, pg, Z, pacc]);
  const sums = new Float64Array(4 * Z);
  for (let b = 0; b < blocks; b++) for (let i = 0; i < 4 * Z; i++) sums[i] += acc[b * 4 * Z + i];
  if (io < 0) dz.set(view.subarray(pout / E, pout / E + z.size));
  ar.close();
  const dg = allocate(dt, 2 * Z) as FloatStorage,
    db = allocate(dt, 2 * Z) as FloatStorage;
  dg.set(sums.subarray(0, 2 * Z));
  db.set(sums.subarray(2 * Z));
  return [fromStorage(dz, z.shape), fromStorage(dg, [2, Z]), fromStorage(db, [2, Z])];
}
