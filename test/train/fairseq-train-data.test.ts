/**
 * Training-split loading for continuation: collation checked against the batch tensors fairseq
 * recorded in expected.json, and bad input reported as one line naming the file.
 */
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError } from '../../src/data/errors.js';
import { trainBatches } from '../../src/data/fairseq/order.js';
import { readFairseqResume } from '../../src/train/fairseq-resume.js';
import { loadFairseqTrainData } from '../../src/train/fairseq-train-data.js';

const W = join(__dirname, '..', 'fairseq');
const tmp = mkdtempSync(join(tmpdir(), 'fairseq-train-data-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface RecBatch {
  id: number[];
  ntokens: number;
  net_input: { src_tokens: { values: number[][] }; prev_output_tokens?: { values: number[][] } };
  target: { values: number[][] };
}
const firstBatch = (w: string): RecBatch =>
  (JSON.parse(readFileSync(join(W, w, 'expected.json'), 'utf8')) as { train: { updates: { batches: RecBatch[] }[] } }).train.updates[0].batches[0];
const argsOf = (w: string) => readFairseqResume(join(W, w, 'checkpoints/phase1/checkpoint_last.pt')).args;
const rows = (a: Int32Array, B: number, L: number): number[][] => Array.from({ length: B }, (_, b) => Array.from(a.subarray(b * L, (b + 1) * L)));

describe("loadFairseqTrainData collation equals fairseq's recorded batches", () => {
  it('translation: left-padded sources, [</s>, t…] decoder input, rows by descending source length', () => {
    const rec = firstBatch('translation');
    const b = loadFairseqTrainData(join(W, 'translation/data-bin'), argsOf('translation')).epoch(1).collate(rec.id);
    if (b.kind !== 'tokens') throw new Error('expected tokens');
    expect(Array.from(b.ids)).toEqual(rec.id);
    expect(rows(b.srcTokens, b.B, b.L)).toEqual(rec.net_input.src_tokens.values);
    expect(rows(b.prevOutputTokens!, b.B, b.T!)).toEqual(rec.net_input.prev_output_tokens!.values);
    expect(rows(b.target!, b.B, b.T!)).toEqual(rec.target.values);
    expect(b.ntokens).toBe(rec.ntokens);
  });

  it('language_modeling: blocks with the previous stream token as source', () => {
    const rec = firstBatch('lm');
    const b = loadFairseqTrainData(join(W, 'lm/data-bin'), argsOf('lm')).epoch(1).collate(rec.id);
    if (b.kind !== 'tokens') throw new Error('expected tokens');
    expect(rows(b.srcTokens, b.B, b.L)).toEqual(rec.net_input.src_tokens.values);
    expect(rows(b.target!, b.B, b.T!)).toEqual(rec.target.values);
    expect(b.ntokens).toBe(rec.ntokens);
  });

  it('lra-text: right-padded inputs, class = label line', () => {
    const rec = firstBatch('lra-listops');
    const b = loadFairseqTrainData(join(W, 'lra-listops/data-bin'), argsOf('lra-listops')).epoch(1).collate(rec.id);
    if (b.kind !== 'tokens') throw new Error('expected tokens');
    expect(rows(b.srcTokens, b.B, b.L)).toEqual(rec.net_input.src_tokens.values);
    expect(Array.from(b.labels)).toEqual(rec.target.values.map((r) => r[0]));
  });
});

describe('loadFairseqTrainData task options', () => {
  it('--sen-rep-type cls prepends <CLS> (index 24 in lra-listops: 4 specials + 20 dict.txt lines) before the cut', () => {
    const a = { ...argsOf('lra-listops'), sen_rep_type: 'cls', max_positions: 6 };
    const b = loadFairseqTrainData(join(W, 'lra-listops/data-bin'), a).epoch(1).collate([0, 1]);
    if (b.kind !== 'tokens') throw new Error('expected tokens');
    expect(b.L).toBe(6);
    expect([b.srcTokens[0], b.srcTokens[6]]).toEqual([24, 24]);
  });

  it('--no-shuffle keeps the file order for lra tasks', () => {
    const d = loadFairseqTrainData(join(W, 'lra-listops/data-bin'), { ...argsOf('lra-listops'), no_shuffle: true });
    expect(trainBatches(d.order, d.epoch(1).sizes)[0]).toEqual(Array.from({ length: 16 }, (_, i) => i));
  });
});

describe('loadFairseqTrainData bad input', () => {
  it('a missing split names the file', () => {
    const d = join(tmp, 'lm-missing');
    cpSync(join(W, 'lm/data-bin'), d, { recursive: true });
    rmSync(join(d, 'train.idx'));
    expect(() => loadFairseqTrainData(d, argsOf('lm'))).toThrow(DataError);
    expect(() => loadFairseqTrainData(d, argsOf('lm'))).toThrow(/train\.idx: no such file/);
  });

  it('a .bin shorter than its index says is rejected with both sizes', () => {
    const d = join(tmp, 'lm-short');
    cpSync(join(W, 'lm/data-bin'), d, { recursive: true });
    truncateSync(join(d, 'train.bin'), 100);
    expect(() => loadFairseqTrainData(d, argsOf('lm'))).toThrow(/train\.bin: 100 bytes \(expected 26160/);
  });

  it('a wrong magic is rejected', () => {
    const d = join(tmp, 'lra-magic');
    cpSync(join(W, 'lra-listops/data-bin'), d, { recursive: true });
    copyFileSync(join(d, 'src-bin/train.bin'), join(d, 'src-bin/train.idx'));
    expect(() => loadFairseqTrainData(d, argsOf('lra-listops'))).toThrow(/src-bin\/train\.idx: not a fairseq mmap index/);
  });
});
