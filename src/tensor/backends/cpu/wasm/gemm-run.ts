/**
 * The WebAssembly SIMD gemm driver: copies the operands into the shared wasm memory, packs them
 * (a parallel job), runs the macro-kernel over tiles (a second parallel job) and copies C out.
 * Called by `gemm` in ../gemm.ts after validation and shape normalisation.
 *
 * Large products are processed in groups of batches / blocks of C rows so that the memory
 * footprint stays bounded (C block ≤ `gemmLimits.cBlockBytes`); the split depends only on the
 * shapes, and every C element is computed by the same micro-kernel sequence whatever the split
 * or thread count, so results are bitwise independent of both.
 */
import { getNumThreads, splitGemmTasks } from '../pool.js';
import { GEMM_SHAPES } from './gemm.js';
import { OP_GEMM, OP_PACK, runJob, simdTuning, wasmArena, type WasmRuntime } from './runtime.js';
import { storageAddr } from '../simd.js';

type FloatArray = Float32Array | Float64Array;

/** From this many multiply-adds on, a gemm runs on the worker pool. */
export const WASM_PARALLEL_WORK = 1 << 20;
/** Smallest compute task worth handing to another thread, in multiply-adds. */
const MIN_TASK_WORK = 1 << 17;
/** Tunables (exported so tests can force the blocked paths with small sizes). */
export const gemmLimits = {
  /** Bound on the C block (bytes) held in wasm memory at once. */
  cBlockBytes: 64 << 20,
};

/** A strided gemm operand: element (b, r, c) of the logical [batch, R, C] at `off + b·bs + r·rs + c·cs`. */
export interface StridedOperand {
  data: FloatArray;
  off: number;
  rs: number;
  cs: number;
  /** batch stride (0 = one matrix broadcast over the batch) */
  bs: number;
}

/**
 * C[b] = A[b]·B[b] with A [batch, M, K] and B [batch, K, N] given as strided operands (all
 * strides ≥ 0), C [batch, M, N] contiguous. Preconditions: validated; batch, M, N, K ≥ 1.
 */
export function gemmWasm(rt: WasmRuntime, A: StridedOperand, B: StridedOperand, c: FloatArray, batch: number, M: number, N: number, K: number): void {
  const f64 = c instanceof Float64Array;
  const dt = f64 ? 'f64' : 'f32';
  const E = f64 ? 8 : 4;
  const { MR, NR } = GEMM_SHAPES[dt];
  const fnA = f64 ? 2 : 0,
    fnB = f64 ? 3 : 1,
    fnG = f64 ? 1 : 0;
  const threads = getNumThreads();

  const np = Math.ceil(N / NR);
  const aBS = batch === 1 ? 0 : A.bs,
    bBS = batch === 1 ? 0 : B.bs;
  const nA = aBS === 0 ? 1 : batch,
    nB = bBS === 0 ? 1 : batch;
  // the storage spans the operands touch (copied as they are; packing applies the strides)
  const lenA = (nA - 1) * aBS + (M - 1) * A.rs + (K - 1) * A.cs + 1;
  const lenB = (nB - 1) * bBS + (K - 1) * B.rs + (N - 1) * B.cs + 1;
  // element (i, k) of A at i*ais + k*aks; (k, j) of B at k*bks + j*bjs
  const ais = A.rs,
    aks = A.cs;
  const bks = B.rs,
    bjs = B.cs;

  // groups of batches, or (one batch) blocks of rows, so that a C block stays ≤ C_BLOCK_BYTES
  const perMatC = M * N * E;
  let gb = Math.max(1, Math.min(batch, Math.floor(gemmLimits.cBlockBytes / perMatC)));
  let mb = M; // rows per block (multiple of MR unless = M)
  if (perMatC > gemmLimits.cBlockBytes) {
    gb = 1;
    mb = Math.max(MR, Math.floor(gemmLimits.cBlockBytes / (N * E) / MR) * MR);
  }
  const mbp = Math.ceil(mb / MR); // panels per row block
  const nAg = nA === 1 ? 1 : gb,
    nBg = nB === 1 ? 1 : gb;

  // operands already in the wasm memory (resident storage) are packed from where they are, and a
  // resident C is written in place (the kernel touches only C's own elements)
  const inA = storageAddr(A.data),
    inB = storageAddr(B.data),
    inC = storageAddr(c);
  const ar = wasmArena(rt);
  ar.reset();
  const rawA = inA >= 0 ? inA + A.off * E : ar.alloc(lenA * E);
  const rawB = inB >= 0 ? inB + B.off * E : ar.alloc(lenB * E);
  const packA = ar.alloc(nAg * mbp * MR * K * E);
  const packB = ar.alloc(nBg * np * NR * K * E);
  const cScratch = inC >= 0 ? 0 : ar.alloc(gb * mb * N * E);
  ar.commit();
  const view: FloatArray = f64 ? ar.f64 : ar.f32;
  if (inA < 0) view.set(A.off === 0 && lenA === A.data.length ? A.data : A.data.subarray(A.off, A.off + lenA), rawA / E);
  if (inB < 0) view.set(B.off === 0 && lenB === B.data.length ? B.data : B.data.subarray(B.off, B.off + lenB), rawB / E);

  let bPacked = false;
  for (let b0 = 0; b0 < batch; b0 += gb) {
    const g = Math.min(gb, batch - b0);
    for (let i0 = 0; i0 < M; i0 += mb) {
      const rows = Math.min(mb, M - i0);
      const mpb = Math.ceil(rows / MR);
      const work = g * rows * N * K;
      const force = simdTuning.force;
      const par = threads > 1 && (force || work >= WASM_PARALLEL_WORK);
      // ---- pack A rows [i0, i0+rows) of the group's matrices, and B (once if broadcast)
      const aMats = nA === 1 ? 1 : g;
      const bMats = nB === 1 ? (bPacked ? 0 : 1) : g;
      const setA = packTasks(par, threads, aMats, mpb);
      const setB = packTasks(par, threads, bMats, np);
      const aSrc = rawA + (nA === 1 ? 0 : b0 * aBS * E) + i0 * ais * E;
      const bSrc = rawB + (nB === 1 ? 0 : b0 * bBS * E);
      const fillPack = (P: Float64Array) => {
        P[0] = OP_PACK;
        P[1] = setA.tasks;
        // A set
        P[2] = fnA;
        P[3] = aSrc;
        P[4] = aBS * E;
        P[5] = rows;
        P[6] = K;
        P[7] = ais * E;
        P[8] = aks * E;
        P[9] = packA;
        P[10] = mbp * MR * K * E;
        P[11] = mpb;
        P[12] = setA.ppt;
        P[13] = setA.chunks;
        P[14] = setA.mpt;
        P[15] = aMats;
        // B set (rows of the packing = columns j of op(B))
        P[16] = fnB;
        P[17] = bSrc;
        P[18] = bBS * E;
        P[19] = N;
        P[20] = K;
        P[21] = bjs * E;
        P[22] = bks * E;
        P[23] = packB;
        P[24] = np * NR * K * E;
        P[25] = np;
        P[26] = setB.ppt;
        P[27] = setB.chunks;
        P[28] = setB.mpt;
        P[29] = bMats;
      };
      runJob(rt, par, setA.tasks + setB.tasks, fillPack);
      if (nB === 1) bPacked = true;

      // ---- compute: tasks = batch groups × row-panel blocks × column-panel blocks, into C
      // (resident: in place; else a scratch block copied out below)
      const cBlock = inC >= 0 ? inC + (b0 * M + i0) * N * E : cScratch;
      const target = par ? Math.max(1, Math.min(threads * 4, Math.floor(work / (force ? 1 : MIN_TASK_WORK)))) : 1;
      const { bpt, mch, nch, ppm, ppn, tasks } = splitGemmTasks(g, mpb, np, target);
      const fillGemm = (P: Float64Array) => {
        P[0] = OP_GEMM;
        P[1] = fnG;
        P[2] = packA;
        P[3] = nA === 1 ? 0 : mbp * MR * K * E;
        P[4] = packB;
        P[5] = nB === 1 ? 0 : np * NR * K * E;
        P[6] = cBlock;
        P[7] = M * N * E;
        P[8] = N * E;
        P[9] = K;
        P[10] = mpb;
        P[11] = np;
        P[12] = g;
        P[13] = bpt;
        P[14] = mch;
        P[15] = nch;
        P[16] = ppm;
        P[17] = ppn;
        P[18] = rows;
        P[19] = N;
      };
      runJob(rt, par, tasks, fillGemm);

      // ---- copy C out (g matrices of M rows, or one block of rows: contiguous in c either way)
      if (inC < 0) {
        const v: FloatArray = f64 ? ar.f64 : ar.f32;
        c.set(v.subarray(cScratch / E, cScratch / E + g * rows * N), (b0 * M + i0) * N);
      }
    }
  }
  ar.close();
}

/**
 * How a packing set is cut into pool tasks: on one thread a single task (every matrix in one
 * wasm call); on the pool, panel chunks of one matrix when there are few matrices, else groups of
 * whole matrices, about 4 per thread.
 */
function packTasks(par: boolean, threads: number, mats: number, panels: number): { tasks: number; chunks: number; ppt: number; mpt: number } {
  if (mats === 0) return { tasks: 0, chunks: 1, ppt: panels, mpt: 1 };
  if (!par) return { tasks: 1, chunks: 1, ppt: panels, mpt: mats };
  if (mats < threads * 2) {
    const ppt = Math.ceil(panels / Math.min(panels, threads * 2));
    const chunks = Math.ceil(panels / ppt);
    return { tasks: mats * chunks, chunks, ppt, mpt: 1 };
  }
  const mpt = Math.ceil(mats / (threads * 4));
  return { tasks: Math.ceil(mats / mpt), chunks: 1, ppt: panels, mpt };
}
