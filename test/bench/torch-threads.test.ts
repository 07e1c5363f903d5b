/**
 * The PyTorch baselines' thread configurations (bench/torch-threads.ts): never both pools at more
 * than one thread (they oversubscribe the cores), every configuration keeps `threads` threads
 * busy, and the override is parsed strictly.
 */
import { describe, expect, it } from 'vitest';
import { torchEnv, torchThreadConfigs, torchThreadsLabel } from '../../bench/torch-threads.js';

describe('torchThreadConfigs', () => {
  it('one thread: both pools at one', () => {
    expect(torchThreadConfigs(1, undefined)).toEqual([{ omp: 1, blas: 1 }]);
  });

  it('n threads: intra-op n over one OpenBLAS thread, and one over n OpenBLAS threads', () => {
    for (const n of [2, 4, 16]) {
      const cs = torchThreadConfigs(n, undefined);
      expect(cs).toEqual([
        { omp: n, blas: 1 },
        { omp: 1, blas: n },
      ]);
      for (const c of cs) expect(Math.min(c.omp, c.blas)).toBe(1);
    }
  });

  it('MEGA_BENCH_TORCH_THREADS replaces the list; malformed pairs are refused', () => {
    expect(torchThreadConfigs(2, '2:2')).toEqual([{ omp: 2, blas: 2 }]);
    expect(torchThreadConfigs(2, ' 1:2 , 2:1 ')).toEqual([
      { omp: 1, blas: 2 },
      { omp: 2, blas: 1 },
    ]);
    expect(torchThreadConfigs(2, '')).toHaveLength(2);
    for (const bad of ['2', '2:0', '0:1', 'a:b', '2:2,', '1.5:1']) expect(() => torchThreadConfigs(2, bad)).toThrow(/MEGA_BENCH_TORCH_THREADS/);
    expect(() => torchThreadConfigs(0, undefined)).toThrow(RangeError);
  });

  it('environment and label', () => {
    const env = torchEnv({ PATH: '/bin', OMP_NUM_THREADS: '8' }, { omp: 2, blas: 1 });
    expect(env).toEqual({ PATH: '/bin', OMP_NUM_THREADS: '2', OPENBLAS_NUM_THREADS: '1' });
    expect(torchThreadsLabel({ omp: 1, blas: 2 })).toBe('omp1+blas2');
  });
});
