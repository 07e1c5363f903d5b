import { afterAll, describe, expect, it } from 'vitest';
import { DataError } from '../../src/data/errors.js';
import { bytesToLmStream, makeLmBlocks, readLmText } from '../../src/data/lmtext.js';
import { EOS } from '../../src/data/vocab.js';
import { tempDir } from './helpers.js';

const t = tempDir();
afterAll(() => t.cleanup());
const ids = (s: string): number[] => Array.from(new TextEncoder().encode(s), (b) => b + 4);

describe('byte-level LM text', () => {
  it('turns lines into bytes + </s>', () => {
    expect(Array.from(bytesToLmStream(new TextEncoder().encode('ab\nc')))).toEqual([...ids('ab'), EOS, ...ids('c'), EOS]);
    expect(Array.from(bytesToLmStream(new TextEncoder().encode('ab\n')))).toEqual([...ids('ab'), EOS]);
    expect(Array.from(bytesToLmStream(new TextEncoder().encode('a\n'), false))).toEqual(ids('a\n'));
  });

  it('cuts contiguous blocks with the </s>-shifted input', () => {
    const stream = Int32Array.from([10, 11, 12, 13, 14]);
    const blocks = makeLmBlocks(stream, 2);
    expect(blocks.map((b) => Array.from(b.target!))).toEqual([[10, 11], [12, 13], [14]]);
    expect(blocks.map((b) => Array.from(b.tokens))).toEqual([[EOS, 10], [EOS, 12], [EOS]]);
  });

  it('splits train/valid by fraction', () => {
    const p = t.file('corpus.txt', 'abcdefgh\nij\n'); // 12 tokens
    const d = readLmText(p, { blockSize: 4, validFraction: 0.25 });
    expect(d.numTokens).toBe(12);
    expect(d.vocabSize).toBe(260);
    expect(d.train.map((b) => b.target!.length)).toEqual([4, 4, 1]);
    expect(d.valid.map((b) => Array.from(b.target!))).toEqual([[...ids('ij'), EOS]]);
    expect(Array.from(d.valid[0]!.tokens)).toEqual([EOS, ...ids('ij')]);
    const all = readLmText(p, { blockSize: 100, validFraction: 0 });
    expect(all.valid).toHaveLength(0);
    expect(all.train).toHaveLength(1);
  });

  it('raises DataError for empty files and bad options', () => {
    expect(() => readLmText(t.file('empty.txt', ''), { blockSize: 4 })).toThrow(/empty file/);
    expect(() => readLmText(t.file('x.txt', 'abc'), { blockSize: 0 })).toThrow(/blockSize/);
    expect(() => readLmText(t.file('y.txt', 'abc'), { blockSize: 4, validFraction: 1 })).toThrow(/validFraction/);
    expect(() => readLmText(`${t.dir}/none.txt`, { blockSize: 4 })).toThrow(DataError);
  });
});
