/**
 * FFT convolution benchmark: milliseconds per call of mega-ts's `fftConv` kernel as the Mega EMA
 * calls it (src/mega/ema.ts `convolve`, causal): x `[B, D, L]`, kernel k `[D, L]` broadcast over
 * the batch, start 0, length L, so rows = B·D. Shapes are reported as `[B, D, L]`: D 128, B 4
 * at L 1k and 4k, B 1 at 16k (keeps the bench short on small machines).
 *
 * - `mega-ts-cpu`: the active kernel (`kernels.fftConv`: the WebAssembly SIMD path on the worker
 *   pool, falling back to the plain-TS kernel where SIMD is off).
 * - `mega-ts-ts`: the plain-TypeScript reference kernel (`fftConvCpu`, fft.js in float64), called
 *   directly (env `MEGA_SIMD=0` is only read at startup).
 * - `tfjs-cpu` / `tfjs-wasm` (f32 only, TF.js has no f64): the same causal convolution with
 *   `tf.spectral.rfft` of x and k zero-padded to 2L, a complex multiply (see {@link tfConv}) and
 *   `tf.spectral.irfft`, keeping the first L outputs. TF.js's FFT (row-by-row radix-2 recursion)
 *   is some thousand times slower, so it is timed on the first channel of the same case (x
 *   `[B, 1, L]`, k `[1, L]`) and the time scaled by D (rows are independent and cost the same).
 *   Backends that lack the kernels (tfjs-backend-wasm has no Complex/FFT) get a note instead of
 *   a row. Each TF.js result is checked once (its warm-up call) against mega-ts's.
 *
 * mega-ts-cpu rows carry `ratio` = baseline ms / mega-ts-cpu ms (the speed-up, > 1 = mega-ts
 * faster, as in matmul's GFLOP/s ratios), one row per baseline.
 */
import { fftConvCpu } from '../src/tensor/backends/cpu/fftconv.js';
import { getNumThreads } from '../src/tensor/backends/cpu/pool.js';
import { simdStatus } from '../src/tensor/backends/cpu/wasm/runtime.js';
import { fftConv } from '../src/tensor/kernels.js';
import { fromStorage, type Tensor } from '../src/tensor/tensor.js';
import { caseId, note, report, selected, type BenchOptions, type BenchResult } from './report.js';
import { fill, loadTf } from './tfjs.js';
import { timeMedian, type TimingOptions } from './timing.js';

const D = 128;
/** [L, B] per case: rows B·D = 512, except 128 at 16k (bounds the time of the slow baselines). */
const CASES: [number, number][] = [
  [1024, 4],
  [4096, 4],
  [16384, 1],
];
const MEGA = 'mega-ts-cpu';
const MEGA_TS = 'mega-ts-ts';
const TF_CPU = 'tfjs-cpu';
const TF_WASM = 'tfjs-wasm';
/** Largest accepted max|tfjs − mega-ts| / max|mega-ts|. */
const TOL = 1e-3;
/** Channels TF.js is timed on (its time is scaled to all D; see {@link tfMs}). */
const TF_ROWS = 1;

type FloatArr = Float32Array | Float64Array;

/** The bits of TF.js this bench uses. */
interface TfTensor {
  shape: number[];
  dataSync(): Float32Array;
  dispose(): void;
}
interface TfLike {
  setBackend(name: string): Promise<boolean>;
  ready(): Promise<void>;
  enableProdMode(): void;
  tidy<T extends TfTensor>(fn: () => T): T;
  tensor(values: Float32Array, shape: number[]): TfTensor;
  add(a: TfTensor, b: TfTensor): TfTensor;
  sub(a: TfTensor, b: TfTensor): TfTensor;
  mul(a: TfTensor, b: TfTensor): TfTensor;
  real(x: TfTensor): TfTensor;
  imag(x: TfTensor): TfTensor;
  complex(re: TfTensor, im: TfTensor): TfTensor;
  slice(x: TfTensor, begin: number[], size: number[]): TfTensor;
  spectral: { rfft(x: TfTensor, fftLength?: number): TfTensor; irfft(x: TfTensor): TfTensor };
}

/** Inputs of one case: x `[B, D, L]`, k `[D, L]` (the same values for every impl and dtype). */
function inputs(Arr: Float32ArrayConstructor | Float64ArrayConstructor, B: number, L: number): { x: FloatArr; k: FloatArr } {
  return { x: fill(new Arr(B * D * L), 1), k: fill(new Arr(D * L), 2) };
}

/** Timing limits of the mega-ts cases (0.3 s a call at most, so a case takes ~2.5 s at most). */
function timing(): TimingOptions {
  return { warmup: 1, warmupMs: 200, minReps: 3, maxReps: 15, maxMs: 2000 };
}

/** Median ms of a mega-ts kernel `fn` (the active `fftConv` or `fftConvCpu`) on one case. */
function megaMs(fn: (x: Tensor, k: Tensor, start: number, length: number) => Tensor, x: FloatArr, k: FloatArr, B: number, L: number): number {
  const xt = fromStorage(x, [B, D, L]),
    kt = fromStorage(k, [D, L]);
  return timeMedian(() => void fn(xt, kt, 0, L), timing());
}

/**
 * The TF.js convolution: rfft(x, 2L) · rfft(k, 2L) → irfft → first L samples. The complex product
 * is written out on real and imaginary parts: tfjs-backend-cpu's complex `mul` returns NaN where
 * it broadcasts (k's spectrum `[D', L+1]` over the batch).
 */
function tfConv(tf: TfLike, x: TfTensor, k: TfTensor): TfTensor {
  const [B, Dp, L] = x.shape;
  return tf.tidy(() => {
    const X = tf.spectral.rfft(x, 2 * L),
      K = tf.spectral.rfft(k, 2 * L);
    const xr = tf.real(X),
      xi = tf.imag(X),
      kr = tf.real(K),
      ki = tf.imag(K);
    const Y = tf.complex(tf.sub(tf.mul(xr, kr), tf.mul(xi, ki)), tf.add(tf.mul(xr, ki), tf.mul(xi, kr)));
    return tf.slice(tf.spectral.irfft(Y), [0, 0, 0], [B, Dp, L]); // irfft: [B, D', 2L]
  });
}

/**
 * Median ms of the TF.js convolution on `backend` for the full `[B, D, L]` case. TF.js's FFT is
 * far too slow for all D channels within the bench budget, so it runs on the first
 * {@link TF_ROWS} channels (x `[B, TF_ROWS, L]`, k `[TF_ROWS, L]`: every row costs the same,
 * tfjs-backend-cpu transforms row by row) and the time is scaled by D / TF_ROWS. Its first call
 * (the warm-up) is checked against `expect`, mega-ts's f32 output `[B, D, L]`. Throws when the
 * backend cannot run the convolution or the results differ.
 */
async function tfMs(tf: TfLike, backend: string, x: Float32Array, k: Float32Array, B: number, L: number, expect: Float32Array): Promise<number> {
  if (!(await tf.setBackend(backend))) throw new Error(`TF.js backend ${backend} failed to initialise`);
  await tf.ready();
  const R = TF_ROWS;
  const xs = new Float32Array(B * R * L);
  for (let b = 0; b < B; b++) xs.set(x.subarray(b * D * L, (b * D + R) * L), b * R * L);
  const xt = tf.tensor(xs, [B, R, L]),
    kt = tf.tensor(k.subarray(0, R * L), [R, L]);
  let checked = false;
  const check = (got: Float32Array): void => {
    let err = 0,
      scale = 0;
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < R * L; i++) {
        const want = expect[b * D * L + i];
        err = Math.max(err, Math.abs(got[b * R * L + i] - want));
        scale = Math.max(scale, Math.abs(want));
      }
    }
    if (got.length !== B * R * L || !(err <= TOL * scale)) {
      throw new Error(`result differs from mega-ts: max abs err ${err.toExponential(2)}, max |y| ${scale.toExponential(2)}`);
    }
    checked = true;
  };
  try {
    const ms = timeMedian(
      () => {
        const y = tfConv(tf, xt, kt);
        const got = y.dataSync();
        y.dispose();
        if (!checked) check(got);
      },
      { warmup: 1, warmupMs: 0, minReps: 1, maxReps: 3, maxMs: 1000 },
    );
    return (ms * D) / R;
  } finally {
    xt.dispose();
    kt.dispose();
  }
}

/** Run the fftconv benchmark and report every selected case. */
export async function runFftconvBench(opts: BenchOptions): Promise<void> {
  const dtypes: [string, Float32ArrayConstructor | Float64ArrayConstructor][] = [
    ['f32', Float32Array],
    ['f64', Float64Array],
  ];
  const id = (impl: string, dtype: string, B: number, L: number) => caseId('fftconv', impl, dtype, [B, D, L]);
  const impls = [MEGA, MEGA_TS, TF_CPU, TF_WASM];
  const any = dtypes.some(([dt]) => CASES.some(([L, B]) => impls.some((impl) => selected(opts, id(impl, dt, B, L)))));
  if (!any) return;
  const wantTf = CASES.some(([L, B]) => selected(opts, id(TF_CPU, 'f32', B, L)) || selected(opts, id(TF_WASM, 'f32', B, L)));
  const tfjs = wantTf ? await loadTf<TfLike>() : undefined;
  const simd = simdStatus();
  note(
    `fftconv: ms per call, x [B, D, L] * k [D, L] causal (start 0, length L); mega-ts fftConv with ${getNumThreads()} thread(s), ` +
      `SIMD ${simd.enabled ? 'on' : `off (${simd.reason})`}; mega-ts-ts = plain-TS fftConvCpu; TF.js = rfft/irfft at 2L (f32 only, single-threaded), ` +
      `timed on ${TF_ROWS} of the D = ${D} channels and scaled x${D / TF_ROWS}; ratio = baseline ms / mega-ts-cpu ms (speed-up)`,
  );
  const tfSkip = new Set<string>(); // backends that cannot run the convolution (noted once)

  for (const [dtype, Arr] of dtypes) {
    for (const [L, B] of CASES) {
      const shape = [B, D, L];
      const row = (impl: string, value: number): BenchResult => ({ bench: 'fftconv', impl, dtype, shape, value, unit: 'ms' });
      const { x, k } = inputs(Arr, B, L);
      const baselines: BenchResult[] = [];
      if (dtype === 'f32' && tfjs !== undefined) {
        let expect: Float32Array | undefined;
        for (const [impl, backend] of [
          [TF_CPU, 'cpu'],
          [TF_WASM, 'wasm'],
        ] as const) {
          if (!tfjs.backends.includes(backend) || tfSkip.has(backend) || !selected(opts, id(impl, dtype, B, L))) continue;
          expect ??= fftConv(fromStorage(x, shape), fromStorage(k, [D, L]), 0, L).storage as Float32Array;
          try {
            const r = row(impl, await tfMs(tfjs.tf, backend, x as Float32Array, k as Float32Array, B, L, expect));
            report(r);
            baselines.push(r);
          } catch (e) {
            tfSkip.add(backend);
            note(`fftconv: no ${impl} rows: the rfft/irfft convolution failed on TF.js's ${backend} backend (${(e as Error).message.split('\n')[0]})`);
          }
        }
      }
      if (selected(opts, id(MEGA_TS, dtype, B, L))) {
        const r = row(MEGA_TS, megaMs(fftConvCpu, x, k, B, L));
        report(r);
        baselines.push(r);
      }
      if (!selected(opts, id(MEGA, dtype, B, L))) continue;
      const mega = row(MEGA, megaMs(fftConv, x, k, B, L));
      if (baselines.length === 0) report(mega);
      for (const base of baselines) report({ ...mega, ratio: base.value / mega.value, baseline: base.impl });
    }
  }
}
