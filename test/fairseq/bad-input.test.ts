/**
 * Bad fairseq data folders and checkpoints: one clear line naming the file and what was expected,
 * exit 2, nothing written. Each case corrupts a private copy of a world's data-bin.
 */
import { appendFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readDictionary, readIndexedDataset } from '../../src/data/fairseq/index.js';
import { DataError } from '../../src/data/errors.js';
import { mega, worldPath, type World } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'mega-fairseq-bad-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;

/** A private copy of a world's data-bin, corrupted by `edit`. */
function corrupt(w: World, edit: (dir: string) => void): string {
  const dir = join(tmp, `case-${n++}`);
  cpSync(worldPath(w, 'data-bin'), dir, { recursive: true });
  edit(dir);
  return dir;
}

function listing(dir: string): string[] {
  return readdirSync(dir, { recursive: true }).map(String).sort();
}

/** `mega eval` of the world's checkpoint on `dir`: exit 2, exactly the expected line, nothing written. */
function expectEvalError(w: World, dir: string, line: RegExp): void {
  const before = listing(dir);
  const r = mega(w, ['eval', 'checkpoints/checkpoint_last.pt', dir, '--split', 'valid', '--json']);
  expect(r.rc).toBe(2);
  expect(r.stdout).toEqual([]);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines.length, r.stderr).toBe(1);
  expect(lines[0]).toMatch(line);
  expect(listing(dir)).toEqual(before);
}

describe('bad fairseq data: one line naming the file and the expectation, exit 2', () => {
  it('missing split', () => {
    const dir = corrupt('lra-listops', (d) => {
      rmSync(join(d, 'src-bin', 'valid.bin'));
      rmSync(join(d, 'src-bin', 'valid.idx'));
    });
    expectEvalError('lra-listops', dir, /^mega eval: .*: no valid split \(expected .*src-bin\/valid\.bin and .*src-bin\/valid\.idx\)$/);
  });

  it('.bin shorter than the .idx sizes say', () => {
    const dir = corrupt('lra-listops', (d) => truncateSync(join(d, 'src-bin', 'valid.bin'), 566));
    expectEvalError('lra-listops', dir, /^mega eval: .*src-bin\/valid\.bin: 566 bytes \(expected 568: 284 tokens x 2 bytes, from .*valid\.idx\)$/);
  });

  it('.idx with a size that does not fit its sentence count', () => {
    const dir = corrupt('lm', (d) => appendFileSync(join(d, 'valid.idx'), Buffer.from([0, 0, 0, 0])));
    expectEvalError('lm', dir, /^mega eval: .*valid\.idx: 510 bytes for 40 sentences \(expected 26 \+ 12 x 40 = 506 bytes\)$/);
  });

  it('wrong magic', () => {
    const dir = corrupt('translation', (d) => {
      const p = join(d, 'valid.en-de.en.idx');
      const b = readFileSync(p);
      b[0] = 0x58;
      writeFileSync(p, b);
    });
    expectEvalError('translation', dir, new RegExp(
      '^mega eval: .*valid\\.en-de\\.en\\.idx: not a fairseq mmap index ' +
      '\\(first bytes 58 4d 49 44 49 44 58 00 00; expected magic 4d 4d 49 44 49 44 58 00 00 "MMIDIDX"\\)$'));
  });

  it('wrong version', () => {
    const dir = corrupt('lra-retrieval', (d) => {
      const p = join(d, 'label-bin', 'valid.idx');
      const b = readFileSync(p);
      b[9] = 2;
      writeFileSync(p, b);
    });
    expectEvalError('lra-retrieval', dir, /^mega eval: .*label-bin\/valid\.idx: index version 2 \(expected 1\)$/);
  });

  it('dictionary with a duplicate symbol', () => {
    const dir = corrupt('lra-listops', (d) => appendFileSync(join(d, 'src-bin', 'dict.txt'), '[MIN 3\n'));
    expectEvalError('lra-listops', dir, /^mega eval: .*src-bin\/dict\.txt:21: duplicate symbol "\[MIN" \(first at index 8; expected each symbol once\)$/);
  });

  it('dictionary with a malformed line', () => {
    const dir = corrupt('lm', (d) => appendFileSync(join(d, 'dict.txt'), 'novalue\n'));
    expectEvalError('lm', dir, /^mega eval: .*dict\.txt:37: "novalue" is not "<symbol> <count>" \(expected a symbol, a space and a count\)$/);
  });

  it('dictionary with a count that is not an integer', () => {
    const dir = corrupt('translation', (d) => appendFileSync(join(d, 'dict.de.txt'), 'hund x\n'));
    expectEvalError('translation', dir, /^mega eval: .*dict\.de\.txt:53: count "x" of "hund" is not a non-negative integer$/);
  });

  it('label outside the label dictionary', () => {
    const dir = corrupt('lra-listops', (d) => {
      const p = join(d, 'label-bin', 'valid.bin');
      const b = readFileSync(p);
      b.writeUInt16LE(40, 4); // sentence 1: label id 40, dictionary has 16 entries
      writeFileSync(p, b);
    });
    expectEvalError('lra-listops', dir,
      /^mega eval: .*label-bin\/valid\.bin: sentence 1 is \[40, 2\] \(expected one label id in 4\.\.15 of .*label-bin\/dict\.txt, then <\/s>\)$/);
  });

  it('token id outside the input dictionary', () => {
    const dir = corrupt('lm', (d) => {
      const p = join(d, 'valid.bin');
      const b = readFileSync(p);
      b.writeUInt16LE(500, 0);
      writeFileSync(p, b);
    });
    expectEvalError('lm', dir, /^mega eval: .*valid\.bin: sentence 0 has token id 500, outside .*dict\.txt \(expected < 40\)$/);
  });

  it('checkpoint dictionary size differs from the data\'s', () => {
    const dir = corrupt('lra-listops', (d) => appendFileSync(join(d, 'src-bin', 'dict.txt'), 'extra 1\n'));
    expectEvalError('lra-listops', dir, new RegExp(
      '^mega eval: .*src-bin/dict\\.txt \\(\\+ <CLS>\\): dictionary of 26 entries, ' +
      'but checkpoints/checkpoint_last\\.pt was trained with 25 \\(its embedding has 25 rows\\)$'));
  });

  it('lra-image label outside the classes', () => {
    const dir = corrupt('lra-image', (d) =>
      writeFileSync(join(d, 'label', 'valid.label'), readFileSync(join(d, 'label', 'valid.label'), 'utf8').replace(/^\d+/, '12')));
    expectEvalError('lra-image', dir, /^mega eval: .*label\/valid\.label:1: label "12" \(expected a class index 0\.\.9\)$/);
  });

  it('lra-image: image length not a multiple of the chunk size', () => {
    const dir = corrupt('lra-image', (d) => {
      const p = join(d, 'input', 'valid.src');
      writeFileSync(p, readFileSync(p, 'utf8').trim().split('\n').map((l) => l.trim().split(/\s+/).slice(0, 60).join(' ')).join('\n') + '\n');
    });
    expectEvalError('lra-image', dir,
      /^mega eval: .*input\/valid\.src: images of 60 pixels are not a multiple of the chunk size 16 \(image inputs cannot be padded\)$/);
  });

  it('mega train on a bad folder writes nothing', () => {
    const dir = corrupt('lra-listops', (d) => truncateSync(join(d, 'src-bin', 'train.bin'), 10));
    const save = join(tmp, 'train-save');
    const r = mega('lra-listops', ['train', dir, '-a', 'mega_lra_listop', '--task', 'lra-text', '--save-dir', save, '--max-update', '1']);
    expect(r.rc).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^mega train: .*src-bin\/train\.bin: 10 bytes \(expected 1938: 969 tokens x 2 bytes/)]);
    expect(existsSync(save)).toBe(false);
  });
});

describe('readers: every dtype code, and DataError on bad bytes', () => {
  const item: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 8, 7: 8, 8: 2 };
  for (const code of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`dtype code ${code}`, () => {
      const sizes = [3, 1, 2];
      const toks = [5, 9, 2, 2, 7, 2];
      const N = sizes.length;
      const idx = Buffer.alloc(26 + 12 * N);
      Buffer.from([0x4d, 0x4d, 0x49, 0x44, 0x49, 0x44, 0x58, 0, 0]).copy(idx, 0);
      idx.writeBigUInt64LE(1n, 9);
      idx[17] = code;
      idx.writeBigUInt64LE(BigInt(N), 18);
      let off = 0;
      sizes.forEach((s, i) => {
        idx.writeInt32LE(s, 26 + 4 * i);
        idx.writeBigInt64LE(BigInt(off), 26 + 4 * N + 8 * i);
        off += s * item[code]!;
      });
      const bin = Buffer.alloc(toks.length * item[code]!);
      toks.forEach((t, i) => {
        const o = i * item[code]!;
        if (code === 1) bin.writeUInt8(t, o);
        else if (code === 2) bin.writeInt8(t, o);
        else if (code === 3) bin.writeInt16LE(t, o);
        else if (code === 4) bin.writeInt32LE(t, o);
        else if (code === 5) bin.writeBigInt64LE(BigInt(t), o);
        else if (code === 8) bin.writeUInt16LE(t, o);
        else bin.writeDoubleLE(t, o);
      });
      const prefix = join(tmp, `dtype-${code}`);
      writeFileSync(`${prefix}.idx`, idx);
      writeFileSync(`${prefix}.bin`, bin);
      const ds = readIndexedDataset(prefix);
      expect(ds.dtypeCode).toBe(code);
      expect([0, 1, 2].map((i) => Array.from(ds.get(i)))).toEqual([[5, 9, 2], [2], [7, 2]]);
    });
  }

  it('dtype code 9 is refused; a non-integer float token is refused; the old TNTIDX format is named', () => {
    const p = join(tmp, 'code9');
    const idx = Buffer.alloc(26);
    Buffer.from([0x4d, 0x4d, 0x49, 0x44, 0x49, 0x44, 0x58, 0, 0]).copy(idx, 0);
    idx.writeBigUInt64LE(1n, 9);
    idx[17] = 9;
    writeFileSync(`${p}.idx`, idx);
    writeFileSync(`${p}.bin`, Buffer.alloc(0));
    expect(() => readIndexedDataset(p)).toThrow(new DataError(`${p}.idx: dtype code 9 (expected one of 1..8)`));
    writeFileSync(`${p}.idx`, Buffer.from('TNTIDX\0\0rest'));
    expect(() => readIndexedDataset(p)).toThrow(/TNTIDX.*expected the mmap format/);
  });

  it('dict.txt: empty file gives the 4 specials; "#fairseq:overwrite" counts as a flag', () => {
    const p = join(tmp, 'dict-empty.txt');
    writeFileSync(p, '');
    expect(readDictionary(p).size).toBe(4);
    writeFileSync(p, 'a 3\nb #fairseq:overwrite\n');
    const d = readDictionary(p);
    expect([d.indexOf('a'), d.indexOf('b'), d.indexOf('zzz')]).toEqual([4, 5, 3]);
  });
});
