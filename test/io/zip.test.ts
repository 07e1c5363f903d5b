import { describe, expect, it } from 'vitest';
import { ZipArchive, crc32 } from '../../src/io/zip.js';
import { makeZip } from './fixtures.js';

describe('zip', () => {
  it('reads stored and deflated entries and checks CRC', () => {
    const a = new TextEncoder().encode('hello hello hello hello');
    const z = new ZipArchive(
      makeZip([
        { name: 'a', data: a },
        { name: 'dir/b', data: a, method: 8 },
      ]),
    );
    expect([...z.entries.keys()]).toEqual(['a', 'dir/b']);
    expect(z.read('a')).toEqual(a);
    expect(z.read('dir/b')).toEqual(a);
    expect(z.entries.get('dir/b')?.compressedSize).toBeLessThan(a.length);
    expect(() => z.read('c')).toThrow(/missing entry "c"/);
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    const bad = makeZip([{ name: 'a', data: a }]);
    bad[30 + 1 + 2] ^= 1; // flip a data byte
    expect(() => new ZipArchive(bad, 'x.zip').read('a')).toThrow(/^x\.zip: CRC-32 mismatch in entry "a"/);
    const m = makeZip([{ name: 'a', data: a }]);
    new DataView(m.buffer).setUint16(8, 12, true); // local method 12 (bzip2) is ignored: the central one counts
    new DataView(m.buffer).setUint16(m.length - 22 - 47 + 10, 12, true);
    expect(() => new ZipArchive(m).read('a')).toThrow(/compression method 12/);
  });

  it('rejects archives that need zip64, encrypted entries and missing end records', () => {
    const z = makeZip([{ name: 'a', data: new Uint8Array(4) }]);
    const n = Uint8Array.from(z);
    new DataView(n.buffer).setUint16(n.length - 22 + 10, 0xffff, true);
    expect(() => new ZipArchive(n)).toThrow(/zip64 archives are not supported/);
    const e = Uint8Array.from(z);
    new DataView(e.buffer).setUint16(e.length - 22 - 47 + 8, 1, true); // central flags: encrypted
    expect(() => new ZipArchive(e)).toThrow(/encrypted/);
    expect(() => new ZipArchive(z.subarray(0, z.length - 1))).toThrow(/truncated zip archive/);
    expect(() => new ZipArchive(new Uint8Array(10))).toThrow(/not a zip archive/);
  });
});
