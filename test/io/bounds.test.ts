/**
 * Small hostile files must fail fast, in bounded memory, with a typed error naming the file
 * (issue 15): zip entries inflating beyond their declared size, honest entries over the cap,
 * pickles of shared references nested wide and deep, deeply nested lists, huge APPENDS, and a
 * safetensors header nested 200k levels.
 */
import { join } from 'node:path';
import { constants as zc, deflateRawSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckpointError } from '../../src/io/errors.js';
import { decodeFairseqCheckpoint } from '../../src/io/pt.js';
import { decodeSafetensors } from '../../src/io/safetensors.js';
import { ZipArchive, crc32 } from '../../src/io/zip.js';
import { runBounded } from '../bounded.js';
import { tempDir } from '../data/helpers.js';
import { makeZip, torchZip } from './fixtures.js';

const t = tempDir('mega-io-bounds-');
afterAll(() => t.cleanup());

/** A zip with one deflated entry whose data is `mb` MiB of zeros but whose directory says `declared` bytes. */
function zipBomb(mb: number, declared: number): Uint8Array {
  const one = deflateRawSync(Buffer.alloc(1 << 20), { level: 9, finishFlush: zc.Z_FULL_FLUSH });
  const body = Buffer.concat([...Array.from({ length: mb }, () => one), deflateRawSync(Buffer.alloc(0))]);
  const name = Buffer.from('archive/data.pkl');
  const lh = Buffer.alloc(30);
  lh.writeUInt32LE(0x04034b50, 0);
  lh.writeUInt16LE(20, 4);
  lh.writeUInt16LE(8, 8);
  lh.writeUInt32LE(0, 14);
  lh.writeUInt32LE(body.length, 18);
  lh.writeUInt32LE(declared, 22);
  lh.writeUInt16LE(name.length, 26);
  const cd = Buffer.alloc(46);
  cd.writeUInt32LE(0x02014b50, 0);
  cd.writeUInt16LE(20, 4);
  cd.writeUInt16LE(20, 6);
  cd.writeUInt16LE(8, 10);
  cd.writeUInt32LE(0, 16);
  cd.writeUInt32LE(body.length, 20);
  cd.writeUInt32LE(declared, 24);
  cd.writeUInt16LE(name.length, 28);
  const cdOff = lh.length + name.length + body.length;
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(1, 8);
  eocd.writeUInt16LE(1, 10);
  eocd.writeUInt32LE(cd.length + name.length, 12);
  eocd.writeUInt32LE(cdOff, 16);
  return Buffer.concat([lh, name, body, cd, name, eocd]);
}

/** Protocol-2 pickle bytes: `{'args': Namespace(x=<value>), 'model': {}}`, `value` given as opcodes. */
function argsPickle(value: Buffer): Buffer {
  const str = (s: string) => {
    const b = Buffer.from(s);
    const h = Buffer.alloc(5);
    h[0] = 0x58;
    h.writeUInt32LE(b.length, 1);
    return Buffer.concat([h, b]);
  };
  return Buffer.concat([
    Buffer.from([0x80, 2, 0x7d, 0x28]),
    str('args'),
    Buffer.from('cargparse\nNamespace\n'),
    Buffer.from([0x29, 0x81, 0x7d, 0x28]),
    str('x'),
    value,
    Buffer.from([0x75, 0x62]),
    str('model'),
    Buffer.from([0x7d, 0x75, 0x2e]),
  ]);
}

/** Opcodes of a list DAG: level 0 = [], level i = [level i-1] * wide, via the memo. */
function sharedDag(wide: number, deep: number): Buffer {
  const ops: number[] = [0x5d, 0x72, 0, 0, 0, 0]; // EMPTY_LIST, LONG_BINPUT 0
  for (let i = 1; i <= deep; i++) {
    ops.push(0x30, 0x28); // POP (the previous level stays in the memo), MARK
    for (let j = 0; j < wide; j++) ops.push(0x6a, (i - 1) & 0xff, ((i - 1) >> 8) & 0xff, 0, 0); // LONG_BINGET i-1
    ops.push(0x6c, 0x72, i & 0xff, (i >> 8) & 0xff, 0, 0); // LIST, LONG_BINPUT i
  }
  return Buffer.from(ops);
}

function writeCk(name: string, pkl: Uint8Array): string {
  return t.file(name, torchZip(pkl, {}));
}

const decodeIn = (p: string) =>
  [
    `import { readFileSync } from 'node:fs';\nimport { decodeFairseqCheckpoint } from '@src/io/pt.ts';`,
    `run = () => decodeFairseqCheckpoint(readFileSync(${JSON.stringify(p)}), ${JSON.stringify(p)});`,
  ] as const;

describe('zip: bounded inflation', () => {
  it('an entry declaring 1000 bytes that inflates to 400 MB stops at its declared size', () => {
    const p = t.file('bomb.pt', zipBomb(400, 1000));
    const r = runBounded(
      `import { readFileSync } from 'node:fs';\nimport { ZipArchive } from '@src/io/zip.ts';`,
      `run = () => new ZipArchive(readFileSync(${JSON.stringify(p)}), ${JSON.stringify(p)}).read('archive/data.pkl');`,
      { heapMB: 256 },
    );
    expect(r.error, r.output).toMatchObject({ name: 'CheckpointError', kind: 'user' });
    expect(r.error!.message).toBe(`${p}: entry "archive/data.pkl" inflates to more than the 1000 bytes it declares`);
    expect(r.peakMB).toBeLessThan(300);
  });

  it('an honest entry over the size cap is refused before inflating', () => {
    const z = makeZip([{ name: 'a/data.pkl', data: new Uint8Array(5000), method: 8 }]);
    expect(() => new ZipArchive(z, 'big.pt', { maxEntryBytes: 4096 }).read('a/data.pkl')).toThrow(CheckpointError);
    expect(() => new ZipArchive(z, 'big.pt', { maxEntryBytes: 4096 }).read('a/data.pkl')).toThrow(
      'big.pt: entry "a/data.pkl" is 5000 bytes, more than the 4096-byte limit of one archive entry',
    );
    expect(new ZipArchive(z, 'big.pt', { maxEntryBytes: 5000 }).read('a/data.pkl').length).toBe(5000);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });
});

describe('pickle: bounded work on shared and nested structures', () => {
  it('shared references nested ten wide and 39 deep decode without re-expansion', () => {
    const p = writeCk('dag.pt', argsPickle(sharedDag(10, 39)));
    const r = runBounded(...decodeIn(p), { timeoutMs: 60_000, heapMB: 256 });
    expect(r.error, r.output).toBeNull();
    expect(r.peakMB).toBeLessThan(400);
  });

  it('the same DAG as the top-level object fails with a short message, not a 10^39 description', () => {
    const pkl = Buffer.concat([Buffer.from([0x80, 2]), sharedDag(10, 39), Buffer.from([0x2e])]);
    const p = writeCk('dagtop.pt', pkl);
    const r = runBounded(...decodeIn(p), { timeoutMs: 60_000, heapMB: 256 });
    expect(r.error, r.output).toMatchObject({ name: 'CheckpointError', kind: 'user' });
    expect(r.error!.message.startsWith(`${p}: top-level object is [[[[`)).toBe(true);
    expect(r.error!.message.length).toBeLessThan(400);
  });

  it('1M nested lists end in a CheckpointError naming the file, not a stack overflow', () => {
    const n = 1_000_000;
    const nested = Buffer.concat([Buffer.alloc(n, 0x5d), Buffer.alloc(n - 1, 0x61)]); // EMPTY_LIST x n, APPEND x n-1
    const p = writeCk('deep.pt', argsPickle(nested));
    expect(() => decodeFairseqCheckpoint(new Uint8Array(torchZip(argsPickle(nested), {})), p)).toThrow(CheckpointError);
    expect(() => decodeFairseqCheckpoint(new Uint8Array(torchZip(argsPickle(nested), {})), p)).toThrow(
      new RegExp(`^${p}: .*nested more than \\d+ levels deep`),
    );
    const top = Buffer.concat([Buffer.from([0x80, 2]), nested, Buffer.from([0x2e])]);
    expect(() => decodeFairseqCheckpoint(new Uint8Array(torchZip(top, {})), p)).toThrow(CheckpointError);
  });

  it('APPENDS of 300k items decodes', () => {
    const n = 300_000;
    const list = Buffer.concat([Buffer.from([0x5d, 0x28]), Buffer.alloc(n, 0x4e), Buffer.from([0x65])]);
    const ck = decodeFairseqCheckpoint(new Uint8Array(torchZip(argsPickle(list), {})), 'appends.pt');
    expect((ck.args.x as unknown[]).length).toBe(n);
  });
});

describe('safetensors: deep nesting in the header', () => {
  const craft = (header: string) => {
    const h = Buffer.from(header);
    const b = Buffer.alloc(8 + h.length);
    b.writeBigUInt64LE(BigInt(h.length), 0);
    h.copy(b, 8);
    return new Uint8Array(b);
  };
  const deep = '['.repeat(200_000) + ']'.repeat(200_000);
  it('a shape nested 200k levels is a CheckpointError naming the file', () => {
    const b = craft(`{"w":{"dtype":"F32","shape":${deep},"data_offsets":[0,0]}}`);
    expect(() => decodeSafetensors(b, 'deep.safetensors')).toThrow(CheckpointError);
    expect(() => decodeSafetensors(b, 'deep.safetensors')).toThrow(/^deep\.safetensors: /);
  });
  it('metadata and entries nested 200k levels are CheckpointErrors naming the file', () => {
    expect(() => decodeSafetensors(craft(`{"__metadata__":{"k":${deep}}}`), 'meta.safetensors')).toThrow(/^meta\.safetensors: bad header/);
    expect(() => decodeSafetensors(craft(`{"w":${deep}}`), 'entry.safetensors')).toThrow(/^entry\.safetensors: bad header/);
    expect(() => decodeSafetensors(craft(`{"w":{"dtype":${deep}}}`), 'dt.safetensors')).toThrow(/^dt\.safetensors: bad header/);
  });
});

describe('model and golden files: bounded reads', () => {
  const cases: Array<[string, string, string]> = [
    ['readGoldenFile', `import { readGoldenFile } from '@src/io/golden.ts';`, 'FormatError'],
    ['readSafetensors', `import { readSafetensors } from '@src/io/safetensors.ts';`, 'CheckpointError'],
    ['readFairseqCheckpoint', `import { readFairseqCheckpoint } from '@src/io/pt.ts';`, 'CheckpointError'],
    ['loadModelFile', `import { loadModelFile } from '@src/train/fairseq-import.ts';`, 'CheckpointError'],
    ['importFairseqFile', `import { importFairseqFile } from '@src/train/fairseq-import.ts';`, 'CheckpointError'],
  ];
  for (const [fn, imp, cls] of cases) {
    it(`${fn}('/dev/zero') is refused as not a regular file, in bounded memory`, () => {
      const r = runBounded(imp, `run = () => ${fn}('/dev/zero');`, { timeoutMs: 60_000, heapMB: 256 });
      expect(r.error, r.output).toMatchObject({ name: cls, kind: 'user' });
      expect(r.error!.message).toBe('/dev/zero: not a regular file (a device, pipe or socket); expected a file');
      expect(r.peakMB).toBeLessThan(400);
    });
  }
});

describe('fairseq import: shared references in the args', () => {
  it('an args field holding a 10-wide, 39-deep shared DAG imports without expanding it', () => {
    const listops = join(__dirname, '..', 'golden', 'checkpoints', 'mega_lra_listops_tiny.pt');
    const r = runBounded(
      `import { readFairseqCheckpoint } from '@src/io/pt.ts';\nimport { importFairseq } from ` +
        `'@src/train/fairseq-import.ts';\nimport { encodeWeights } from '@src/train/checkpoint.ts';`,
      `const ck = readFairseqCheckpoint(${JSON.stringify(listops)});
let v: unknown[] = [];
for (let i = 0; i < 39; i++) v = Array.from({ length: 10 }, () => v);
ck.args.x = v;
run = () => { const imp = importFairseq(ck, { label: 'dag.pt' }); encodeWeights(imp.model, imp.spec, {}, 0, 'id'); };`,
      { timeoutMs: 60_000, heapMB: 512 },
    );
    expect(r.error, r.output).toMatchObject({ name: 'CheckpointError', kind: 'user' });
    expect(r.error!.message).toMatch(/^dag\.pt: model args x /);
    expect(r.peakMB).toBeLessThan(800);
  });
});

describe('pickle: long integers', () => {
  it('a LONG4 of 1 MB decodes in linear time (was quadratic: about 17 minutes)', () => {
    const r = runBounded(
      `import { unpickle } from '@src/io/pickle.ts';`,
      `const n = 1 << 20;
const b = new Uint8Array(1 + 4 + n + 1);
b[0] = 0x8b; new DataView(b.buffer).setInt32(1, n, true); b.fill(0x55, 5, 5 + n); b[5 + n] = 0x2e;
run = () => { const v = unpickle(b) as bigint; if (typeof v !== 'bigint' || v % 256n !== 0x55n) throw new Error('wrong value'); };`,
      { timeoutMs: 60_000, heapMB: 512 },
    );
    expect(r.error, r.output).toBeNull();
  });
  it('LONG1 values, negative ones included, are exact', async () => {
    const { unpickle } = await import('../../src/io/pickle.js');
    const long1 = (bytes: number[]) => Uint8Array.from([0x8a, bytes.length, ...bytes, 0x2e]);
    expect(unpickle(long1([]))).toBe(0);
    expect(unpickle(long1([0xff]))).toBe(-1);
    expect(unpickle(long1([0x00, 0x80]))).toBe(-32768);
    expect(unpickle(long1([1, 0, 0, 0, 0, 0, 0, 0, 1]))).toBe(2n ** 64n + 1n);
    expect(unpickle(long1([0, 0, 0, 0, 0, 0, 0, 0, 0x80]))).toBe(-(2n ** 71n));
  });
});

describe('torch zip: broadcast views', () => {
  it('a stride-0 view of 2^28 elements over a 1-element storage is refused before it is copied', () => {
    const r = runBounded(
      `import { decodeFairseqCheckpoint } from '@src/io/pt.ts';\nimport { torchPickle, torchZip } from ${JSON.stringify(join(__dirname, 'fixtures.ts'))};`,
      `const pkl = torchPickle([{ name: 'w', storageType: 'FloatStorage', key: '0', numel: 1, offset: 0, size: [1 << 14, 1 << 14], stride: [0, 0] }]);
const zip = torchZip(pkl, { '0': new Uint8Array(4) });
run = () => decodeFairseqCheckpoint(zip, 'bcast.pt');`,
      { timeoutMs: 60_000, heapMB: 256 },
    );
    expect(r.error, r.output).toMatchObject({ name: 'CheckpointError', kind: 'user' });
    expect(r.error!.message).toMatch(
      /^bcast\.pt:archive\/data\.pkl: tensor on storage "0": strided view of 268435456 elements .* exceeds what this file may expand to/,
    );
    expect(r.peakMB).toBeLessThan(400);
  });
});
