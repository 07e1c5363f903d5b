/**
 * The golden suite (test/golden, unchanged files and tolerances) re-run with every kernel forced
 * onto the WebAssembly SIMD paths — whatever the tensor size — and every job split over 2 threads,
 * so the small golden cases exercise the SIMD gemm, elementwise, reduction and softmax kernels and
 * the pool, in f64 and f32. (The plain golden suite runs the size-dispatched mix.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getNumThreads, setNumThreads } from '../../../../src/tensor/backends/cpu/pool.js';
import { simdStatus, simdTuning } from '../../../../src/tensor/backends/cpu/wasm/runtime.js';
import { wasmThreadStats } from '../../../../src/tensor/backends/cpu/wasm/runtime.js';
import { runFile } from '../../../../src/verify/index.js';
import { explain, goldenFiles, goldenPath } from '../../../golden/helpers.js';

const files = goldenFiles(true);

describe('golden cases on the forced SIMD kernels, 2 threads', () => {
  let prevThreads = 1;
  beforeAll(() => {
    prevThreads = getNumThreads();
    simdTuning.force = true;
    setNumThreads(2);
  });
  afterAll(() => {
    simdTuning.force = false;
    setNumThreads(prevThreads);
  });

  it('SIMD is available', () => {
    expect(simdStatus().enabled).toBe(true);
    expect(files.length).toBe(49);
  });
  for (const f of files) {
    for (const prec of ['f64', 'f32'] as const) {
      it(`${f.replace('.msgpack', '')} ${prec}`, () => {
        const r = runFile(goldenPath(f), prec);
        expect(r.pass, explain(r)).toBe(true);
      });
    }
  }
  it('the pool workers took part', () => {
    expect(wasmThreadStats().workerTasks).toBeGreaterThan(0);
  });
});
