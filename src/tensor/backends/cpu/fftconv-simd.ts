/**
 * WebAssembly SIMD path of the CPU `fftConv` kernel (see wasm/fft.ts for the transform): rows are
 * grouped R at a time (8 in f32, 4 in f64) into one vectorised complex FFT; groups whose rows use
 * the same kernel rows (the broadcast of one kernel over the batch) form a class whose kernel
 * spectra are computed once per task. Short rows skip the transforms: the same groups and tasks
 * run a direct sum (wasm/dconv.ts) where it costs less ({@link fftConvRegime}). Returns null
 * where the plain-TS kernel should run (tiny products, other dtypes, SIMD off); that kernel
 * (fftconv.ts, float64 FFT or direct sum) is the reference this path is tested against.
 *
 * Tasks (a class, a range of its groups) run on the wasm pool; each task's results depend only
 * on its inputs, so results are deterministic for any thread count.
 */
import { type FloatStorage } from '../../dtype.js';
import { broadcastShapes, sizeOf } from '../../shape.js';
import { fromStorage, type Tensor } from '../../tensor.js';
import { checkFftConv } from '../checks.js';
import { nextPow2, rowIndex } from './fftconv.js';
import { getNumThreads } from './pool.js';
import { allocateOut } from './resident.js';
import { inPlace, residentAddr, stage, storageAddr } from './simd.js';
import { directScratchBytes } from './wasm/dconv.js';
import { FFT_CFG, FFT_CFG_BYTES, groupRows } from './wasm/fft.js';
import { OP_FFT, runJob, simdTuning, wasmArena, wasmRuntime } from './wasm/runtime.js';

const tables = new Map<string, { tw: Float64Array; twi: Float64Array; brev: Int32Array }>();
/** Twiddles (cos, ∓sin) of size n and the bit-reversal permutation. */
function fftTables(n: number): { tw: Float64Array; twi: Float64Array; brev: Int32Array } {
  const key = String(n);
  let t = tables.get(key);
  if (t) return t;
  const tw = new Float64Array(n),
    twi = new Float64Array(n);
  for (let j = 0; j < n / 2; j++) {
    const a = (2 * Math.PI * j) / n;
    tw[2 * j] = twi[2 * j] = Math.cos(a);
    tw[2 * j + 1] = -Math.sin(a);
    twi[2 * j + 1] = Math.sin(a);
  }
  const logn = Math.round(Math.log2(n));
  const brev = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let r = 0;
    for (let b = 0; b < logn; b++) r |= ((i >> b) & 1) << (logn - 1 - b);
    brev[i] = r;
  }
  t = { tw, twi, brev };
  tables.set(key, t);
  return t;
}

/**
 * Direct-sum regime of the SIMD path: products `length·Lk ≤ SIMD_DIRECT_WORK · n·log2 n` go to
 * the plain-TS direct sum. The TS kernel's own choice uses 6 (its scalar FFT against its scalar
 * sum); against the SIMD FFT the direct sum loses much earlier. Measured (1 thread, CPU time per
 * call, x 32 × 32 × L, bidirectional kernel 2L − 1, the EMA of the main job's model): L 24
 * 0.88 → 0.53 ms, L 40 2.2 → 0.36 ms, L 60 5.0 → 0.64 ms with 1 instead of 6; L 16 equal.
 */
const SIMD_DIRECT_WORK = 1;
/**
 * Default of `fftConvLimits.directWork`. Measured (f32, 2 threads, x [B, D, L], one call,
 * direct / FFT time): causal kernels (Lk = L, Σ terms = L(L+1)/2) L 24 0.67, L 40 0.48, L 64 0.84,
 * L 128 1.10; bidirectional (Lk = 2L − 1, L² terms) L 24 0.74, L 40 0.71, L 64 1.21 — terms /
 * n·log2 n of 0.8, 0.9, 2.3, 4.0 and 1.5, 1.8, 4.6: the crossover lies near 3.
 */
const DIRECT_VS_FFT = 3;

/**
 * Tunables (exported so tests can force either SIMD regime). `directWork`: rows whose direct sum
 * ({@link directTerms} multiply-adds, wasm/dconv.ts) costs at most `directWork · n·log2 n` are
 * summed directly instead of transformed.
 */
export const fftConvLimits = { directWork: DIRECT_VS_FFT };

/**
 * Which kernel convolves rows of these lengths: `plain` — the plain-TS kernel's direct sum (tiny
 * products, degenerate sizes), `direct` — the SIMD direct sum, `fft` — the SIMD FFT.
 */
export function fftConvRegime(Lx: number, Lk: number, start: number, length: number): 'plain' | 'direct' | 'fft' {
  const n = fftSize(Lx, Lk, start, length);
  if (Lx === 0 || Lk === 0 || length === 0 || length * Lk <= SIMD_DIRECT_WORK * n * Math.log2(n)) return 'plain';
  return directTerms(Lx, Lk, start, length) <= fftConvLimits.directWork * n * Math.log2(n) ? 'direct' : 'fft';
}

/** Terms of one row's direct sum: Σ over outputs t of |{j ∈ [0, Lk) : start + t − j ∈ [0, Lx)}|. */
export function directTerms(Lx: number, Lk: number, start: number, length: number): number {
  let terms = 0;
  for (let t = 0; t < length; t++) terms += Math.max(0, Math.min(Lk - 1, start + t) - Math.max(0, start + t - Lx + 1) + 1);
  return terms;
}

/**
 * FFT size n: a power of two with the operands fitting (n ≥ Lx, Lk) and no wrap-around in the
 * outputs kept. A size-n transform gives the circular convolution `Σ_j full[m + j·n]`; for the
 * outputs m ∈ [start, start + length) ∩ [0, full) the terms j ≠ 0 vanish when
 * n ≥ full − max(0, start) and n ≥ min(full, start + length). So n need not cover the whole
 * linear convolution `full = Lx + Lk − 1`: the EMA's bidirectional kernel (Lk = 2L − 1, outputs
 * [L − 1, 2L − 1)) needs 2L instead of 4L, and so does its backward with respect to x.
 */
export function fftSize(Lx: number, Lk: number, start: number, length: number): number {
  const full = Lx + Lk - 1;
  return nextPow2(Math.max(Lx, Lk, full - Math.max(0, start), Math.min(full, start + length)));
}

/**
 * How the rows are laid out for the transforms: groups of R rows (R/2 lane pairs), classes of
 * groups that share kernel rows (the broadcast of one kernel over the batch: the class's kernel
 * spectra are computed once per task), tasks over the classes' groups.
 */
interface Plan {
  /** Per output row: its x row (row-major over x's leading axes). */
  xRow: Int32Array;
  /** Per class, R kernel rows (-1: a zero row). */
  classK: Int32Array;
  /** Per group, R output rows (-1: a dummy lane). */
  groups: Int32Array;
  /** Per task: class, first group, end group. */
  tasks: Int32Array;
}

const plans = new Map<string, Plan>();

/**
 * The plan for these leading shapes (cached: the same shapes come back every step). Rows with
 * one kernel row form lists in first-appearance order; when every list has the same length m,
 * R kernel rows make a class of m groups (group j = the j-th row of each list), else groups are
 * R consecutive rows. With `threads` > 1 classes are split into about 2·threads tasks.
 */
function planOf(xLead: readonly number[], kLead: readonly number[], outLead: readonly number[], R: number, threads: number): Plan {
  const key = `${R}|${threads}|${xLead.join(',')}|${kLead.join(',')}`;
  const hit = plans.get(key);
  if (hit) return hit;
  const rows = sizeOf(outLead);
  const kRow = rowIndex(kLead, outLead);
  const lists = new Map<number, number[]>();
  for (let r = 0; r < rows; r++) {
    const l = lists.get(kRow[r]);
    if (l) l.push(r);
    else lists.set(kRow[r], [r]);
  }
  const classK: number[] = [];
  const groups: number[] = [];
  const classGroups: [number, number][] = []; // per class: [first group, count]
  const m = lists.values().next().value!.length;
  if ([...lists.values()].every((l) => l.length === m)) {
    const ks = [...lists.keys()];
    for (let c0 = 0; c0 < ks.length; c0 += R) {
      const chunk = ks.slice(c0, c0 + R);
      for (let i = 0; i < R; i++) classK.push(chunk[i] ?? -1);
      classGroups.push([groups.length / R, m]);
      for (let j = 0; j < m; j++) for (let i = 0; i < R; i++) groups.push(i < chunk.length ? lists.get(chunk[i])![j] : -1);
    }
  } else {
    for (let r0 = 0; r0 < rows; r0 += R) {
      classGroups.push([groups.length / R, 1]);
      for (let i = 0; i < R; i++) {
        groups.push(r0 + i < rows ? r0 + i : -1);
        classK.push(r0 + i < rows ? kRow[r0 + i] : -1);
      }
    }
  }
  const numClasses = classGroups.length;
  const split = threads > 1 && numClasses < 2 * threads ? Math.ceil((2 * threads) / numClasses) : 1;
  const tasks: number[] = [];
  classGroups.forEach(([g0, cnt], c) => {
    const per = Math.ceil(cnt / Math.min(split, cnt));
    for (let g = g0; g < g0 + cnt; g += per) tasks.push(c, g, Math.min(g0 + cnt, g + per));
  });
  const plan = { xRow: rowIndex(xLead, outLead), classK: Int32Array.from(classK), groups: Int32Array.from(groups), tasks: Int32Array.from(tasks) };
  if (plans.size >= 64) plans.clear();
  plans.set(key, plan);
  return plan;
}

/** SIMD `fftConv`, or null (same contract as `fftConvCpu`). */
export function fftConvSimd(x: Tensor, k: Tensor, start: number, length: number): Tensor | null {
  checkFftConv(x, k, length);
  const Lx = x.shape[x.ndim - 1],
    Lk = k.shape[k.ndim - 1];
  const full = Lx + Lk - 1;
  const n = fftSize(Lx, Lk, start, length);
  const how = fftConvRegime(Lx, Lk, start, length);
  if (how === 'plain') return null;
  if (!Number.isInteger(start) || Math.abs(start) > 2 ** 30 || n > 2 ** 24) return null;
  const rt = wasmRuntime();
  if (!rt) return null;
  const direct = how === 'direct';
  const xLead = x.shape.slice(0, -1),
    kLead = k.shape.slice(0, -1);
  const outLead = broadcastShapes(xLead, kLead, 'fftConv');
  const rows = sizeOf(outLead);
  if (rows === 0) return fromStorage(allocateOut(x.dtype, 0), [...outLead, length]);
  const dt = x.dtype as 'f32' | 'f64'; // floating (checkFftConv)
  const E = dt === 'f32' ? 4 : 8;
  const R = groupRows(dt);
  const threads = getNumThreads();
  const par = threads > 1 && (simdTuning.force || rows * n >= 1 << 16);
  const { xRow, classK, groups, tasks } = planOf(xLead, kLead, outLead, R, par ? threads : 1);
  const numClasses = classK.length / R,
    numGroups = groups.length / R,
    numTasks = tasks.length / 3;

  // ---- wasm memory
  const out = allocateOut(dt, rows * length, false) as FloatStorage;
  // x read in place when resident: contiguous, or any layout with a positive time stride (e.g.
  // the [B, D, L] view of a time-major [L, B, D] tensor) — rows are then addressed one by one
  const xStep = x.strides[x.ndim - 1];
  const ix = inPlace(x) >= 0 ? inPlace(x) : Lx > 1 && xStep > 0 ? residentAddr(x) : -1,
    ik = inPlace(k),
    io = storageAddr(out);
  const strided = ix >= 0 && !x.isContiguous();
  /** Byte offset of x's row `xr` (row-major over its leading axes) from its first element. */
  const xRowOffset = (xr: number): number => {
    if (!strided) return xr * Lx * E;
    let off = 0;
    for (let a = x.ndim - 2; a >= 0; a--) {
      const d = x.shape[a];
      off += (xr % d) * x.strides[a];
      xr = Math.floor(xr / d);
    }
    return off * E;
  };
  const ar = wasmArena(rt);
  ar.reset();
  const cfg = ar.alloc(FFT_CFG_BYTES);
  const px = ix >= 0 ? ix : ar.alloc(x.size * E),
    pk = ik >= 0 ? ik : ar.alloc(k.size * E);
  // zero rows (dummy lanes, absent kernel rows); a dummy lane of a strided x reads Lx elements
  // xStep apart
  const dummyLanes = strided && groups.includes(-1);
  const zeroLen = Math.max(Lx, Lk, dummyLanes ? (Lx - 1) * xStep + 1 : 0);
  const zero = ar.alloc(zeroLen * E),
    dummy = ar.alloc(length * E);
  const po = io >= 0 ? io : ar.alloc(rows * length * E);
  const ptw = direct ? 0 : ar.alloc(n * E),
    ptwi = direct ? 0 : ar.alloc(n * E),
    pbrev = direct ? 0 : ar.alloc(n * 4);
  const pclasses = ar.alloc(numClasses * R * 4),
    pgroups = ar.alloc(numGroups * 2 * R * 4),
    ptasks = ar.alloc(numTasks * 12);
  const scrBytes = direct ? directScratchBytes(Lx, Lk, length) : n * 64 + (n / 2 + 1) * 64;
  const scr = ar.alloc(threads * scrBytes);
  ar.commit();
  const view = (dt === 'f32' ? ar.f32 : ar.f64) as FloatStorage;
  if (ix < 0) stage(view, px, E, x, true);
  if (ik < 0) stage(view, pk, E, k, true);
  view.fill(0, zero / E, zero / E + zeroLen);
  const i32 = new Int32Array(rt.memory.buffer);
  if (!direct) {
    const { tw, twi, brev } = fftTables(n);
    view.set(tw, ptw / E);
    view.set(twi, ptwi / E);
    i32.set(brev, pbrev / 4);
  }
  const pc = pclasses / 4,
    pg = pgroups / 4;
  for (let i = 0; i < classK.length; i++) i32[pc + i] = classK[i] < 0 ? zero : pk + classK[i] * Lk * E;
  for (let gi = 0; gi < numGroups; gi++) {
    for (let i = 0; i < R; i++) {
      const r = groups[gi * R + i];
      i32[pg + gi * 2 * R + i] = r < 0 ? zero : px + xRowOffset(xRow[r]);
      i32[pg + gi * 2 * R + R + i] = r < 0 ? dummy : po + r * length * E;
    }
  }
  i32.set(tasks, ptasks / 4);
  const C = FFT_CFG;
  const cf = cfg / 4;
  i32[cf + C.N / 4] = n;
  i32[cf + C.TW / 4] = ptw;
  i32[cf + C.TWI / 4] = ptwi;
  i32[cf + C.BREV / 4] = pbrev;
  i32[cf + C.SCR / 4] = scr;
  i32[cf + C.SCRB / 4] = scrBytes;
  i32[cf + C.GROUPS / 4] = pgroups;
  i32[cf + C.CLASSES / 4] = pclasses;
  i32[cf + C.TASKS / 4] = ptasks;
  i32[cf + C.LX / 4] = Lx;
  i32[cf + C.LK / 4] = Lk;
  i32[cf + C.START / 4] = start;
  i32[cf + C.LEN / 4] = length;
  i32[cf + C.FULL / 4] = full;
  i32[cf + C.XSTEP / 4] = strided ? xStep * E : E;
  // (a resident output is not read back here: the job may be deferred, wasm/runtime.ts)
  runJob(
    rt,
    par,
    numTasks,
    (P) => {
      P[0] = OP_FFT;
      P[1] = (direct ? 2 : 0) + (dt === 'f32' ? 0 : 1);
      P[2] = cfg;
    },
    io >= 0 ? 'scratch' : false,
  );
  if (io < 0) out.set(view.subarray(po / E, po / E + rows * length));
  ar.close();
  return fromStorage(out, [...outLead, length]);
}
