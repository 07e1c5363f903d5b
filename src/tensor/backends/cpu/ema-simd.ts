/**
 * WebAssembly path of the CPU EMA kernel build and its VJP (wasm/ema.ts): the arithmetic of
 * `emaKernelCpu` / `emaKernelGradCpu` (fused.ts) instruction for instruction, f64x2 over the
 * inner loops, rows d split into tasks on the wasm pool. Results are bitwise equal to the
 * plain-TS kernels — the reference they are tested against — for any thread count.
 *
 * The exps run in wasm (`fdexp`, fdlibm's algorithm, which V8's `Math.exp` also runs); the path
 * checks once that the two agree on sample arguments and otherwise declines (returns null), as
 * it does for small sizes and with SIMD off. The D·N logs stay in JS (`Math.log`).
 */
import type { FloatStorage } from '../../dtype.js';
import { fromStorage, type Tensor } from '../../tensor.js';
import { checkCoefQ, checkEmaGrad } from '../checks.js';
import { dense } from './elementwise.js';
import { getNumThreads } from './pool.js';
import { allocateOut } from './resident.js';
import { Call } from './simd-fused.js';
import { EMA_CFG, EMA_CFG_BYTES, emaBlock, emaScratchBytes } from './wasm/ema.js';
import { OP_EMA, runJob, simdTuning, wasmRuntime, type WasmRuntime } from './wasm/runtime.js';

/** Smallest D·N·L for the wasm path (below, the plain-TS loops cost less than the call). */
const MIN_WORK = 1 << 12;

let fdexpOk: boolean | undefined;
/** Whether wasm `fdexp` equals `Math.exp` bitwise on sample arguments (the kernels' range and the special cases). */
function fdexpAgrees(rt: WasmRuntime): boolean {
  if (fdexpOk !== undefined) return fdexpOk;
  const fdexp = rt.main.ex.fdexp as (x: number) => number;
  const xs = [0, -0, 1, -1, 0.5, 1e-300, -1e-9, 0.3465, -0.3466, 1.04, -1.04, 700, 709.78, 710, -708, -745, -746, Infinity, -Infinity, NaN];
  for (let i = 1; i <= 400; i++) xs.push(-i * 1.6180339887, -i * 0.0123456789, i * 1.7320508);
  for (let j = 1; j < 64; j++) xs.push(j * Math.log(0.9), j * 32 * Math.log(0.37));
  fdexpOk = xs.every((x) => Object.is(fdexp(x), Math.exp(x)));
  return fdexpOk;
}

/** The runtime when the wasm path applies to D·N·L = `work` of dtype `dt`, else null. */
function eligible(dt: string, work: number): WasmRuntime | null {
  if (dt !== 'f32' && dt !== 'f64') return null;
  if (work === 0 || (!simdTuning.force && work < MIN_WORK)) return null;
  const rt = wasmRuntime();
  return rt && fdexpAgrees(rt) ? rt : null;
}

/**
 * Runs `ema_<dt>` (grad false) or `emagrad_<dt>` over the D rows: per (d, n) the f64 record
 * (coef, ln q, q) is written into the arena; `g` (the VJP's output gradient) is read in place
 * when resident and contiguous.
 */
function run(rt: WasmRuntime, coef: Tensor, q: Tensor, L: number, out: FloatStorage, g: Tensor | null): void {
  const [D, N] = coef.shape;
  const dt = coef.dtype as 'f32' | 'f64';
  const threads = getNumThreads();
  // every wasm call splits its rows over the pool: the pool's threads poll between jobs, so a
  // hand-off costs microseconds, and even the small EMAs are exp-bound (ListOps' 64 × 8 × 24,
  // 2 threads, alternating steps in one process: 7.05 ms per step, 7.31 when it split from
  // D·N·L = 65536 on)
  const par = threads > 1;
  const tasks = par ? Math.min(D, simdTuning.force ? D : 4 * threads) : 1;
  const per = Math.ceil(D / tasks);
  const c = dense(coef),
    qq = dense(q);
  const call = new Call(dt);
  const cfg = call.scratch(EMA_CFG_BYTES, 1),
    tbl = call.scratch(D * N * 3, 8);
  const pg = g ? call.input(g) : -1;
  const po = call.output(out, out.length);
  const scrBytes = emaScratchBytes(L);
  const scr = call.scratch(threads * scrBytes, 1);
  call.open();
  const f64 = call.ar.f64;
  for (let i = 0; i < D * N; i++) {
    f64[tbl / 8 + 3 * i] = c[i];
    f64[tbl / 8 + 3 * i + 1] = Math.log(qq[i]);
    f64[tbl / 8 + 3 * i + 2] = qq[i];
  }
  const i32 = new Int32Array(rt.memory.buffer, cfg, EMA_CFG_BYTES / 4);
  const C = EMA_CFG;
  i32[C.D / 4] = D;
  i32[C.N / 4] = N;
  i32[C.L / 4] = L;
  i32[C.TBL / 4] = tbl;
  i32[C.OUT / 4] = po;
  i32[C.G / 4] = pg;
  i32[C.SCR / 4] = scr;
  i32[C.SCRB / 4] = scrBytes;
  i32[C.PER / 4] = per;
  i32[C.BLK / 4] = emaBlock(L);
  runJob(
    rt,
    par,
    Math.ceil(D / per),
    (P) => {
      P[0] = OP_EMA;
      P[1] = (g ? 2 : 0) + (dt === 'f32' ? 0 : 1);
      P[2] = cfg;
    },
    call.defer(), // (nothing read back here unless the output is copied out at close)
  );
  call.close();
}

/** Wasm `emaKernel` (bitwise equal to `emaKernelCpu`), or null where the plain-TS kernel should run. */
export function emaKernelSimd(coef: Tensor, q: Tensor, length: number): Tensor | null {
  checkCoefQ(coef, q, 'emaKernel');
  if (!Number.isInteger(length) || length < 0) return null; // the TS kernel reports it
  const [D, N] = coef.shape;
  const rt = eligible(coef.dtype, D * N * length);
  if (!rt) return null;
  const out = allocateOut(coef.dtype, D * length, false) as FloatStorage;
  run(rt, coef, q, length, out, null);
  return fromStorage(out, [D, length]);
}

/** Wasm `emaKernelGrad` (bitwise equal to `emaKernelGradCpu`), or null. */
export function emaKernelGradSimd(coef: Tensor, q: Tensor, g: Tensor): Tensor | null {
  checkCoefQ(coef, q, 'emaKernelGrad');
  checkEmaGrad(coef, g);
  const [D, N] = coef.shape;
  const L = g.shape[1];
  const rt = eligible(coef.dtype, D * N * L);
  if (!rt) return null;
  const out = allocateOut(coef.dtype, 2 * D * N) as FloatStorage;
  run(rt, coef, q, L, out, g);
  return fromStorage(out, [2, D, N]);
}
