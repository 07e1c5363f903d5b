import { describe, expect, it } from 'vitest';
import { ArrayDataset, Batcher, collate, shardBatch, validateLabels, type TokenBatch, type TokenExample, type ValueBatch } from '../../src/data/batch.js';
import { DataError } from '../../src/data/errors.js';

const tok = (n: number, label: number, base = 10): TokenExample => ({
  tokens: Int32Array.from({ length: n }, (_, i) => base + i),
  label,
});
const ds = new ArrayDataset(Array.from({ length: 10 }, (_, i) => tok(1 + (i % 4), i % 3)));

describe('collate', () => {
  it('right-pads tokens with 1 and records lengths and labels', () => {
    const b = collate([tok(2, 1), tok(3, 0, 20)], [5, 6]) as TokenBatch;
    expect(b.kind).toBe('tokens');
    expect([b.B, b.L]).toEqual([2, 3]);
    expect(Array.from(b.srcTokens)).toEqual([10, 11, 1, 20, 21, 22]);
    expect(Array.from(b.srcLengths)).toEqual([2, 3]);
    expect(Array.from(b.labels)).toEqual([1, 0]);
    expect(Array.from(b.ids)).toEqual([5, 6]);
    expect(b.ntokens).toBe(5);
  });

  it('pads dual inputs, decoder inputs and targets', () => {
    const ex: TokenExample[] = [
      { tokens: Int32Array.of(4), tokens2: Int32Array.of(5, 6), prevOutputTokens: Int32Array.of(2, 7), target: Int32Array.of(7, 2) },
      { tokens: Int32Array.of(4, 4), tokens2: Int32Array.of(5), prevOutputTokens: Int32Array.of(2), target: Int32Array.of(2) },
    ];
    const b = collate(ex) as TokenBatch;
    expect(Array.from(b.srcTokens2!)).toEqual([5, 6, 5, 1]);
    expect(b.L2).toBe(2);
    expect(Array.from(b.prevOutputTokens!)).toEqual([2, 7, 2, 1]);
    expect(Array.from(b.target!)).toEqual([7, 2, 2, 1]);
    expect(b.T).toBe(2);
    expect(b.ntokens).toBe(3);
    expect(Array.from(b.labels)).toEqual([-1, -1]);
  });

  it('pads real values with 0', () => {
    const b = collate([{ values: Float32Array.of(0.5), label: 1 }, { values: Float32Array.of(1, 2) }]) as ValueBatch;
    expect(b.kind).toBe('values');
    expect(Array.from(b.srcValues)).toEqual([0.5, 0, 1, 2]);
    expect(Array.from(b.labels)).toEqual([1, -1]);
  });

  it('rejects empty and mixed batches', () => {
    expect(() => collate([])).toThrow(DataError);
    expect(() => collate([tok(1, 0), { values: Float32Array.of(1) }])).toThrow(/lacks|mix/);
    expect(() => new ArrayDataset([])).toThrow(/no examples/);
    expect(() => validateLabels(ds, 2, 'train')).toThrow(/train: example 2: label 2 out of range/);
    expect(() => validateLabels(new ArrayDataset([{ tokens: Int32Array.of(4) }]), 2)).toThrow(/no label/);
    validateLabels(ds, 3);
  });
});

describe('Batcher', () => {
  it('visits every example once per epoch in a seeded permutation', () => {
    const b = new Batcher(ds, { batchSize: 4, seed: 3 });
    expect(b.batchesPerEpoch).toBe(3);
    const e1 = [...b.remaining()];
    expect(e1.map((x) => x.B)).toEqual([4, 4, 2]);
    const seen = e1.flatMap((x) => Array.from(x.ids)).sort((x, y) => x - y);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(b.state).toEqual({ epoch: 1, position: 3 });
    const e2 = b.next();
    expect(b.state).toEqual({ epoch: 2, position: 1 });
    const order1 = e1.flatMap((x) => Array.from(x.ids));
    const order2 = b.batchIndices(2).flatMap((x) => Array.from(x));
    expect(order2).not.toEqual(order1);
    expect(Array.from(e2.ids)).toEqual(order2.slice(0, 4));
    // same seed → same order; different seed → different order
    expect(new Batcher(ds, { batchSize: 4, seed: 3 }).batchIndices(1)).toEqual(b.batchIndices(1));
    expect(new Batcher(ds, { batchSize: 4, seed: 4 }).batchIndices(1)).not.toEqual(b.batchIndices(1));
  });

  it('restores a saved {epoch, position} exactly', () => {
    const a = new Batcher(ds, { batchSize: 3, seed: 9 });
    for (let i = 0; i < 5; i++) a.next();
    const saved = JSON.parse(JSON.stringify(a.state)) as { epoch: number; position: number };
    const rest = Array.from({ length: 6 }, () => a.next());
    const r = new Batcher(ds, { batchSize: 3, seed: 9 });
    r.setState(saved);
    expect(Array.from({ length: 6 }, () => r.next())).toEqual(rest);
    expect(() => r.setState({ epoch: 0, position: 0 })).toThrow(DataError);
    expect(() => r.setState({ epoch: 1, position: 99 })).toThrow(/position = 99/);
  });

  it('supports no shuffle, dropLast and rejects bad sizes', () => {
    const b = new Batcher(ds, { batchSize: 4, shuffle: false, dropLast: true });
    expect(b.batchesPerEpoch).toBe(2);
    expect(Array.from(b.next().ids)).toEqual([0, 1, 2, 3]);
    expect(() => new Batcher(ds, { batchSize: 0 })).toThrow(/batchSize = 0/);
    expect(() => new Batcher(ds, { batchSize: 11, dropLast: true })).toThrow(DataError);
  });
});

describe('shardBatch', () => {
  const global = collate(
    Array.from({ length: 5 }, (_, i) => tok(i + 1, i)),
    [0, 1, 2, 3, 4],
  ) as TokenBatch;

  it('splits contiguously, first ranks taking the remainder, trimming padding', () => {
    const shards = [0, 1].map((r) => shardBatch(global, r, 2));
    expect(shards.map((s) => Array.from(s.ids))).toEqual([
      [0, 1, 2],
      [3, 4],
    ]);
    expect(shards.map((s) => s.L)).toEqual([3, 5]);
    expect(Array.from(shards[0]!.srcTokens)).toEqual([10, 1, 1, 10, 11, 1, 10, 11, 12]);
    expect(Array.from(shards[1]!.labels)).toEqual([3, 4]);
    // re-collating the shard's own examples gives the same batch
    const own = collate([tok(4, 3), tok(5, 4)], [3, 4]);
    expect(shards[1]).toEqual(own);
    expect(shardBatch(global, 0, 1)).toEqual(global);
  });

  it('handles more ranks than examples, targets and bad ranks', () => {
    const s = shardBatch(global, 6, 7);
    expect([s.B, s.L, s.ntokens]).toEqual([0, 0, 0]);
    const mt = collate([
      { tokens: Int32Array.of(4), prevOutputTokens: Int32Array.of(2, 5, 6), target: Int32Array.of(5, 6, 2) },
      { tokens: Int32Array.of(4), prevOutputTokens: Int32Array.of(2), target: Int32Array.of(2) },
    ]) as TokenBatch;
    const s1 = shardBatch(mt, 1, 2);
    expect([s1.T, s1.ntokens]).toEqual([1, 1]);
    expect(Array.from(s1.target!)).toEqual([2]);
    expect(() => shardBatch(global, 2, 2)).toThrow(/rank = 2/);
    expect(() => shardBatch(global, 0, 0)).toThrow(/worldSize/);
  });
});
