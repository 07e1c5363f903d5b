/**
 * The environment of the measured processes: glibc malloc settings for the timed children and
 * the OpenBLAS that the PyTorch baselines load (bench/mega.ts, bench/ceiling.ts,
 * bench/matmul-shapes.ts, bench/train.ts).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * OpenBLAS for the PyTorch baseline: `MEGA_OPENBLAS_DIR`, else the system's (Debian's
 * libopenblas0-pthread installs it under the multiarch library folder), if it holds libblas.so.3.
 */
export function openblasDir(): string | undefined {
  const multiarch = ({ x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' } as Record<string, string>)[process.arch];
  const cands = [process.env.MEGA_OPENBLAS_DIR, multiarch ? `/usr/lib/${multiarch}/openblas-pthread` : undefined];
  return cands.find((d) => d !== undefined && d !== '' && existsSync(path.join(d, 'libblas.so.3')));
}

/**
 * `env` with the OpenBLAS folder ({@link openblasDir}) first on `LD_LIBRARY_PATH`, so that
 * PyTorch's products run on OpenBLAS whatever `libblas.so.3` the system links by default (a fresh
 * Debian with python3-torch alone has the reference BLAS, several times slower); `env` unchanged
 * when there is none.
 */
export function withOpenblas(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const blas = openblasDir();
  if (!blas) return env;
  return { ...env, LD_LIBRARY_PATH: [blas, env.LD_LIBRARY_PATH].filter(Boolean).join(':') };
}

/**
 * glibc malloc settings for the measured processes: large tensors otherwise come from fresh
 * mmap()s whose first touch costs ~10 µs per 4 KiB page on this VM (more than the arithmetic on
 * them; see docs/PERF.md). Keeping freed memory in the heap is what PyTorch's allocator does for
 * its own blocks. `MEGA_BENCH_MALLOC=system` measures with the system defaults instead.
 */
export function mallocEnv(): NodeJS.ProcessEnv {
  if ((process.env.MEGA_BENCH_MALLOC ?? '') === 'system') return {};
  return { MALLOC_MMAP_THRESHOLD_: '4294967296', MALLOC_TRIM_THRESHOLD_: '68719476736' };
}
