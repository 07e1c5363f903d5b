/** A number in a --config file too large for a double is reported as such, not as `null` (issue 15). */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/nn/errors.js';
import { readConfigFile } from '../../src/train/args.js';
import { runBounded } from '../bounded.js';

const dir = mkdtempSync(join(tmpdir(), 'mega-cfg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('config numbers out of range', () => {
  it('"lr": 1e999 names the key and says the number is too large', () => {
    const p = join(dir, 'c.json');
    writeFileSync(p, '{"lr": 1e999}');
    expect(() => readConfigFile(p)).toThrow(ConfigError);
    expect(() => readConfigFile(p)).toThrow(`${p}: "lr" is too large for a number (it reads as Infinity): expected a number`);
    writeFileSync(p, '{"max_update": -1e999}');
    expect(() => readConfigFile(p)).toThrow(`${p}: "max_update" is too large for a number (it reads as -Infinity): expected an integer`);
  });
});

describe('config file reading is bounded', () => {
  it('--config /dev/zero is refused as not a regular file instead of read forever', () => {
    const r = runBounded(`import { readConfigFile } from '@src/train/args.ts';`, `run = () => readConfigFile('/dev/zero');`, {
      timeoutMs: 60_000,
      heapMB: 256,
    });
    expect(r.error, r.output).toMatchObject({ name: 'ConfigError', kind: 'user' });
    expect(r.error!.message).toBe('/dev/zero: not a regular file (a device, pipe or socket); expected a file');
  });
});
