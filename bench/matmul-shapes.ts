/**
 * The matrix products real training steps and the Mega encoder layer run, mega-ts vs PyTorch's
 * `torch.matmul` (bench/torch_matmul.py `--shapes`, OpenBLAS as in bench/ceiling.ts), both on one
 * thread, in the same run.
 *
 * Rows `matmul-shapes/<name>/f32/<batch>x<M>x<K>x<N>`: mega-ts GFLOP/s (2·batch·M·N·K per
 * CPU-second, median of 5 rounds after warm-up), operands laid out as in the step (transposed or
 * pitched views read in place) and resident in the wasm memory as inside a training step
 * (`residentScope`), `ratio` = mega-ts / PyTorch; rows `.../<name>-pytorch/...`: PyTorch's
 * GFLOP/s on the same views. Per CPU-second, so other jobs on a shared machine weigh less; both
 * sides single-threaded. Row `matmul-shapes/geomean/...`: the geometric mean of the ratios.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gemmStrided, type StridedOperand } from '../src/tensor/backends/cpu/gemm.js';
import { getNumThreads, setNumThreads } from '../src/tensor/backends/cpu/pool.js';
import { allocateOut, residentScope } from '../src/tensor/backends/cpu/resident.js';
import { mallocEnv, openblasDir } from './env.js';
import { caseId, note, report, selected, type BenchOptions } from './report.js';

/**
 * One product: `batch × [M, K] · [K, N]`; operand layouts: `n` row-major, `t` transposed (stored
 * [C, R]), `t<P>` transposed with row pitch P, `p<P>` row-major with row pitch P (a column slice).
 */
export interface ShapeCase {
  name: string;
  batch: number;
  M: number;
  K: number;
  N: number;
  a: string;
  b: string;
}

/** The shapes (from profiles of the Mega layer, LM, NMT and ListOps training steps). */
export const SHAPE_CASES: ShapeCase[] = [
  { name: 'layer-attn-t', batch: 4, M: 1024, K: 1024, N: 256, a: 't', b: 'n' },
  { name: 'layer-out-bt', batch: 4, M: 1024, K: 256, N: 1024, a: 'n', b: 't1024' },
  { name: 'layer-n64', batch: 4, M: 1024, K: 1024, N: 64, a: 'n', b: 'p512' },
  { name: 'layer-m64', batch: 4, M: 64, K: 1024, N: 1024, a: 't', b: 'n' },
  { name: 'layer-proj', batch: 1, M: 4096, K: 576, N: 128, a: 'n', b: 'n' },
  { name: 'chunk-128', batch: 8, M: 128, K: 128, N: 256, a: 'n', b: 'n' },
  { name: 'chunk-k64', batch: 8, M: 128, K: 64, N: 128, a: 'n', b: 't512' },
  { name: 'lm-bt', batch: 1, M: 1024, K: 128, N: 64, a: 'n', b: 't' },
  { name: 'lm-at', batch: 1, M: 128, K: 1024, N: 64, a: 't', b: 'n' },
  { name: 'lm-k32', batch: 8, M: 128, K: 32, N: 128, a: 'n', b: 'n' },
  { name: 'nmt-40', batch: 16, M: 40, K: 40, N: 128, a: 'n', b: 'n' },
  { name: 'nmt-40-at', batch: 16, M: 40, K: 40, N: 64, a: 't', b: 'n' },
  { name: 'nmt-608', batch: 1, M: 608, K: 64, N: 64, a: 'n', b: 'n' },
  { name: 'listops-bt', batch: 32, M: 24, K: 16, N: 24, a: 'n', b: 't1024' },
  { name: 'listops-20', batch: 32, M: 20, K: 20, N: 16, a: 'n', b: 'n' },
];

const here = path.dirname(fileURLToPath(import.meta.url));

/** Storage elements and strides of an R × C operand of layout `lay`, per matrix. */
export function layout(lay: string, R: number, C: number): { size: number; rs: number; cs: number } {
  const pitch = lay.length > 1 ? Number(lay.slice(1)) : lay === 't' ? R : C;
  if (lay.startsWith('t')) return { size: C * pitch, rs: 1, cs: pitch };
  return { size: R * pitch, rs: pitch, cs: 1 };
}

/** mega-ts GFLOP/s per CPU-second of one case, operands and output resident. */
function megaGflops(s: ShapeCase): number {
  const flops = 2 * s.batch * s.M * s.N * s.K;
  let gflops = 0;
  residentScope(
    {},
    () => {
      const operand = (lay: string, R: number, C: number, seed: number): StridedOperand => {
        const l = layout(lay, R, C);
        const data = allocateOut('f32', s.batch * l.size, false) as Float32Array;
        for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37 + seed);
        return { data, off: 0, rs: l.rs, cs: l.cs, bs: l.size };
      };
      const A = operand(s.a, s.M, s.K, 1);
      const B = operand(s.b, s.K, s.N, 2);
      const c = allocateOut('f32', s.batch * s.M * s.N, false) as Float32Array;
      const run = () => gemmStrided(A, B, c, s.batch, s.M, s.N, s.K);
      let reps = 0;
      const w0 = performance.now();
      while (performance.now() - w0 < 100 || reps < 3) {
        run();
        reps++;
      }
      const per = Math.max(1, Math.ceil(reps / 2)); // ≈ 50 ms per round
      const rounds: number[] = [];
      for (let r = 0; r < 5; r++) {
        const c0 = process.cpuUsage();
        for (let i = 0; i < per; i++) run();
        const u = process.cpuUsage(c0);
        rounds.push((u.user + u.system) / 1e3 / per);
      }
      rounds.sort((x, y) => x - y);
      gflops = flops / (rounds[2] * 1e6);
    },
    () => [],
  );
  return gflops;
}

/** PyTorch GFLOP/s per CPU-second of every case (by name), or undefined (noted). */
function torchGflops(cases: ShapeCase[]): Map<string, number> | undefined {
  const py = process.env.MEGA_PYTHON ?? '/usr/bin/python3';
  const script = path.join(here, '..', '..', 'bench', 'torch_matmul.py');
  const src = existsSync(script) ? script : path.join(here, 'torch_matmul.py');
  const env: NodeJS.ProcessEnv = { ...process.env, ...mallocEnv(), OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' };
  const blas = openblasDir();
  if (blas) env.LD_LIBRARY_PATH = [blas, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':');
  const r = spawnSync(py, [src, '--shapes', JSON.stringify(cases)], { env, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) {
    note(`matmul-shapes: pytorch baseline unavailable (${py} ${src}): ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-2).join(' ')}`);
    return undefined;
  }
  const out = new Map<string, number>();
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const o = JSON.parse(line) as { name: string; gflops: number };
    out.set(o.name, o.gflops);
  }
  return out;
}

/** Run the step-shape benchmark and report every selected case. */
export async function runMatmulShapesBench(opts: BenchOptions): Promise<void> {
  const id = (s: ShapeCase, suffix = '') => caseId('matmul-shapes', s.name + suffix, 'f32', [s.batch, s.M, s.K, s.N]);
  const cases = SHAPE_CASES.filter((s) => selected(opts, id(s)) || selected(opts, id(s, '-pytorch')));
  if (cases.length === 0) return;
  note('matmul-shapes: 1 thread each side, GFLOP/s per CPU-second; mega-ts operands resident; shape = batch x M x K x N');
  const torch = torchGflops(cases);
  const before = getNumThreads();
  setNumThreads(1);
  const ratios: number[] = [];
  try {
    for (const s of cases) {
      const shape = [s.batch, s.M, s.K, s.N];
      const t = torch?.get(s.name);
      const mega = megaGflops(s);
      if (t !== undefined) {
        report({ bench: 'matmul-shapes', impl: `${s.name}-pytorch`, dtype: 'f32', shape, value: t, unit: 'GFLOP/s' });
        ratios.push(mega / t);
      }
      const vs = t !== undefined ? { ratio: mega / t, baseline: 'pytorch' } : {};
      report({ bench: 'matmul-shapes', impl: s.name, dtype: 'f32', shape, value: mega, unit: 'GFLOP/s', ...vs });
    }
  } finally {
    setNumThreads(before);
  }
  if (ratios.length > 0) {
    const g = Math.exp(ratios.reduce((x, r) => x + Math.log(r), 0) / ratios.length);
    report({ bench: 'matmul-shapes', impl: 'geomean', dtype: 'f32', shape: [ratios.length], value: g, unit: 'x', ratio: g, baseline: 'pytorch' });
  }
}
