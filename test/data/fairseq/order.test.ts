/**
 * fairseq's batches, rebuilt from the fixture worlds' `.idx` sizes and compared with every batch
 * of every training update that fairseq recorded in each world's expected.json.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  batchBySize,
  megaLmBlockDraws,
  monolingualOrder,
  epochBatches,
  groupUpdates,
  languagePairOrder,
  lraOrder,
  trainBatches,
  type TrainOrderArgs,
  type TrainSizes,
} from '../../../src/data/fairseq/order.js';
import { DataError } from '../../../src/data/errors.js';
import { readIndex, readIndexedDataset, tokenBlocks } from '../../../src/data/fairseq/index.js';

const readIdxSizes = (path: string): Int32Array => readIndex(path).sizes;

const ROOT = join(__dirname, '..', '..', 'fairseq');

interface Expected {
  train: { updates: { update: number; epoch: number; batches: { id: number[] }[] }[] };
}
const expectedOf = (w: string): Expected => JSON.parse(readFileSync(join(ROOT, w, 'expected.json'), 'utf8')) as Expected;

/** Lines of a text file (lra-image's pixel file). */
const lineCount = (p: string): number =>
  readFileSync(p, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0).length;

/** The updates of epochs 1..E as lists of batches of ids. */
function planned(a: TrainOrderArgs, s: TrainSizes, updateFreq: number, epochs: number): { epoch: number; ids: number[][] }[] {
  const frozen = trainBatches(a, s);
  const out: { epoch: number; ids: number[][] }[] = [];
  for (let e = 1; e <= epochs; e++) for (const g of groupUpdates(epochBatches(frozen, a.seed, e), updateFreq)) out.push({ epoch: e, ids: g });
  return out;
}

function compare(world: string, a: TrainOrderArgs, s: TrainSizes, updateFreq: number): void {
  const exp = expectedOf(world).train.updates;
  const epochs = exp[exp.length - 1].epoch;
  const ours = planned(a, s, updateFreq, epochs);
  for (const u of exp) {
    const mine = ours[u.update - 1];
    expect(mine, `${world} update ${u.update}`).toBeDefined();
    expect(mine.epoch, `${world} update ${u.update} epoch`).toBe(u.epoch);
    // fairseq's collater keeps the batch order of ids (translation re-sorts rows by source length)
    const norm = (xs: number[][]) => (a.task === 'translation' ? xs.map((b) => [...b].sort((p, q) => p - q)) : xs);
    expect(norm(mine.ids), `${world} update ${u.update} batches`).toEqual(norm(u.batches.map((b) => b.id)));
  }
}

describe('fairseq batch order of the fixture worlds', () => {
  it('lra-listops: argsort(permutation), batch size 16, 2 epochs', () => {
    const sizes = readIdxSizes(join(ROOT, 'lra-listops/data-bin/src-bin/train.idx'));
    compare('lra-listops', { task: 'lra-text', seed: 1, max_sentences: 16, required_batch_size_multiple: 1 }, { sizes }, 1);
  });

  it('lra-retrieval: batch size 4 (multiple 8), update-freq 2', () => {
    const sizes = readIdxSizes(join(ROOT, 'lra-retrieval/data-bin/src-bin/train.idx'));
    compare('lra-retrieval', { task: 'lra-text', seed: 1, max_sentences: 4 }, { sizes }, 2);
  });

  it('lra-image: pixel lines, batch size 12', () => {
    const n = lineCount(join(ROOT, 'lra-image/data-bin/input/train.src'));
    compare('lra-image', { task: 'lra-image', seed: 1, max_sentences: 12, required_batch_size_multiple: 1 }, { sizes: new Int32Array(n).fill(1024) }, 1);
  });

  it('lm: seeded variant blocks, by size with seeded ties, max-tokens 64', () => {
    const sent = readIndexedDataset(join(ROOT, 'lm/data-bin/train'));
    const sizes = tokenBlocks(sent, 16, 'complete', megaLmBlockDraws(sent.length, 16, 2, 4, 1)).map((b) => b.target.length);
    // fairseq's limit is min(tokens_per_sample 1024, max_target_positions 4096, max_tokens 64): its log
    // says "54 samples have invalid sizes and will be skipped, max_positions=64"
    compare('lm', { task: 'language_modeling', seed: 1, max_tokens: 64, max_positions: 64 }, { sizes }, 1);
    expect(sizes.filter((n) => n > 64).length).toBe(54);
    // fairseq's progress line: "epoch 001:      2 / 192"
    expect(trainBatches({ task: 'language_modeling', seed: 1, max_tokens: 64, max_positions: 64 }, { sizes }).length).toBe(192);
  });

  it('translation: permutation, stable sorts by target then source, max-tokens 96 / 16 sentences', () => {
    const src = readIdxSizes(join(ROOT, 'translation/data-bin/train.en-de.en.idx'));
    const tgt = readIdxSizes(join(ROOT, 'translation/data-bin/train.en-de.de.idx'));
    compare('translation', { task: 'translation', seed: 1, max_tokens: 96, max_sentences: 16, max_positions: [64, 64] }, { sizes: src, tgtSizes: tgt }, 1);
  });
});

interface ValidExpected {
  train: { valid: { batches: { sample: { id: number[] } }[] }[] };
}
/** The batches of every recorded validation (all validations of a world use the same batches). */
function validIds(world: string): number[][] {
  const v = (JSON.parse(readFileSync(join(ROOT, world, 'expected.json'), 'utf8')) as ValidExpected).train.valid;
  const all = v.map((x) => x.batches.map((b) => b.sample.id));
  for (const a of all) expect(a).toEqual(all[0]);
  return all[0];
}

describe('fairseq validation batches of the fixture worlds (in order, never shuffled)', () => {
  it('lra worlds: argsort(permutation(N_valid)), --max-sentences-valid', () => {
    const listops = readIdxSizes(join(ROOT, 'lra-listops/data-bin/src-bin/valid.idx'));
    expect(batchBySize(lraOrder(listops.length, 1), (i) => listops[i], { maxSentences: 8, multiple: 1 })).toEqual(validIds('lra-listops'));
    const retrieval = readIdxSizes(join(ROOT, 'lra-retrieval/data-bin/src-bin/valid.idx'));
    expect(batchBySize(lraOrder(retrieval.length, 1), (i) => retrieval[i], { maxSentences: 4, multiple: 8 })).toEqual(validIds('lra-retrieval'));
    const images = lineCount(join(ROOT, 'lra-image/data-bin/input/valid.src'));
    expect(batchBySize(lraOrder(images, 1), () => 64, { maxSentences: 12, multiple: 1 })).toEqual(validIds('lra-image'));
  });

  it('translation: the seeded language-pair order, max-tokens 96 / 16 sentences', () => {
    const src = readIdxSizes(join(ROOT, 'translation/data-bin/valid.en-de.en.idx'));
    const tgt = readIdxSizes(join(ROOT, 'translation/data-bin/valid.en-de.de.idx'));
    const ids = batchBySize(languagePairOrder(src, tgt, 1), (i) => Math.max(src[i], tgt[i]), { maxTokens: 96, maxSentences: 16, multiple: 8 });
    expect(ids.map((b) => [...b].sort((p, q) => p - q))).toEqual(validIds('translation').map((b) => [...b].sort((p, q) => p - q)));
  });

  it('lm: --valid-block splits:10 blocks by size (seeded ties), one block per batch, fed 16 columns at a time', () => {
    const sent = readIndexedDataset(join(ROOT, 'lm/data-bin/valid'));
    const total = sent.sizes.reduce((s, x) => s + x, 0);
    const sizes = tokenBlocks(sent, Math.ceil(total / 10), 'complete').map((b) => b.target.length);
    const batches = batchBySize(monolingualOrder(sizes, 1), (i) => sizes[i], { maxTokens: 1920, maxSentences: 1, multiple: 8 });
    // validate_mega_lm logs each piece of decoder_chunk_size (16) columns as one batch
    const pieces = batches.flatMap((b) => Array.from({ length: Math.ceil(sizes[b[0]] / 16) }, () => b));
    expect(pieces).toEqual(validIds('lm'));
  });
});

describe('ordering rules (hand-checked cases)', () => {
  it('batchBySize carries the remainder over the required multiple', () => {
    // 10 examples of length 1, at most 5 per batch, multiple 4: full at 5 → emit 4, carry 1
    expect(batchBySize([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], () => 1, { maxSentences: 5, multiple: 4 })).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9],
    ]);
    // max-tokens: (n+1) × longest > 10 closes the batch
    expect(batchBySize([0, 1, 2, 3], (i) => [3, 3, 5, 2][i], { maxTokens: 10, multiple: 1 })).toEqual([
      [0, 1],
      [2, 3],
    ]);
  });

  it('batchBySize rejects an example longer than max-tokens', () => {
    expect(() => batchBySize([0], () => 11, { maxTokens: 10 })).toThrow(DataError);
  });

  it('Mega LM block draws: global seed for epoch 1, RandomState([42, seed, epoch]) with N/2 draws after', () => {
    // numpy: np.random.seed(1); np.random.choice([32, 48, 64], 300)[:12]
    expect(megaLmBlockDraws(300, 16, 2, 4, 1).slice(0, 12)).toEqual([48, 32, 32, 48, 48, 32, 32, 48, 32, 48, 32, 64]);
    // numpy: np.random.RandomState([42, 1, 2]).choice([32, 48, 64], 150)
    const d2 = megaLmBlockDraws(300, 16, 2, 4, 1, 2);
    expect(d2.length).toBe(150);
    expect(d2.slice(0, 12)).toEqual([48, 64, 48, 32, 64, 64, 64, 64, 32, 64, 64, 64]);
    expect(d2.slice(-4)).toEqual([64, 48, 48, 32]);
    expect(megaLmBlockDraws(5, 16, 3, 1, 1, 2)).toEqual([48, 48, 48, 48, 48]);
  });

  it('lraOrder is argsort of the permutation, languagePairOrder sorts stably', () => {
    // permutation(10) with seed 0 is [2 8 4 9 1 6 7 3 0 5] (numpy)
    expect(Array.from(lraOrder(10, 0))).toEqual([8, 4, 0, 7, 2, 9, 5, 6, 1, 3]);
    expect(Array.from(languagePairOrder([2, 1, 2, 1], [1, 1, 1, 1], 0, false))).toEqual([1, 3, 0, 2]);
  });
});
