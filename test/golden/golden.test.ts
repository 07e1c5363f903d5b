/**
 * The golden suite: every case file in test/golden (copied unchanged from the PyTorch release's
 * outputs) is run on the f64 and the f32 path of the CPU backend; every stored tensor must meet
 * FORMAT.md's rule. Other backends run it in test/tensor/backends/every-backend.test.ts.
 * MEGA_GOLDEN_FILTER=<substring> narrows the cases (for development only).
 */
import { describe, expect, it } from 'vitest';
import { runFile } from '../../src/verify/index.js';
import { explain, GOLDEN_FILTER, goldenFiles, goldenPath } from './helpers.js';

const files = goldenFiles();

describe('golden cases (PyTorch release)', () => {
  it('has all 49 public cases', () => {
    if (!GOLDEN_FILTER) expect(files.length).toBe(49);
  });
  for (const f of files) {
    for (const prec of ['f64', 'f32'] as const) {
      it(`${f.replace('.msgpack', '')} ${prec}`, () => {
        const r = runFile(goldenPath(f), prec);
        expect(r.pass, explain(r)).toBe(true);
        expect(r.tensors.length).toBeGreaterThan(0);
      });
    }
  }
});
