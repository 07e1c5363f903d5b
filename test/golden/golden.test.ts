/**
 * The golden suite: every case file in test/golden (copied unchanged from the PyTorch release's
 * outputs) is run on the f64 and the f32 path; every stored tensor must meet FORMAT.md's rule.
 * MEGA_GOLDEN_FILTER=<substring> narrows the cases (for development only).
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runFile, type CaseReport } from '../../src/verify/index.js';

const dir = dirname(fileURLToPath(import.meta.url));
const filter = process.env.MEGA_GOLDEN_FILTER ?? '';
const files = readdirSync(dir).filter((f) => f.endsWith('.msgpack') && f.includes(filter)).sort();

function explain(r: CaseReport): string {
  if (r.error) return `${r.name} [${r.precision}]: ${r.error}`;
  const bad = r.tensors.filter((t) => !t.pass);
  return `${r.name} [${r.precision}] failing tensors:\n` + bad.map((t) => `  ${t.name}: err ${t.maxErr.toExponential(3)} > tol ${t.tol.toExponential(3)} (scale ${t.scale.toExponential(3)})${t.note ? ' ' + t.note : ''}`).join('\n');
}

describe('golden cases (PyTorch release)', () => {
  it('has all 49 public cases', () => {
    if (!filter) expect(files.length).toBe(49);
  });
  for (const f of files) {
    for (const prec of ['f64', 'f32'] as const) {
      it(`${f.replace('.msgpack', '')} ${prec}`, () => {
        const r = runFile(join(dir, f), prec);
        expect(r.pass, explain(r)).toBe(true);
        expect(r.tensors.length).toBeGreaterThan(0);
      });
    }
  }
});
