/**
 * The CLI on hostile inputs of issue 15: a one-line message naming the file, exit 2 for bad input
 * (exit 1 for a golden case that fails), in bounded time and memory.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { main } from '../../src/cli/main.js';
import { encodeGolden, readGoldenFile } from '../../src/io/golden.js';
import { importFairseqFile, saveImported } from '../../src/train/fairseq-import.js';
import { runBounded } from '../bounded.js';
import { tempDir } from '../data/helpers.js';

const t = tempDir('mega-cli-hostile-');
afterAll(() => t.cleanup());
const here = join(__dirname, '..');

let stdout: MockInstance, stderr: MockInstance;
beforeEach(() => {
  stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
});
afterEach(() => vi.restoreAllMocks());
const text = (m: MockInstance) => m.mock.calls.map((c) => String(c[0])).join('');

describe('mega CLI on hostile inputs', () => {
  it('verify: an all-NaN reference fails (exit 1) with a NaN note', async () => {
    const c = readGoldenFile(join(here, 'golden', 'relpos_simple.msgpack'));
    for (const x of Object.values(c.outputs)) (x.data as Float64Array).fill(NaN);
    const p = t.file('nan.msgpack', encodeGolden(c));
    expect(await main(['verify', '--dtype', 'f64', p])).toBe(1);
    expect(text(stdout)).toMatch(/FAIL relpos_simple \[f64\] tensor=outputs\.out .*\(NaN at element 0/);
    expect(text(stdout)).toMatch(/0 passed, 1 failed/);
  });

  it('eval: a checkpoint with a flipped bit is exit 2 naming the file and the tensor', async () => {
    const pt = join(here, 'golden', 'checkpoints', 'mega_lra_listops_tiny.pt');
    const w = join(t.dir, 'w.safetensors');
    saveImported(w, importFairseqFile(pt), pt);
    const b = readFileSync(w);
    b[b.length - 3] ^= 0x04;
    writeFileSync(w, b);
    expect(await main(['eval', w, '--data', t.dir])).toBe(2);
    const err = text(stderr).trim().split('\n');
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(
      new RegExp(`^mega eval: ${w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: tensor ".+": data checksum mismatch \\(the file is corrupt\\)$`),
    );
  });

  it('train --task lm --data /dev/zero: exit 2 at once, in bounded memory', () => {
    const r = runBounded(
      `import { main } from '@src/cli/main.ts';`,
      `run = async () => { const rc = await main(['train', '--task', 'lm', '--data', '/dev/zero', '--save-dir', ` +
        `${JSON.stringify(join(t.dir, 'run'))}, '--max-update', '1']); throw new Error('exit ' + rc); };`,
      { timeoutMs: 120_000, heapMB: 512 },
    );
    expect(r.error?.message, r.output).toBe('exit 2');
    expect(r.output).toMatch(/mega train: \/dev\/zero: not a regular file \(a device, pipe or socket\); expected a file/);
    expect(r.peakMB).toBeLessThan(800);
  });

  it('generate / export --dict /dev/zero and eval of /dev/zero: exit 2 at once, in bounded memory', () => {
    const pt = join(here, 'golden', 'checkpoints', 'mega_lm_tiny.pt');
    const r = runBounded(
      `import { main } from '@src/cli/main.ts';`,
      `run = async () => { const rcs = [await main(['generate', ${JSON.stringify(pt)}, '--dict', '/dev/zero', '--prompt', ` +
        `'a']), await main(['export', ${JSON.stringify(pt)}, ${JSON.stringify(join(t.dir, 'out'))}, '--dict', '/dev/zero']), ` +
        `await main(['eval', '/dev/zero', ${JSON.stringify(t.dir)}])]; throw new Error('exit ' + rcs.join(',')); };`,
      { timeoutMs: 120_000, heapMB: 512 },
    );
    expect(r.error?.message, r.output).toBe('exit 2,2,2');
    expect(r.output).toMatch(/mega generate: --dict \/dev\/zero: not a regular file/);
    expect(r.output).toMatch(/mega export: --dict \/dev\/zero: not a regular file/);
    expect(r.peakMB).toBeLessThan(800);
  });
});
