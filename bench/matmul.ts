/**
 * Matmul benchmark: GFLOP/s (2·M·N·K / median time after warm-up) of square f32/f64 products
 * for mega-ts's CPU gemm (`mega-ts-cpu`: the WebAssembly SIMD kernel on the worker pool), its
 * plain-TypeScript reference kernel (`mega-ts-ts`, same thread count), and — in the same run, f32
 * only — TF.js `tfjs-backend-cpu` and `tfjs-backend-wasm` (loaded offline from the .wasm files in
 * node_modules). mega-ts-cpu rows carry `ratio` = mega-ts-cpu / baseline, one row per baseline.
 */
import { gemm, gemmReference } from '../src/tensor/backends/cpu/gemm.js';
import { getNumThreads } from '../src/tensor/backends/cpu/pool.js';
import { GEMM_SHAPES } from '../src/tensor/backends/cpu/wasm/gemm.js';
import { simdStatus } from '../src/tensor/backends/cpu/wasm/runtime.js';
import { caseId, note, report, selected, type BenchOptions, type BenchResult } from './report.js';
import { fill, loadTf } from './tfjs.js';
import { timeMedian } from './timing.js';

const SIZES = [256, 512, 1024];
const MEGA = 'mega-ts-cpu';
const MEGA_TS = 'mega-ts-ts';
const TF_CPU = 'tfjs-cpu';
const TF_WASM = 'tfjs-wasm';

/** The bits of TF.js this bench uses. */
interface TfLike {
  setBackend(name: string): Promise<boolean>;
  ready(): Promise<void>;
  enableProdMode(): void;
  tensor2d(values: Float32Array, shape: [number, number]): TfTensor;
  matMul(a: TfTensor, b: TfTensor): TfTensor;
}
interface TfTensor {
  dataSync(): unknown;
  dispose(): void;
}

/** GFLOP/s of TF.js `matMul` on backend `backend` for an n×n×n product. */
async function tfGflops(tf: TfLike, backend: string, n: number): Promise<number> {
  if (!(await tf.setBackend(backend))) throw new Error(`TF.js backend ${backend} failed to initialise`);
  await tf.ready();
  const a = tf.tensor2d(fill(new Float32Array(n * n), 1) as Float32Array, [n, n]);
  const b = tf.tensor2d(fill(new Float32Array(n * n), 2) as Float32Array, [n, n]);
  const ms = timeMedian(() => {
    const c = tf.matMul(a, b);
    c.dataSync();
    c.dispose();
  });
  a.dispose();
  b.dispose();
  return (2 * n ** 3) / (ms * 1e6);
}

/** GFLOP/s of mega-ts `gemm` (or the plain-TS reference) for an n×n×n product. */
function megaGflops(Arr: Float32ArrayConstructor | Float64ArrayConstructor, n: number, fn = gemm): number {
  const a = fill(new Arr(n * n), 1);
  const b = fill(new Arr(n * n), 2);
  const c = new Arr(n * n);
  const ms = timeMedian(() => fn(a, b, c, 1, n, n, n, false, false, 0, 0));
  return (2 * n ** 3) / (ms * 1e6);
}

/** Run the matmul benchmark and report every selected case. */
export async function runMatmulBench(opts: BenchOptions): Promise<void> {
  const dtypes: [string, Float32ArrayConstructor | Float64ArrayConstructor][] = [
    ['f32', Float32Array],
    ['f64', Float64Array],
  ];
  const id = (impl: string, dtype: string, n: number) => caseId('matmul', impl, dtype, [n, n, n]);
  const any = dtypes.some(([dt]) => SIZES.some((n) => [MEGA, MEGA_TS, TF_CPU, TF_WASM].some((impl) => selected(opts, id(impl, dt, n)))));
  if (!any) return;
  const wantTf = SIZES.some((n) => selected(opts, id(TF_CPU, 'f32', n)) || selected(opts, id(TF_WASM, 'f32', n)));
  const tfjs = wantTf ? await loadTf<TfLike>() : undefined;
  const simd = simdStatus();
  const tile = GEMM_SHAPES.f32;
  note(
    `matmul: mega-ts gemm with ${getNumThreads()} thread(s) (--threads / MEGA_THREADS to change), SIMD ` +
      `${simd.enabled ? `on (f32 tile ${tile.MR}x${tile.NR}, ${tile.fma ? 'relaxed-SIMD fused multiply-add' : 'mul + add'})` : `off (${simd.reason})`}; ` +
      `mega-ts-ts = plain-TS reference gemm; TF.js wasm is single-threaded in Node`,
  );

  for (const [dtype, Arr] of dtypes) {
    for (const n of SIZES) {
      const shape = [n, n, n];
      const row = (impl: string, value: number): BenchResult => ({ bench: 'matmul', impl, dtype, shape, value, unit: 'GFLOP/s' });
      const baselines: BenchResult[] = [];
      if (dtype === 'f32' && tfjs !== undefined) {
        for (const [impl, backend] of [
          [TF_CPU, 'cpu'],
          [TF_WASM, 'wasm'],
        ] as const) {
          if (!tfjs.backends.includes(backend) || !selected(opts, id(impl, dtype, n))) continue;
          const r = row(impl, await tfGflops(tfjs.tf, backend, n));
          report(r);
          baselines.push(r);
        }
      }
      if (selected(opts, id(MEGA_TS, dtype, n))) {
        const r = row(MEGA_TS, megaGflops(Arr, n, gemmReference));
        report(r);
        baselines.push(r);
      }
      if (!selected(opts, id(MEGA, dtype, n))) continue;
      const mega = row(MEGA, megaGflops(Arr, n));
      if (baselines.length === 0) report(mega);
      for (const base of baselines) report({ ...mega, ratio: mega.value / base.value, baseline: base.impl });
    }
  }
}
