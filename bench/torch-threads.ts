/**
 * How the PyTorch baselines use the machine's threads. Debian's python3-torch runs its
 * intra-op parallelism on OpenMP and its products on OpenBLAS, whose Debian build
 * (libopenblas0-pthread) keeps a pthread pool of its own. With both set to all cores
 * (OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = n, `torch.set_num_threads(n)`), OpenMP's workers
 * spin after every parallel region while OpenBLAS's threads run the next product: 2n busy
 * threads on n cores. Measured here (2 cores, NMT training step, rounds in a row): 15.6 / 7.2 /
 * 5.7 steps/s at 128 → 564 CPU-ms per step, against 16–28 steps/s at ≈ 100 CPU-ms with either
 * pool at one thread; the Mega encoder layer at L 1024: 10.3–10.7k tokens/s against 15.6–16.3k.
 * So with n > 1 a baseline runs in both configurations that keep n threads busy — n intra-op
 * threads over a single-threaded OpenBLAS, and one intra-op thread over n OpenBLAS threads
 * (python3-torch's own default here: it starts with one intra-op thread) — and reports the
 * faster: PyTorch at its best on this machine.
 *
 * `MEGA_BENCH_TORCH_THREADS` replaces the list: `omp:blas` pairs separated by commas, e.g. `2:2`
 * for the oversubscribed setting.
 */

/** One thread configuration of a PyTorch process. */
export interface TorchThreads {
  /** intra-op threads (OMP_NUM_THREADS, `torch.set_num_threads`) */
  omp: number;
  /** OpenBLAS threads (OPENBLAS_NUM_THREADS) */
  blas: number;
}

/** The configurations a baseline on `threads` threads runs (see the module comment). */
export function torchThreadConfigs(threads: number, override = process.env.MEGA_BENCH_TORCH_THREADS): TorchThreads[] {
  if (override !== undefined && override.trim() !== '') {
    return override.split(',').map((pair) => {
      const m = /^\s*(\d+):(\d+)\s*$/.exec(pair);
      const omp = m ? Number(m[1]) : NaN,
        blas = m ? Number(m[2]) : NaN;
      if (!(omp >= 1 && blas >= 1)) throw new Error(`MEGA_BENCH_TORCH_THREADS: expected omp:blas pairs of positive integers, got '${pair}'`);
      return { omp, blas };
    });
  }
  if (!(Number.isInteger(threads) && threads >= 1)) throw new RangeError(`torchThreadConfigs: ${threads} threads`);
  return threads === 1
    ? [{ omp: 1, blas: 1 }]
    : [
        { omp: threads, blas: 1 },
        { omp: 1, blas: threads },
      ];
}

/** `base` with the thread settings of `c` (the script's own `--threads` must be `c.omp`). */
export function torchEnv(base: NodeJS.ProcessEnv, c: TorchThreads): NodeJS.ProcessEnv {
  return { ...base, OMP_NUM_THREADS: String(c.omp), OPENBLAS_NUM_THREADS: String(c.blas) };
}

/** Short label, e.g. `omp2+blas1`. */
export function torchThreadsLabel(c: TorchThreads): string {
  return `omp${c.omp}+blas${c.blas}`;
}
