/**
 * The WebAssembly SIMD gemm driver: copies operands that are not resident into the shared wasm
 * memory, packs the operands that need it (a parallel job), runs the macro-kernel over tiles (a
 * second parallel job) and copies C out — or, when C is resident, lets the kernel write it in
 * place. Called by `gemm` in ../gemm.ts after validation and shape normalisation.
 *
 * Packing: an operand is read where it lies when its layout already puts a panel's elements side
 * by side and packing would not pay ({@link directOperands}); A with long columns (a transposed A
 * of many rows) and B with strided columns, large or reused by many row panels, are packed.
 *
 * Large products are processed in groups of batches / blocks of C rows so that the memory
 * footprint stays bounded (C block ≤ `gemmLimits.cBlockBytes`); the split depends only on the
 * shapes, and every C element is computed by the same micro-kernel sequence whatever the split
 * or thread count, so results are bitwise independent of both.
 */
import { getNumThreads, splitGemmTasks } from '../pool.js';
import { GEMM_SHAPES, TRI, type Tri } from './gemm.js';
import { OP_GEMM, OP_PACK, runJob, simdTuning, wasmArena, type WasmRuntime } from './runtime.js';
import { storageAddr } from '../simd.js';

type FloatArray = Float32Array | Float64Array;

/** From this many multiply-adds on, a gemm runs on the worker pool. */
export const WASM_PARALLEL_WORK = 1 << 20;
/** Smallest compute task worth handing to another thread, in multiply-adds. */
const MIN_TASK_WORK = 1 << 17;
/**
 * Fewest packed elements (A and B together) for which packing runs on the pool: below, the
 * calling thread packs alone (a 32 × 64 B: 0.6–0.9 µs alone, 1.2–3.9 µs as a pool job).
 */
const PACK_PARALLEL_ELEMENTS = 1 << 15;
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

/** A row of N values at `data[off …]` added to every row of a product. */
export interface BiasRow {
  data: FloatArray;
  off: number;
}

/**
 * C[b] = A[b]·B[b] with A [batch, M, K] and B [batch, K, N] given as strided operands (all
 * strides ≥ 0), C [batch, M, N] contiguous. Preconditions: validated; batch, M, N, K ≥ 1.
 * `defer`: the jobs writing a resident C may still run when this returns (runtime.ts "Deferred
 * jobs"), for a caller that reads C only through `Tensor.storage`.
 * `tri`: the triangular structure of each product ({@link TRI}); `bias` (no triangle): added to
 * every row of C as the kernel stores it.
 */
export function gemmWasm(
  rt: WasmRuntime,
  A: StridedOperand,
  B: StridedOperand,
  c: FloatArray,
  batch: number,
  M: number,
  N: number,
  K: number,
  tri: Tri = TRI.NONE,
  bias: BiasRow | null = null,
  defer = false,
): void {
  const f64 = c instanceof Float64Array;
  const E = f64 ? 8 : 4;
  const { MR, NR } = GEMM_SHAPES[f64 ? 'f64' : 'f32'];
  const fnA = f64 ? 2 : 0,
    fnB = f64 ? 3 : 1,
    fnG = f64 ? 1 : 0;
  const threads = getNumThreads();

  const np = Math.ceil(N / NR);
  const aBS = batch === 1 ? 0 : A.bs,
    bBS = batch === 1 ? 0 : B.bs;
  const nA = aBS === 0 ? 1 : batch,
    nB = bBS === 0 ? 1 : batch;
  // the storage spans the operands touch (copied as they are: the kernel and the packing apply the strides)
  const lenA = (nA - 1) * aBS + (M - 1) * A.rs + (K - 1) * A.cs + 1;
  const lenB = (nB - 1) * bBS + (K - 1) * B.rs + (N - 1) * B.cs + 1;
  const { aDirect, bDirect } = directOperands(A, B, M, N, K, E);

  // groups of batches, or (one batch) blocks of rows, so that a C block stays ≤ C_BLOCK_BYTES
  const perMatC = M * N * E;
  let gb = Math.max(1, Math.min(batch, Math.floor(gemmLimits.cBlockBytes / perMatC)));
  let mb = M; // rows per block (a multiple of MR unless = M)
  if (perMatC > gemmLimits.cBlockBytes) {
    gb = 1;
    mb = Math.max(MR, Math.floor(gemmLimits.cBlockBytes / (N * E) / MR) * MR);
  }
  const mbp = Math.ceil(mb / MR); // row panels per block
  const nAg = nA === 1 ? 1 : gb,
    nBg = nB === 1 ? 1 : gb;

  // operands already in the wasm memory (resident storage) are read from where they are, and a
  // resident C is written in place (the kernel touches only C's own elements)
  const inA = storageAddr(A.data),
    inB = storageAddr(B.data),
    inC = storageAddr(c),
    inBias = bias ? storageAddr(bias.data) : -1;
  // whether the product reads only resident blocks (else it reads packed panels or copies in the scratch)
  const scratchFree = inA >= 0 && inB >= 0 && aDirect && bDirect && (!bias || inBias >= 0);
  const ar = wasmArena(rt);
  ar.reset();
  const rawA = inA >= 0 ? inA + A.off * E : ar.alloc(lenA * E);
  const rawB = inB >= 0 ? inB + B.off * E : ar.alloc(lenB * E);
  const packA = aDirect ? 0 : ar.alloc(nAg * mbp * MR * K * E);
  const packB = bDirect ? 0 : ar.alloc(nBg * np * NR * K * E);
  const cScratch = inC >= 0 ? 0 : ar.alloc(gb * mb * N * E);
  const pBias = !bias ? 0 : inBias >= 0 ? inBias + bias.off * E : ar.alloc(N * E);
  // the last vector of a direct B's last column panel (and of the bias) reads up to 16 bytes past
  // its end: keep them in the memory
  ar.alloc(16);
  ar.commit();
  const view: FloatArray = f64 ? ar.f64 : ar.f32;
  if (inA < 0) view.set(A.off === 0 && lenA === A.data.length ? A.data : A.data.subarray(A.off, A.off + lenA), rawA / E);
  if (inB < 0) view.set(B.off === 0 && lenB === B.data.length ? B.data : B.data.subarray(B.off, B.off + lenB), rawB / E);
  if (bias && inBias < 0) view.set(bias.data.subarray(bias.off, bias.off + N), pBias / E);

  let bPacked = bDirect;
  for (let b0 = 0; b0 < batch; b0 += gb) {
    const g = Math.min(gb, batch - b0);
    const bSrc = rawB + (nB === 1 ? 0 : b0 * bBS * E);
    for (let i0 = 0; i0 < M; i0 += mb) {
      const rows = Math.min(mb, M - i0);
      const mpb = Math.ceil(rows / MR);
      const work = g * rows * N * K;
      const force = simdTuning.force;
      const par = threads > 1 && (force || work >= WASM_PARALLEL_WORK);
      const aSrc = rawA + ((nA === 1 ? 0 : b0 * aBS) + i0 * A.rs) * E;
      // ---- pack A rows [i0, i0+rows) into MR-row panels and B (once if broadcast) into NR-column
      // panels, k-major; an operand the kernel reads in place is not packed
      const aMats = aDirect ? 0 : nA === 1 ? 1 : g;
      const bMats = bPacked ? 0 : nB === 1 ? 1 : g;
      const packPar = par && (force || (aMats * mpb * MR + bMats * np * NR) * K >= PACK_PARALLEL_ELEMENTS);
      const setA = packTasks(packPar, threads, aMats, mpb);
      const setB = packTasks(packPar, threads, bMats, np);
      if (setA.tasks + setB.tasks > 0) {
        runJob(
          rt,
          packPar,
          setA.tasks + setB.tasks,
          (P) => {
            P[0] = OP_PACK;
            P[1] = setA.tasks;
            fillPackSet(P, 2, fnA, aSrc, aBS * E, rows, K, A.rs * E, A.cs * E, packA, mbp * MR * K * E, mpb, setA, aMats);
            // the rows of B's packing are the columns j of B
            fillPackSet(P, 16, fnB, bSrc, bBS * E, N, K, B.cs * E, B.rs * E, packB, np * NR * K * E, np, setB, bMats);
          },
          defer && inC >= 0 ? 'scratch' : false,
        );
      }
      if (nB === 1) bPacked = true;

      // ---- compute: tasks = batch groups × row-panel blocks × column-panel blocks, into C
      // (resident: in place; else a scratch block copied out below)
      const cBlock = inC >= 0 ? inC + (b0 * M + i0) * N * E : cScratch;
      const target = par ? Math.max(1, Math.min(threads * 4, Math.floor(work / (force ? 1 : MIN_TASK_WORK)))) : 1;
      const { bpt, mch, nch, ppm, ppn, tasks } = splitGemmTasks(g, mpb, np, target);
      // a resident C is not read back here: the caller may let the jobs be deferred (runtime.ts)
      const deferral = !defer || inC < 0 ? false : scratchFree ? true : 'scratch';
      runJob(
        rt,
        par,
        tasks,
        (P) => {
          P[0] = OP_GEMM;
          P[1] = fnG;
          // A: row r of panel p at k: a + p·aps + r·ars + k·aks
          P[2] = aDirect ? aSrc : packA;
          P[3] = aDirect ? MR * A.rs * E : K * MR * E;
          P[4] = aDirect ? A.rs * E : E;
          P[5] = aDirect ? A.cs * E : MR * E;
          P[6] = nA === 1 ? 0 : aDirect ? aBS * E : mbp * MR * K * E;
          // B: columns of panel q at k: b + q·bps + k·bks
          P[7] = bDirect ? bSrc : packB;
          P[8] = bDirect ? NR * E : K * NR * E;
          P[9] = bDirect ? B.rs * E : NR * E;
          P[10] = nB === 1 ? 0 : bDirect ? bBS * E : np * NR * K * E;
          P[11] = cBlock;
          P[12] = M * N * E;
          P[13] = N * E;
          P[14] = K;
          P[15] = mpb;
          P[16] = np;
          P[17] = g;
          P[18] = bpt;
          P[19] = mch;
          P[20] = nch;
          P[21] = ppm;
          P[22] = ppn;
          P[23] = rows;
          P[24] = N;
          P[25] = tri;
          P[26] = i0;
          P[27] = pBias;
        },
        deferral,
      );

      // ---- copy C out (g matrices of M rows, or one block of rows: contiguous in c either way)
      if (inC < 0) {
        const v: FloatArray = f64 ? ar.f64 : ar.f32;
        c.set(v.subarray(cScratch / E, cScratch / E + g * rows * N), (b0 * M + i0) * N);
      }
    }
  }
  ar.close();
}

/** Largest k step (bytes) at which A is read in place: beyond it a K block's rows span too many pages. */
const DIRECT_A_MAX_STEP = 1024;
/**
 * Largest M for which B is read in place, when B is at most DIRECT_B_MAX_BYTES (it stays in cache)
 * or at least DIRECT_B_STREAM_BYTES (the weight gradients of long sequences, K = tokens: a B that
 * large leaves the cache between its packing and its use, so packing streams it through memory
 * twice more for the few row panels that share it).
 */
const DIRECT_B_MAX_M = 64;
const DIRECT_B_MAX_BYTES = 64 << 10;
const DIRECT_B_STREAM_BYTES = 2 << 20;

/**
 * Which operands the kernel reads where they are instead of packing them (measured, docs/PERF.md):
 * A when its k step is short (row-major, or column-major with short columns); B when its columns
 * are contiguous and few row panels reuse it, and it is small or very large (packing would cost
 * more than it saves).
 */
function directOperands(A: StridedOperand, B: StridedOperand, M: number, N: number, K: number, E: number): { aDirect: boolean; bDirect: boolean } {
  const bBytes = K * N * E;
  return {
    aDirect: A.cs * E <= DIRECT_A_MAX_STEP,
    bDirect: B.cs === 1 && M <= DIRECT_B_MAX_M && (bBytes <= DIRECT_B_MAX_BYTES || bBytes >= DIRECT_B_STREAM_BYTES),
  };
}

/** Writes one packing set (see `packSet` in runtime.ts) at slot `o`. */
function fillPackSet(
  P: Float64Array,
  o: number,
  fn: number,
  src: number,
  srcStride: number,
  rows: number,
  K: number,
  si: number,
  sk: number,
  dst: number,
  dstStride: number,
  panels: number,
  set: PackTasks,
  mats: number,
): void {
  P[o] = fn;
  P[o + 1] = src;
  P[o + 2] = srcStride;
  P[o + 3] = rows;
  P[o + 4] = K;
  P[o + 5] = si;
  P[o + 6] = sk;
  P[o + 7] = dst;
  P[o + 8] = dstStride;
  P[o + 9] = panels;
  P[o + 10] = set.ppt;
  P[o + 11] = set.chunks;
  P[o + 12] = set.mpt;
  P[o + 13] = mats;
}

/** How a packing set is cut into pool tasks. */
interface PackTasks {
  tasks: number;
  /** panel chunks per matrix group, panels per chunk, matrices per group */
  chunks: number;
  ppt: number;
  mpt: number;
}

/**
 * On one thread a single task (every matrix in one wasm call); on the pool, panel chunks of one
 * matrix when there are few matrices, else groups of whole matrices, about 4 per thread.
 */
function packTasks(par: boolean, threads: number, mats: number, panels: number): PackTasks {
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
