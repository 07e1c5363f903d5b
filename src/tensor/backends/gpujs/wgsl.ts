/**
 * WGSL compute shaders run beside the gpu.js kernels on the same Dawn device (webgpu mode only):
 * what gpu.js cannot express — workgroup-shared tiles. The worker (worker.ts) compiles a shader
 * on first use, binds gpu.js's own result buffers as inputs and wraps the output as a gpu.js
 * pipeline result, so WGSL and gpu.js kernels consume each other's outputs without copies.
 *
 * The WGSL kernels: `matmul` (tiled) and `softmax` (one workgroup per row, tree reductions in
 * workgroup memory). Selection, for both: `setGpuKernels('wgsl' | 'gpujs')` or
 * `MEGA_GPU_KERNELS=wgsl|gpujs`; the default is WGSL where the mode is webgpu (headless-gl has no
 * WGSL).
 */
import { sizeOf } from '../../shape.js';
import type { Tensor } from '../../tensor.js';
import { GpuError, type GpuData } from './device.js';
import { bstrides, coalesce, dev, done, operandOf, wrap } from './launch.js';

/** Which kernels run `matmul` and `softmax` on the gpujs backend: the WGSL shaders or gpu.js's. */
export type GpuKernels = 'wgsl' | 'gpujs';

let choice: GpuKernels | null = null;

/** Selects the gpujs matmul / softmax kernels (null: the default, see {@link gpuKernels}). */
export function setGpuKernels(k: GpuKernels | null): void {
  if (k !== null && k !== 'wgsl' && k !== 'gpujs') throw new GpuError(`unknown matmul kernel '${k}' (wgsl | gpujs)`);
  choice = k;
}

/** The kernels in use: the selection, else MEGA_GPU_KERNELS, else WGSL in webgpu mode. */
export function gpuKernels(): GpuKernels {
  const env = process.env.MEGA_GPU_KERNELS;
  const k = choice ?? (env === 'wgsl' || env === 'gpujs' ? env : null);
  const webgpu = dev().info.mode === 'webgpu';
  if (k === 'wgsl' && !webgpu) throw new GpuError(`the WGSL kernels need the webgpu mode (the gpujs backend runs ${dev().info.mode})`);
  return k ?? (webgpu ? 'wgsl' : 'gpujs');
}

/** Output tile edge of the matmul shader: a 16 × 16 workgroup computes a 64 × 64 block (4 × 4 per thread). */
const TILE = 64;

/**
 * Batched matmul `C[b] = A[b] · B[b]`: 64 × 64 output blocks per workgroup of 16 × 16 threads,
 * each thread 4 × 4 outputs (register blocking); A and B go through workgroup-shared 64 × 16
 * and 16 × 64 tiles. Inputs are read through offsets and strides (i32: views, transposes).
 */
export const MATMUL_WGSL = /* wgsl */ `
struct P { M: i32, N: i32, K: i32, oa: i32, ob: i32, am: i32, ak: i32, bk: i32, bn: i32, ab: i32, bb: i32, nb: i32 };
@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<uniform> p: P;
var<workgroup> As: array<array<f32, 64>, 16>; // [k][m]
var<workgroup> Bs: array<array<f32, 64>, 16>; // [k][n]

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tx = i32(lid.x);
  let ty = i32(lid.y);
  let b = i32(wg.z);
  let m0 = i32(wg.y) * 64;
  let n0 = i32(wg.x) * 64;
  let abase = p.oa + b * p.ab;
  let bbase = p.ob + b * p.bb;
  let t = ty * 16 + tx; // 0..255
  var acc: array<array<f32, 4>, 4>;
  for (var i = 0; i < 4; i++) { for (var j = 0; j < 4; j++) { acc[i][j] = 0.0; } }
  for (var k0 = 0; k0 < p.K; k0 += 16) {
    // 64 × 16 of A and 16 × 64 of B: 1024 values each, 4 per thread
    for (var r = 0; r < 4; r++) {
      let e = t + r * 256;
      let am = e / 16; let ak = e % 16;
      let gm = m0 + am; let gk = k0 + ak;
      var va = 0.0;
      if (gm < p.M && gk < p.K) { va = A[abase + gm * p.am + gk * p.ak]; }
      As[ak][am] = va;
      let bk = e / 64; let bn = e % 64;
      let hk = k0 + bk; let hn = n0 + bn;
      var vb = 0.0;
      if (hk < p.K && hn < p.N) { vb = B[bbase + hk * p.bk + hn * p.bn]; }
      Bs[bk][bn] = vb;
    }
    workgroupBarrier();
    for (var k = 0; k < 16; k++) {
      var a: array<f32, 4>;
      var bv: array<f32, 4>;
      for (var i = 0; i < 4; i++) { a[i] = As[k][ty + 16 * i]; bv[i] = Bs[k][tx + 16 * i]; }
      for (var i = 0; i < 4; i++) { for (var j = 0; j < 4; j++) { acc[i][j] += a[i] * bv[j]; } }
    }
    workgroupBarrier();
  }
  for (var i = 0; i < 4; i++) {
    for (var j = 0; j < 4; j++) {
      let m = m0 + ty + 16 * i;
      let n = n0 + tx + 16 * j;
      if (m < p.M && n < p.N) { C[(b * p.M + m) * p.N + n] = acc[i][j]; }
    }
  }
}
`;

/** Largest workgroup count per dispatch dimension (WebGPU's default limit). */
const MAX_GROUPS = 65535;

/**
 * `matmul` through the WGSL shader; null when the shapes do not suit it (more than one batch
 * axis after coalescing, too many workgroups, indices beyond i32): the gpu.js kernel runs then.
 */
export function matmulWgsl(a: Tensor, b: Tensor, batch: number[], M: number, K: number, N: number): Tensor | null {
  const temps: GpuData[] = [];
  try {
    const A = operandOf(a, temps),
      B = operandOf(b, temps);
    const ab = bstrides({ shape: a.shape.slice(0, -2) }, A.strides.slice(0, -2), batch);
    const bb = bstrides({ shape: b.shape.slice(0, -2) }, B.strides.slice(0, -2), batch);
    const c = coalesce(batch, [ab, bb]);
    if (c.shape.length > 1) return null;
    const Z = sizeOf(c.shape);
    const gx = Math.ceil(N / TILE),
      gy = Math.ceil(M / TILE);
    if (gx > MAX_GROUPS || gy > MAX_GROUPS || Z > MAX_GROUPS || Z * M * N >= 2 ** 31) return null;
    const nd = a.ndim,
      mdb = b.ndim;
    const params = [
      M,
      N,
      K,
      A.offset,
      B.offset,
      A.strides[nd - 2],
      A.strides[nd - 1],
      B.strides[mdb - 2],
      B.strides[mdb - 1],
      c.shape.length ? c.strides[0][0] : 0,
      c.shape.length ? c.strides[1][0] : 0,
      Math.max(1, Z),
    ];
    const out = dev().runWgsl('matmul', () => MATMUL_WGSL, [gx, gy, Math.max(1, Z)], [A.data, B.data], params, [N, M, Math.max(1, Z)], a.dtype);
    return wrap(out, [...batch, M, N]);
  } finally {
    done(temps);
  }
}

/**
 * Softmax (or log-softmax) of rows: one 256-thread workgroup per row; the row maximum and the sum
 * of exponentials are tree reductions in workgroup memory; rows are read through an offset, a row
 * stride and an element stride.
 */
export const SOFTMAX_WGSL = /* wgsl */ `
struct P { rows: i32, n: i32, off: i32, rs: i32, cs: i32, lg: i32, p0: i32, p1: i32 };
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@group(0) @binding(2) var<uniform> p: P;
var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row = i32(wg.x) + i32(wg.y) * 65535;
  if (row >= p.rows) { return; }
  let t = i32(lid.x);
  let base = p.off + row * p.rs;
  var m = -3.402823e38;
  for (var j = t; j < p.n; j += 256) { m = max(m, X[base + j * p.cs]); }
  red[t] = m;
  workgroupBarrier();
  for (var s = 128; s > 0; s = s / 2) {
    if (t < s) { red[t] = max(red[t], red[t + s]); }
    workgroupBarrier();
  }
  let mx = red[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var j = t; j < p.n; j += 256) { sum += exp(X[base + j * p.cs] - mx); }
  red[t] = sum;
  workgroupBarrier();
  for (var s = 128; s > 0; s = s / 2) {
    if (t < s) { red[t] = red[t] + red[t + s]; }
    workgroupBarrier();
  }
  let lse = mx + log(red[0]);
  for (var j = t; j < p.n; j += 256) {
    let v = X[base + j * p.cs] - lse;
    if (p.lg != 0) { Y[row * p.n + j] = v; } else { Y[row * p.n + j] = exp(v); }
  }
}
`;

/**
 * `softmax` along the last axis through the WGSL shader; null when the rows are not one strided
 * axis after coalescing (the gpu.js kernels run then).
 */
export function softmaxWgsl(x: Tensor, log: boolean): Tensor | null {
  const temps: GpuData[] = [];
  try {
    const X = operandOf(x, temps);
    const n = x.shape[x.ndim - 1];
    const c = coalesce(x.shape.slice(0, -1), [X.strides.slice(0, -1)]);
    if (c.shape.length > 1) return null;
    const rows = sizeOf(c.shape);
    const gy = Math.ceil(rows / MAX_GROUPS);
    if (gy > MAX_GROUPS || rows * n >= 2 ** 31) return null;
    const params = [rows, n, X.offset, c.shape.length ? c.strides[0][0] : 0, X.strides[x.ndim - 1], log ? 1 : 0, 0, 0];
    const out = dev().runWgsl('softmax', () => SOFTMAX_WGSL, [Math.min(rows, MAX_GROUPS), gy, 1], [X.data], params, [n, rows], x.dtype);
    return wrap(out, x.shape);
  } finally {
    done(temps);
  }
}
