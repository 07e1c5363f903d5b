/**
 * `mega verify` must not pass what it did not check: NaN on either side (unless both sides hold
 * NaN at the same place and the format allows it — FORMAT.md does not), an infinite reference
 * scale, and a case that compares nothing.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeGolden, encodeGolden, readGoldenFile } from '../../src/io/golden.js';
import { compareTensor, runCase, runFile } from '../../src/verify/index.js';
import { fromStorage } from '../../src/tensor/tensor.js';
import { runBounded } from '../bounded.js';

const dir = mkdtempSync(join(tmpdir(), 'verify-trust-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const golden = (n: string) => join(__dirname, '..', 'golden', `${n}.msgpack`);

describe('verify trusts nothing it did not compare', () => {
  it('a reference output of all NaN fails (was: err=Infinity scale=NaN tol=NaN counted ok)', () => {
    const c = readGoldenFile(golden('relpos_simple'));
    for (const t of Object.values(c.outputs)) (t.data as Float64Array).fill(NaN);
    const p = join(dir, 'nan_ref.msgpack');
    writeFileSync(p, encodeGolden(c));
    for (const prec of ['f64', 'f32'] as const) {
      const r = runFile(p, prec);
      expect(r.pass).toBe(false);
      expect(r.tensors.some((t) => !t.pass && /NaN/.test(t.note ?? ''))).toBe(true);
    }
  });

  it('one NaN on either side fails; NaN on both sides at the same place fails too (FORMAT.md never allows it)', () => {
    const ref = { dtype: 'f64' as const, shape: [3], data: new Float64Array([1, 2, 3]) };
    expect(compareTensor('x', fromStorage(new Float64Array([1, NaN, 3]), [3]), ref, 'f64').pass).toBe(false);
    const refNaN = { dtype: 'f64' as const, shape: [3], data: new Float64Array([1, NaN, 3]) };
    expect(compareTensor('x', fromStorage(new Float64Array([1, 2, 3]), [3]), refNaN, 'f64').pass).toBe(false);
    expect(compareTensor('x', fromStorage(new Float64Array([1, NaN, 3]), [3]), refNaN, 'f64').pass).toBe(false);
    expect(compareTensor('x', fromStorage(new Float64Array([1, NaN, 3]), [3]), refNaN, 'f64', { nanEqual: true }).pass).toBe(true);
    expect(compareTensor('x', fromStorage(new Float64Array([NaN, 2, 3]), [3]), refNaN, 'f64', { nanEqual: true }).pass).toBe(false);
  });

  it('an infinite reference value does not make the tolerance infinite', () => {
    const ref = { dtype: 'f64' as const, shape: [3], data: new Float64Array([1, -Infinity, 3]) };
    expect(compareTensor('x', fromStorage(new Float64Array([1, -Infinity, 3]), [3]), ref, 'f64').pass).toBe(true);
    expect(compareTensor('x', fromStorage(new Float64Array([1, -Infinity, 300]), [3]), ref, 'f64').pass).toBe(false);
    expect(compareTensor('x', fromStorage(new Float64Array([1, 5, 3]), [3]), ref, 'f64').pass).toBe(false);
  });

  it('a case with an empty outputs map fails (nothing compared)', () => {
    const c = decodeGolden(encodeGolden(readGoldenFile(golden('relpos_simple'))));
    c.outputs = {};
    delete c.grads;
    const r = runCase(c, 'f64');
    expect(r.pass).toBe(false);
    expect(r.error ?? '').toMatch(/no outputs|nothing/);
  });
});

describe('verify bounds the sizes a golden file asks for', () => {
  it('config max_positions 1e9 fails the case quickly in bounded memory (was: 4.5 GB)', () => {
    const c = readGoldenFile(golden('relpos_rotary'));
    c.config.max_positions = 1e9;
    const p = join(dir, 'huge_config.msgpack');
    writeFileSync(p, encodeGolden(c));
    const r = runBounded(
      `import { runFile } from '@src/verify/index.ts';`,
      `run = () => { const r = runFile(${JSON.stringify(p)}, 'f64'); if (!r.pass) throw new Error(r.error ?? 'failed without a reason'); };`,
      { timeoutMs: 60_000, heapMB: 512 },
    );
    expect(r.error?.message, r.output).toBe(
      'config.max_positions = 1000000000 is larger than any size this case can use (at most 4096: 4 x max(1024, the largest stored dimension 9))',
    );
    expect(r.peakMB).toBeLessThan(600);
  });

  it('an option (seq_len 1e7) is bounded the same way; the unmodified case still passes', () => {
    const c = readGoldenFile(golden('relpos_simple'));
    const ok = runCase(c, 'f64');
    expect(ok.pass, ok.error).toBe(true);
    c.options.seq_len = 1e7;
    const r = runCase(c, 'f64');
    expect(r.pass).toBe(false);
    expect(r.error).toMatch(/^options\.seq_len = 10000000 is larger than any size this case can use/);
  });
});
