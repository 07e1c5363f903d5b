/**
 * WebAssembly SIMD paths of the Mega gate kernels (wasm/gates.ts): operands resident in the wasm
 * memory are read in place, strided ones included (the layer's pieces of one projection,
 * transposed views, broadcast masks), others are staged into the per-call arena; resident outputs
 * are written in place. One map function computes every output, threaded over the pool for
 * large tensors.
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
import { copyCpu } from './elementwise.js';
import { residentAddr, runMap, SIMD_MIN_SIZE, SIMD_RESIDENT_MIN_SIZE, stage, storageAddr } from './simd.js';
import { flatGateName, QK_BLOCK, type FlatGate } from './wasm/gates.js';
import { simdTuning, wasmArena, wasmRuntime, type WasmRuntime } from './wasm/runtime.js';

/**
 * Writes `t`'s elements in row-major order into `view` from byte address `addr`: `stage` (the
 * wasm copies for resident tensors), except for the short or strided rows of plain tensors of the
 * small layers' pieces (rows under 32 elements, or a last axis that is not unit-stride), which an
 * element loop copies ~10× faster than row `set`s or a generic copy. Handles at most three axes
 * after merging (else `stage`).
 */
function stageGate(view: FloatStorage, addr: number, E: number, t: Tensor): void {
  const nd = t.ndim;
  if (nd === 0 || t.isContiguous() || residentAddr(t) >= 0) return stage(view, addr, E, t, true);
  const sh = t.shape,
    st = t.strides;
  const W = sh[nd - 1],
    sw = st[nd - 1];
  if (sw === 1 && W >= 32) return stage(view, addr, E, t, true);
  // axes before the last two must merge into one stride (size-1 axes aside)
  let na = 1,
    sa = 0,
    prev = -1;
  for (let i = 0; i < nd - 2; i++) {
    na *= sh[i];
    if (sh[i] === 1) continue;
    if (prev >= 0 && st[prev] !== st[i] * sh[i]) return stage(view, addr, E, t, true);
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
  const resident = residentActive() && ts.every((t) => residentAddr(t) >= 0 && rowStrides(t) !== null);
  if (a.size < (simdTuning.force ? 1 : resident ? SIMD_RESIDENT_MIN_SIZE : SIMD_MIN_SIZE)) return false;
  return ts.every((t) => t.dtype === a.dtype && t.ndim === a.ndim && t.shape.every((d, i) => d === a.shape[i]));
}

/** Element strides (a, b) of `t` read as `(size / (nb·W)) × nb` rows of W unit-stride elements, or null. */
function rowStrides(t: Tensor): [number, number] | null {
  const nd = t.ndim;
  const sh = t.shape,
    st = t.strides;
  if (nd > 0 && sh[nd - 1] !== 1 && st[nd - 1] !== 1) return null;
  let sa = 0,
    prev = -1;
  for (let i = 0; i < nd - 2; i++) {
    if (sh[i] === 1) continue;
    if (prev >= 0 && st[prev] !== st[i] * sh[i]) return null;
    prev = i;
    sa = st[i];
  }
  return [sa, nd >= 2 && sh[nd - 2] !== 1 ? st[nd - 2] : 0];
}

/**
 * One call of a row kernel (wasm/gates.ts): operands in place when they are resident and
 * row-shaped, else staged into the per-call arena; outputs written in place when resident.
 * Use: `input`/`output`/`address` entries (in the kernel's order), `run`, then `finish`.
 */
class RowCall {
  private readonly ar;
  private readonly E: number;
  private readonly entries: number[];
  private readonly staged: [Tensor, number][] = [];
  private readonly copies: [FloatStorage, number, number][] = [];
  private tbl = 0;
  private view: FloatStorage | null = null;
  /** Whether the caller reads a scratch result after the job ({@link scratch}). */
  private readsBack = false;

  constructor(
    private readonly rt: WasmRuntime,
    private readonly dt: 'f32' | 'f64',
    rows: number,
    private readonly nb: number,
    private readonly W: number,
  ) {
    this.E = dt === 'f32' ? 4 : 8;
    this.ar = wasmArena(rt);
    this.entries = [rows, nb, W];
  }

  /** Opens the arena (after every `allocateOut`) and reserves the table for `n` operands. */
  open(n: number): this {
    this.ar.reset();
    this.tbl = this.ar.alloc(4 * (3 + 3 * n));
    return this;
  }

  /** An input of the common shape (any layout). */
  input(t: Tensor): this {
    const E = this.E;
    const rs = residentAddr(t) >= 0 ? rowStrides(t) : null;
    if (rs) {
      this.entries.push(residentAddr(t), rs[0] * E, rs[1] * E);
      return this;
    }
    const at = this.ar.alloc(t.size * E);
    this.staged.push([t, at]);
    this.entries.push(at, this.nb * this.W * E, this.W * E);
    return this;
  }

  /** An output `out` (contiguous, `width` elements per row). */
  output(out: FloatStorage, width = this.W): this {
    const E = this.E;
    let at = storageAddr(out);
    if (at < 0) {
      at = this.ar.alloc(out.length * E);
      this.copies.push([out, at, out.length]);
    }
    this.entries.push(at, this.nb * width * E, width * E);
    return this;
  }

  /** A block of `t`'s elements (staged), address only. */
  staging(t: Tensor): this {
    const at = this.ar.alloc(t.size * this.E);
    this.staged.push([t, at]);
    this.entries.push(at, 0, 0);
    return this;
  }

  /** A zeroed float64 scratch of n values, address only; returns its address via `at`. */
  scratch(n: number, at: (addr: number) => void): this {
    this.readsBack = true;
    const a = this.ar.alloc(n * 8);
    at(a);
    this.entries.push(a, 0, 0);
    return this;
  }

  /** Commits the arena, writes the table, stages the inputs, calls `before`, runs map `name` over [0, total). */
  run(name: string, total: number, work: number, before?: () => void): void {
    this.ar.commit();
    const view = (this.view = this.dt === 'f32' ? this.ar.f32 : this.ar.f64);
    new Int32Array(this.ar.u8.buffer, this.tbl, this.entries.length).set(this.entries);
    for (const [t, at] of this.staged) stageGate(view, at, this.E, t);
    before?.();
    // nothing read back afterwards: the job may be deferred (wasm/runtime.ts)
    runMap(this.rt, name, total, work, [this.tbl], this.copies.length === 0 && !this.readsBack ? 'scratch' : false);
  }

  /** Copies the non-resident outputs out and closes the arena. */
  finish(): void {
    const E = this.E;
    for (const [out, at, n] of this.copies) out.set(this.view!.subarray(at / E, at / E + n));
    this.ar.close();
  }
}

/** `[rows, nb, W]` of a shape read as rows of its last axis. */
function rowShape(shape: readonly number[]): [number, number, number] {
  const nd = shape.length;
  const W = nd > 0 ? shape[nd - 1] : 1;
  const n = shape.reduce((p, d) => p * d, 1);
  return [W === 0 ? 0 : n / W, nd >= 2 ? shape[nd - 2] : 1, W];
}

/** Runs flat gate `kernel` on `ins` (one shape; a mask last when `masked`); its outputs, shaped as ins[0]. */
function runFlat(kernel: FlatGate, masked: boolean, ins: readonly Tensor[], outs: number): Tensor[] | null {
  const rt = wasmRuntime();
  if (!rt) return null;
  const x = ins[0];
  const dt = x.dtype as 'f32' | 'f64';
  const [rows, nb, W] = rowShape(x.shape);
  const results = Array.from({ length: outs }, () => allocateOut(dt, x.size, false) as FloatStorage);
  const call = new RowCall(rt, dt, rows, nb, W).open(ins.length + outs);
  for (const t of ins) call.input(t);
  for (const o of results) call.output(o);
  call.run(flatGateName(kernel, masked, dt), rows, x.size * (ins.length + outs));
  call.finish();
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
  const [rows, nb] = rowShape(z.shape);
  const out = allocateOut(dt, 2 * z.size, false) as FloatStorage;
  const call = new RowCall(rt, dt, rows, nb, Z).open(3);
  call
    .input(z)
    .output(out, 2 * Z)
    .staging(gammaBeta(gamma, beta));
  call.run(`gate_qk_${dt}`, rows, 3 * z.size);
  call.finish();
  return fromStorage(out, [...z.shape.slice(0, -1), 2 * Z]);
}

/** `[γ0 | γ1 | β0 | β1]` as one row. */
function gammaBeta(gamma: Tensor, beta: Tensor): Tensor {
  const Z = gamma.shape[1];
  const gb = allocate(gamma.dtype, 4 * Z) as FloatStorage;
  gb.set(gamma.isContiguous() ? (gamma.storage as FloatStorage).subarray(gamma.offset, gamma.offset + 2 * Z) : (copyCpu(gamma).storage as FloatStorage));
  gb.set(beta.isContiguous() ? (beta.storage as FloatStorage).subarray(beta.offset, beta.offset + 2 * Z) : (copyCpu(beta).storage as FloatStorage), 2 * Z);
  return fromStorage(gb, [4 * Z]);
}

/** SIMD `gateQKGrad`, or null: dz, and the parameter sums as float64 partials per block of rows, added in block order. */
export function gateQKGradSimd(z: Tensor, gamma: Tensor, gq: Tensor, gk: Tensor): [Tensor, Tensor, Tensor] | null {
  if (!fits([z, gq, gk])) return null;
  const Z = z.shape[z.ndim - 1];
  if (gamma.dtype !== z.dtype || gamma.ndim !== 2 || gamma.shape[0] !== 2 || gamma.shape[1] !== Z) return null;
  const rt = wasmRuntime();
  if (!rt) return null;
  const dt = z.dtype as 'f32' | 'f64';
  const [rows, nb] = rowShape(z.shape);
  const blocks = Math.ceil(rows / QK_BLOCK);
  const dz = allocateOut(dt, z.size, false) as FloatStorage;
  let pacc = 0;
  const n = blocks * 4 * Z;
  const call = new RowCall(rt, dt, rows, nb, Z).open(6);
  call
    .input(z)
    .input(gq)
    .input(gk)
    .output(dz)
    .staging(gamma)
    .scratch(n, (a) => (pacc = a));
  const ar = wasmArena(rt);
  call.run(`gate_qkgrad_${dt}`, blocks, 4 * z.size, () => ar.f64.fill(0, pacc / 8, pacc / 8 + n));
  const acc = ar.f64.subarray(pacc / 8, pacc / 8 + n);
  const sums = new Float64Array(4 * Z);
  for (let b = 0; b < blocks; b++) for (let i = 0; i < 4 * Z; i++) sums[i] += acc[b * 4 * Z + i];
  call.finish();
  const dg = allocate(dt, 2 * Z) as FloatStorage,
    db = allocate(dt, 2 * Z) as FloatStorage;
  dg.set(sums.subarray(0, 2 * Z));
  db.set(sums.subarray(2 * Z));
  return [fromStorage(dz, z.shape), fromStorage(dg, [2, Z]), fromStorage(db, [2, Z])];
}
