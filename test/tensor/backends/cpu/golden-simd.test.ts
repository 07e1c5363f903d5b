/**
 * The golden suite (test/golden, unchanged files and tolerances) re-run with every kernel forced
 * onto the WebAssembly SIMD paths — whatever the tensor size — and every job split over 2 threads,
 * so the small golden cases exercise the SIMD gemm, elementwise, reduction and softmax kernels and
 * the pool, in f64 and f32. (The plain golden suite runs the size-dispatched mix.)
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getNumThreads, setNumThreads, simdStatus, simdTuning } from '../../../../src/tensor/backends/cpu/matmul.js';
import { wasmThreadStats } from '../../../../src/tensor/backends/cpu/wasm/runtime.js';
import { runFile } from '../../../../src/verify/index.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), '../../../golden');
const files = readdirSync(dir).filter((f) => f.endsWith('.msgpack')).sort();

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
        const r = runFile(join(dir, f), prec);
        const bad = r.tensors.filter((t) => !t.pass).map((t) => `${t.name}: err ${t.maxErr.toExponential(3)} > tol ${t.tol.toExponential(3)}`);
        expect(r.pass, r.error ?? bad.join('\n')).toBe(true);
      });
    }
  }
  it('the pool workers took part', () => {
    expect(wasmThreadStats().workerTasks).toBeGreaterThan(0);
  });
});
