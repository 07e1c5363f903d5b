import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError } from '../../src/data/errors.js';
import { readClassificationTsv, readRetrievalTsv } from '../../src/data/tsv.js';
import { readTranslationTsv } from '../../src/data/translation.js';
import { decodeText, EOS } from '../../src/data/vocab.js';
import { tempDir } from './helpers.js';

const t = tempDir();
afterAll(() => t.cleanup());
const ids = (s: string): number[] => Array.from(new TextEncoder().encode(s), (b) => b + 4);

describe('classification TSV', () => {
  it('reads label<TAB>text byte-level with </s>, CRLF and blank lines', () => {
    const p = t.file('imdb.tsv', '1\tgood film\r\n\n0\tbad\tand tabbed\n');
    const ex = readClassificationTsv(p, { numClasses: 2 });
    expect(ex).toHaveLength(2);
    expect(Array.from(ex[0]!.tokens)).toEqual([...ids('good film'), EOS]);
    expect(ex[0]!.label).toBe(1);
    expect(decodeText(ex[1]!.tokens)).toBe('bad\tand tabbed');
  });

  it('truncates to maxLength keeping the first tokens, and reads gzip', () => {
    const p = t.file('gz.tsv.gz', gzipSync(Buffer.from('3\tabcdef\n')));
    const [e] = readClassificationTsv(p, { maxLength: 4 });
    expect(Array.from(e!.tokens)).toEqual(ids('abcd'));
    const [f] = readClassificationTsv(p, { appendEos: false });
    expect(Array.from(f!.tokens)).toEqual(ids('abcdef'));
    const [h] = readClassificationTsv(t.file('h.tsv', 'label\ttext\n0\tx\n'), { header: true });
    expect(h!.label).toBe(0);
  });

  it('raises DataError for bad inputs', () => {
    expect(() => readClassificationTsv(t.file('e.tsv', '\n\n'))).toThrow(/no examples/);
    expect(() => readClassificationTsv(t.file('r.tsv', '0\ta\n2\tb\n'), { numClasses: 2 })).toThrow(/r.tsv:2: label 2 out of range \(expected 0..1\)/);
    expect(() => readClassificationTsv(t.file('n.tsv', 'pos\ta\n'))).toThrow(/not an integer/);
    expect(() => readClassificationTsv(t.file('c.tsv', '1 no tab\n'))).toThrow(/no tab/);
    expect(() => readClassificationTsv(`${t.dir}/nope.tsv`)).toThrow(DataError);
    expect(() => readClassificationTsv(t.file('bad.gz', Uint8Array.of(0x1f, 0x8b, 1, 2)))).toThrow(/corrupt gzip/);
  });
});

describe('retrieval TSV', () => {
  it('reads label<TAB>text1<TAB>text2 and the 5-column LRA layout', () => {
    const p = t.file('aan.tsv', '1\tdoc one\tdoc two\n0\tid1\tid2\tA\tB\n');
    const ex = readRetrievalTsv(p, { numClasses: 2, maxLength: 3 });
    expect(Array.from(ex[0]!.tokens)).toEqual(ids('doc'));
    expect(decodeText(ex[0]!.tokens2!)).toBe('doc');
    expect(Array.from(ex[1]!.tokens)).toEqual([...ids('A'), EOS]);
    expect(Array.from(ex[1]!.tokens2!)).toEqual([...ids('B'), EOS]);
    expect(() => readRetrievalTsv(t.file('a2.tsv', '1\tonly one\n'))).toThrow(/expected 3 columns/);
  });
});

describe('translation TSV', () => {
  it('builds source+</s>, [</s>, y…] and [y…, </s>]', () => {
    const p = t.file('mt.tsv', 'hi\tsalut\nab\tc\n');
    const [e, f] = readTranslationTsv(p);
    expect(Array.from(e!.tokens)).toEqual([...ids('hi'), EOS]);
    expect(Array.from(e!.prevOutputTokens!)).toEqual([EOS, ...ids('salut')]);
    expect(Array.from(e!.target!)).toEqual([...ids('salut'), EOS]);
    expect(Array.from(f!.prevOutputTokens!)).toEqual([EOS, ...ids('c')]);
    const [g] = readTranslationTsv(p, { maxSourceLength: 2, maxTargetLength: 3 });
    expect(Array.from(g!.tokens)).toEqual([...ids('h'), EOS]);
    expect(Array.from(g!.target!)).toEqual([...ids('sa'), EOS]);
    expect(Array.from(g!.prevOutputTokens!)).toEqual([EOS, ...ids('sa')]);
  });
  it('raises DataError for bad lines and empty files', () => {
    expect(() => readTranslationTsv(t.file('m1.tsv', 'a\tb\tc\n'))).toThrow(/m1.tsv:1: expected 2 columns/);
    expect(() => readTranslationTsv(t.file('m2.tsv', ''))).toThrow(/no examples/);
  });
});
