import { describe, expect, it } from 'vitest';
import { DataError } from '../../src/data/errors.js';
import { BYTE_VOCAB_SIZE, byteDictionary, decodeBytes, decodeText, Dictionary, encodeBytes, encodeText, EOS, PAD, UNK } from '../../src/data/vocab.js';

describe('Dictionary', () => {
  it('puts the fairseq specials first and encodes/decodes symbols', () => {
    const d = new Dictionary(['a', 'b', 'a']);
    expect(d.toArray()).toEqual(['<s>', '<pad>', '</s>', '<unk>', 'a', 'b']);
    expect([d.bos, d.pad, d.eos, d.unk]).toEqual([0, 1, 2, 3]);
    expect(Array.from(d.encodeLine(' a  b c '))).toEqual([4, 5, UNK, EOS]);
    expect(Array.from(d.encode(['b'], { appendEos: false }))).toEqual([5]);
    expect(d.decodeLine([4, 5, EOS, PAD])).toBe('a b');
    expect(d.decode([4, EOS], true)).toEqual(['a', '</s>']);
    expect(() => d.symbol(99)).toThrow(DataError);
  });

  it('parses a fairseq dict.txt', () => {
    const d = Dictionary.parse('the 100\n, 50\nfoo bar 3 #fairseq:overwrite\n');
    expect(d.index('the')).toBe(4);
    expect(d.index(',')).toBe(5);
    expect(d.index('foo bar')).toBe(6);
    expect(() => Dictionary.parse('bad-line\n', 'x/dict.txt')).toThrow(/x\/dict.txt:1/);
  });
});

describe('byte vocabulary', () => {
  it('maps byte b to b + 4 with </s> and truncation', () => {
    expect(Array.from(encodeBytes(Uint8Array.of(0, 255)))).toEqual([4, 259, EOS]);
    expect(Array.from(encodeText('ab', { maxLength: 2 }))).toEqual([97 + 4, 98 + 4]);
    expect(Array.from(encodeText('ab', { maxLength: 3 }))).toEqual([101, 102, EOS]);
    expect(decodeText(encodeText('héllo'))).toBe('héllo');
    expect(Array.from(decodeBytes([PAD, 4, 259]))).toEqual([0, 255]);
    expect(() => decodeBytes([260])).toThrow(DataError);
    expect(() => encodeText('a', { maxLength: 0 })).toThrow(DataError);
  });
  it('byteDictionary agrees with the byte ids', () => {
    const d = byteDictionary();
    expect(d.size).toBe(BYTE_VOCAB_SIZE);
    expect(d.index('65')).toBe(69);
  });
});
