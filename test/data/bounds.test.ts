/**
 * Small inputs must not make the data readers read or inflate without bound (issue 15): a device
 * such as /dev/zero is refused, gzip is inflated only up to what the header declares (IDX) or a
 * cap, and over-long files are refused with a one-line DataError.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError } from '../../src/data/errors.js';
import { readBytes, readMaybeGzip } from '../../src/data/files.js';
import { readIdxImages, readIdxLabels } from '../../src/data/idx.js';
import { readListOpsTsv } from '../../src/data/listops.js';
import { runBounded } from '../bounded.js';
import { tempDir } from './helpers.js';

const t = tempDir();
afterAll(() => t.cleanup());

/** A gzip stream of `header` followed by `mb` MiB of zeros (multi-member: built without allocating them). */
function gzipBomb(header: Uint8Array, mb: number): Buffer {
  const zeros = gzipSync(Buffer.alloc(1 << 20), { level: 9 });
  return Buffer.concat([gzipSync(header), ...Array.from({ length: mb }, () => zeros)]);
}

function idxHeader(magic: number, dims: number[]): Buffer {
  const b = Buffer.alloc(4 + 4 * dims.length);
  b.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
  return b;
}

describe('data readers: bounded reads', () => {
  it('/dev/zero as LM data is refused as not a regular file, fast and in bounded memory', () => {
    const r = runBounded(`import { readLmText } from '@src/data/lmtext.ts';`, `run = () => readLmText('/dev/zero', { blockSize: 8 });`, {
      timeoutMs: 60_000,
      heapMB: 256,
    });
    expect(r.error, r.output).toMatchObject({ name: 'DataError', kind: 'user', isMega: true });
    expect(r.error!.message).toBe('/dev/zero: not a regular file (a device, pipe or socket); expected a file');
    expect(r.peakMB).toBeLessThan(600);
  });

  it('a file over the size limit is refused before it is read', () => {
    const p = t.file('big.txt', Buffer.alloc(5000, 0x61));
    expect(() => readBytes(p, 4096)).toThrow(DataError);
    expect(() => readBytes(p, 4096)).toThrow(`${p}: 5000 bytes, more than the 4096-byte limit of a data file`);
    expect(readBytes(p, 5000).length).toBe(5000);
  });

  it('a gzip file inflating beyond the cap is refused', () => {
    const p = t.file('big.tsv.gz', gzipSync(Buffer.alloc(100_000, 0x61)));
    expect(() => readMaybeGzip(p, 50_000)).toThrow(`${p}: decompresses to more than the 50000-byte limit of a data file`);
    expect(readMaybeGzip(p, 100_000).length).toBe(100_000);
  });

  it('a gzip IDX file is inflated only up to the size its header declares (a 1 MB file inflating to 400 MB)', () => {
    const p = join(t.dir, 'bomb-images-idx3-ubyte.gz');
    writeFileSync(p, gzipBomb(idxHeader(2051, [2, 2, 2]), 400));
    const r = runBounded(`import { readIdxImages } from '@src/data/idx.ts';`, `run = () => readIdxImages(${JSON.stringify(p)});`, {
      timeoutMs: 60_000,
      heapMB: 256,
    });
    expect(r.error, r.output).toMatchObject({ name: 'DataError', kind: 'user' });
    expect(r.error!.message).toBe(`${p}: decompresses to more than the 24 bytes its IDX header declares (16-byte header + 2 x 2 x 2 data bytes)`);
    expect(r.peakMB).toBeLessThan(300);
  });

  it('an honest gzip IDX file still reads; a header declaring more than the limit is refused', () => {
    const img = Buffer.concat([idxHeader(2051, [2, 2, 3]), Buffer.from(Array.from({ length: 12 }, (_, i) => i * 20))]);
    const p = t.file('ok-images.gz', gzipSync(img));
    expect(Array.from(readIdxImages(p).pixels)).toEqual(Array.from({ length: 12 }, (_, i) => i * 20));
    const lab = t.file('ok-labels.gz', gzipSync(Buffer.concat([idxHeader(2049, [3]), Buffer.from([1, 2, 3])])));
    expect(Array.from(readIdxLabels(lab))).toEqual([1, 2, 3]);
    const huge = t.file('huge-images.gz', gzipSync(idxHeader(2051, [60000, 60000, 60000])));
    expect(() => readIdxImages(huge)).toThrow(
      /huge-images\.gz: IDX header declares 60000 x 60000 x 60000 = 2\.16e\+14 bytes, more than the \d+-byte limit of a data file/,
    );
  });
});

describe('ListOps TSV: bounded reads and deep expressions', () => {
  it('/dev/zero is refused as not a regular file', () => {
    const r = runBounded(`import { readListOpsTsv } from '@src/data/listops.ts';`, `run = () => readListOpsTsv('/dev/zero');`, {
      timeoutMs: 60_000,
      heapMB: 256,
    });
    expect(r.error, r.output).toMatchObject({ name: 'DataError', kind: 'user' });
    expect(r.error!.message).toBe('/dev/zero: not a regular file (a device, pipe or socket); expected a file');
  });

  it('validating an expression nested 200k deep, or with 300k arguments, needs no deep call stack', () => {
    const n = 200_000;
    const deep = `${'[MAX '.repeat(n)}7${' ]'.repeat(n)}\t7\n`;
    const wide = `[SM ${'1 '.repeat(300_000)}]\t0\n`;
    const p = t.file('deep.tsv', deep + wide);
    expect(readListOpsTsv(p, true).map((e) => e.label)).toEqual([7, 0]);
    const bad = t.file('bad.tsv', `${'[MIN '.repeat(n)}3${' ]'.repeat(n)}\t4\n`);
    expect(() => readListOpsTsv(bad, true)).toThrow(`${bad}:1: label 4 but the expression evaluates to 3`);
  });
});

describe('gzip TSV: inflation bounded by the compression ratio', () => {
  it('a 200 KB gzip TSV inflating to 400 MB stops early with a clear error', () => {
    const p = join(t.dir, 'bomb.tsv.gz');
    writeFileSync(p, gzipBomb(Buffer.from('1\tx\n'), 400));
    const r = runBounded(`import { readClassificationTsv } from '@src/data/tsv.ts';`, `run = () => readClassificationTsv(${JSON.stringify(p)});`, {
      timeoutMs: 60_000,
      heapMB: 256,
    });
    expect(r.error, r.output).toMatchObject({ name: 'DataError', kind: 'user' });
    expect(r.error!.message).toMatch(
      new RegExp(
        `^${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: decompresses to more than \\d+ bytes ` +
          `\\(64 x its \\d+ compressed bytes, at least 64 MiB\\): not plain data`,
      ),
    );
    expect(r.peakMB).toBeLessThan(400);
  });
});

describe('fairseq data files: bounded reads', () => {
  const cases: Array<[string, string]> = [
    ['readDictionary', `import { readDictionary } from '@src/data/fairseq/dictionary.ts';`],
    ['readIndex', `import { readIndex } from '@src/data/fairseq/indexed.ts';`],
  ];
  for (const [fn, imp] of cases) {
    it(`${fn}('/dev/zero') is refused as not a regular file`, () => {
      const r = runBounded(imp, `run = () => ${fn}('/dev/zero');`, { timeoutMs: 60_000, heapMB: 256 });
      expect(r.error, r.output).toMatchObject({ name: 'DataError', kind: 'user' });
      expect(r.error!.message).toBe('/dev/zero: not a regular file (a device, pipe or socket); expected a file');
    });
  }
});
