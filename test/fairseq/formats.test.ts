/**
 * Every world's data-bin read back through the fairseq readers and compared with (a) its raw text
 * encoded by the rules of dict.txt binarization, (b) expected.json `format_check`.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  readDictionary, readIndex, readIndexedDataset, readLm, readLraImage, readLraText, readTranslation, tokenBlocks, validBlockSize,
} from '../../src/data/fairseq/index.js';
import { expected, worldPath, type World } from './helpers.js';

const SPLITS = ['train', 'valid', 'test'] as const;

function rawLines(w: World, file: string): string[] {
  const lines = readFileSync(worldPath(w, 'raw', file), 'utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

interface Binarized {
  path: string; sentences: number; tokens: number; dtype_code: number; unk_tokens: number; idx_bytes: number; bin_bytes: number;
  idx_header_hex: string; first_sizes: number[]; first_pointers: number[];
}

describe('format_check of every binarized file', () => {
  for (const w of ['lra-listops', 'lra-retrieval', 'lm', 'translation'] as const) {
    it(w, () => {
      const fc = expected(w).format_check as {
        binarized: Binarized[];
        dictionaries: Record<string, { symbols: number; size_with_specials: number; first: [string, number][] }>;
      };
      expect(fc.binarized.length).toBeGreaterThan(0);
      for (const b of fc.binarized) {
        const prefix = worldPath(w, b.path);
        const ds = readIndexedDataset(prefix);
        const idx = readFileSync(`${prefix}.idx`);
        expect(Buffer.from(idx.subarray(0, 26)).toString('hex')).toBe(b.idx_header_hex);
        expect(ds.dtypeCode).toBe(b.dtype_code);
        expect(ds.length).toBe(b.sentences);
        let tokens = 0, unk = 0;
        for (let i = 0; i < ds.length; i++) {
          const t = ds.get(i);
          tokens += t.length;
          for (const x of t) if (x === 3) unk++;
        }
        expect(tokens).toBe(b.tokens);
        expect(unk).toBe(b.unk_tokens);
        expect(Array.from(ds.sizes.subarray(0, 5))).toEqual(b.first_sizes);
        expect(Array.from(readIndex(`${prefix}.idx`).pointers.subarray(0, 5))).toEqual(b.first_pointers);
      }
      for (const [p, d] of Object.entries(fc.dictionaries)) {
        const dict = readDictionary(worldPath(w, p));
        expect(dict.size).toBe(d.size_with_specials);
        expect(dict.size - 4).toBe(d.symbols);
        d.first.forEach(([s, c], k) => {
          expect(dict.symbols[4 + k]).toBe(s);
          expect(dict.counts[4 + k]).toBe(c);
        });
      }
    });
  }
});

describe('indexed datasets equal the raw text encoded by the dictionary rules', () => {
  it('lra-listops: inputs, labels (class = label line number in label-bin/dict.txt), <CLS> appended', () => {
    const e = expected('lra-listops');
    for (const s of SPLITS) {
      const r = readLraText(worldPath('lra-listops', 'data-bin'), s, { maxPositions: 1e9 });
      expect(r.dual).toBe(false);
      expect(r.dictionary.size).toBe(e.input_dictionary.embedding_rows);
      expect(r.dictionary.indexOf('<CLS>')).toBe(e.input_dictionary.cls_index);
      const inputs = rawLines('lra-listops', `${s}.input`), labels = rawLines('lra-listops', `${s}.label`);
      expect(r.examples.length).toBe(inputs.length);
      r.examples.forEach((ex, i) => {
        expect(Array.from(ex.tokens)).toEqual(Array.from(r.dictionary.encodeLine(inputs[i]!)));
        expect(ex.label).toBe(e.label_classes.label_to_class[labels[i]!.trim()]);
      });
    }
  });

  it('lra-retrieval: two inputs read with the src-bin dictionary, cut at max_positions', () => {
    const e = expected('lra-retrieval');
    for (const s of SPLITS) {
      const full = readLraText(worldPath('lra-retrieval', 'data-bin'), s, { maxPositions: 1e9 });
      const cut = readLraText(worldPath('lra-retrieval', 'data-bin'), s, { maxPositions: 64 });
      expect(full.dual).toBe(true);
      const in0 = rawLines('lra-retrieval', `${s}.input0`), in1 = rawLines('lra-retrieval', `${s}.input1`), lab = rawLines('lra-retrieval', `${s}.label`);
      full.examples.forEach((ex, i) => {
        const a = full.dictionary.encodeLine(in0[i]!), b = full.dictionary.encodeLine(in1[i]!);
        expect(Array.from(ex.tokens)).toEqual(Array.from(a));
        expect(Array.from(ex.tokens2!)).toEqual(Array.from(b));
        expect(ex.label).toBe(e.label_classes.label_to_class[lab[i]!.trim()]);
        expect(Array.from(cut.examples[i]!.tokens)).toEqual(Array.from(a.slice(0, 64)));
        expect(Array.from(cut.examples[i]!.tokens2!)).toEqual(Array.from(b.slice(0, 64)));
      });
    }
  });

  it('lra-image: pixels normalised to f32, labels as class indices', () => {
    const ex = readLraImage(worldPath('lra-image', 'data-bin'), 'valid', { mean: 0.48, std: 0.24, maxPositions: 1024, numClasses: 10 });
    const lines = readFileSync(worldPath('lra-image', 'data-bin', 'input', 'valid.src'), 'utf8').trim().split('\n');
    const labels = readFileSync(worldPath('lra-image', 'data-bin', 'label', 'valid.label'), 'utf8').trim().split('\n');
    expect(ex.length).toBe(16);
    ex.forEach((e, i) => {
      const px = lines[i]!.trim().split(/\s+/).map(Number);
      expect(e.values.length).toBe(64);
      px.forEach((p, j) => expect(Math.abs(e.values[j]! - (p / 255 - 0.48) / 0.24)).toBeLessThan(1e-6));
      expect(e.label).toBe(Number(labels[i]));
    });
  });

  it('lm: splits, and blocks of --valid-block splits:10 and of eval_lm (one block)', () => {
    for (const s of SPLITS) {
      const { dictionary, data } = readLm(worldPath('lm', 'data-bin'), s);
      const raw = rawLines('lm', `${s}.tokens`);
      expect(data.length).toBe(raw.length);
      raw.forEach((l, i) => expect(Array.from(data.get(i))).toEqual(Array.from(dictionary.encodeLine(l))));
    }
    const { data } = readLm(worldPath('lm', 'data-bin'), 'valid');
    expect(validBlockSize('splits:10', data)).toBe(192); // ceil(1915 / 10)
    const blocks = tokenBlocks(data, 192, 'complete');
    let n = 0;
    for (const b of blocks) {
      n += b.target.length;
      expect(b.source.length).toBe(b.target.length);
    }
    expect(n).toBe(1915);
    // each block holds whole sentences and stays within 192 unless it is one longer sentence
    for (const b of blocks) expect(b.target[b.target.length - 1]).toBe(2);
    const one = tokenBlocks(data, 100000000, 'none');
    expect(one.length).toBe(1);
    expect(one[0]!.source[0]).toBe(2);
    expect(Array.from(one[0]!.source.subarray(1))).toEqual(Array.from(one[0]!.target.subarray(0, 1914)));
    // the source of block k starts with the last token of block k-1
    expect(blocks[1]!.source[0]).toBe(blocks[0]!.target[blocks[0]!.target.length - 1]);
  });

  it('translation: language-pair files with one joined dictionary', () => {
    for (const s of SPLITS) {
      const r = readTranslation(worldPath('translation', 'data-bin'), s, 'en', 'de');
      const en = rawLines('translation', `${s}.en`), de = rawLines('translation', `${s}.de`);
      expect(r.examples.length).toBe(en.length);
      r.examples.forEach((ex, i) => {
        expect(Array.from(ex.tokens)).toEqual(Array.from(r.sourceDictionary.encodeLine(en[i]!)));
        const t = r.targetDictionary.encodeLine(de[i]!);
        expect(Array.from(ex.target!)).toEqual(Array.from(t));
        expect(Array.from(ex.prevOutputTokens!)).toEqual([2, ...Array.from(t.subarray(0, t.length - 1))]);
      });
    }
  });
});
