/** Helpers of the golden suites (test/golden, test/tensor/backends): the case files and a failure report. */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CaseReport } from '../../src/verify/index.js';

/** Folder of the golden case files. */
export const GOLDEN_DIR = dirname(fileURLToPath(import.meta.url));

/** `MEGA_GOLDEN_FILTER=<substring>` narrows the cases (for development only). */
export const GOLDEN_FILTER = process.env.MEGA_GOLDEN_FILTER ?? '';

/** The case files (`*.msgpack`, sorted), narrowed by {@link GOLDEN_FILTER} unless `all`. */
export function goldenFiles(all = false): string[] {
  return readdirSync(GOLDEN_DIR).filter((f) => f.endsWith('.msgpack') && (all || f.includes(GOLDEN_FILTER))).sort();
}

/** Path of a case file. */
export function goldenPath(file: string): string {
  return join(GOLDEN_DIR, file);
}

/** A failed case's report: its error, or each failing tensor with its error, tolerance and scale. */
export function explain(r: CaseReport): string {
  if (r.error) return `${r.name} [${r.precision}]: ${r.error}`;
  const bad = r.tensors.filter((t) => !t.pass);
  return `${r.name} [${r.precision}] failing tensors:\n` + bad.map((t) => `  ${t.name}: err ${t.maxErr.toExponential(3)} > tol ${t.tol.toExponential(3)} ` +
    `(scale ${t.scale.toExponential(3)})${t.note ? ' ' + t.note : ''}`).join('\n');
}
