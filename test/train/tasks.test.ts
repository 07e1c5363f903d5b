import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { evaluateCheckpoint } from '../../src/train/evaluate.js';
import { train } from '../../src/train/trainer.js';

const root = mkdtempSync(join(tmpdir(), 'mega-tasks-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A tiny model and run: 2 updates, batch 4, quiet. */
const TINY = { layers: 1, embed_dim: 16, hidden_dim: 16, ffn_embed_dim: 16, z_dim: 8, n_dim: 2, max_update: 2, batch_size: 4, warmup_updates: 1, quiet: true };

let seq = 0;
function dir(name: string): string {
  const d = join(root, `${name}-${seq++}`);
  mkdirSync(d, { recursive: true });
  return d;
}

/** Deterministic pseudo-random words. */
function words(i: number, n: number): string {
  const w = ['alpha', 'beta', 'gamma', 'delta', 'eps', 'zeta', 'eta', 'theta'];
  return Array.from({ length: n }, (_, j) => w[(i * 7 + j * 3) % w.length]).join(' ');
}

export function idxImages(count: number, rows: number, cols: number, pixel: (i: number, p: number) => number): Buffer {
  const b = Buffer.alloc(16 + count * rows * cols);
  b.writeUInt32BE(2051, 0);
  b.writeUInt32BE(count, 4);
  b.writeUInt32BE(rows, 8);
  b.writeUInt32BE(cols, 12);
  for (let i = 0; i < count; i++) for (let p = 0; p < rows * cols; p++) b[16 + i * rows * cols + p] = pixel(i, p);
  return b;
}

export function idxLabels(labels: number[]): Buffer {
  const b = Buffer.alloc(8 + labels.length);
  b.writeUInt32BE(2049, 0);
  b.writeUInt32BE(labels.length, 4);
  labels.forEach((l, i) => (b[8 + i] = l));
  return b;
}

export function wav(samples: number[]): Buffer {
  const data = Buffer.alloc(samples.length * 2);
  samples.forEach((s, i) => data.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(s))), i * 2));
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVE', 8);
  h.write('fmt ', 12);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(16000, 24);
  h.writeUInt32LE(32000, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}

describe('task data paths (tiny runs)', () => {
  it('listops from LRA TSV files (basic_*.tsv), then eval on the test split', () => {
    const d = dir('listops');
    const rows = ['Source\tTarget', '( [MAX 2 9 ] )\t9', '[MIN 4 7 ]\t4', '[SM 3 4 ]\t7', '[MED 1 2 3 ]\t2', '[MAX 0 [MIN 5 6 ] ]\t5'];
    for (const f of ['basic_train.tsv', 'basic_val.tsv', 'basic_test.tsv']) writeFileSync(join(d, f), rows.join('\n'));
    const save = join(d, 'ck');
    const r = train({ ...TINY, task: 'listops', data: d, save_dir: save });
    expect(r.updates).toBe(2);
    expect(r.valid_accuracy).toBeGreaterThanOrEqual(0);
    expect(r.majority_baseline).toBeCloseTo(0.2);
    const e = evaluateCheckpoint({ checkpoint: r.checkpoint!, split: 'test' });
    expect(e.examples).toBe(5);
    expect(e.accuracy).toBeGreaterThanOrEqual(0);
    expect(Number.isFinite(e.loss)).toBe(true);
  });

  it('text classification (label<TAB>text)', () => {
    const d = dir('text');
    const lines = Array.from({ length: 12 }, (_, i) => `${i % 2}\t${words(i, 3)}`).join('\n');
    for (const f of ['train.tsv', 'valid.tsv', 'test.tsv']) writeFileSync(join(d, f), lines);
    const r = train({ ...TINY, task: 'text', data: d, save_dir: join(d, 'ck') });
    expect(r.task).toBe('text');
    expect(r.arch).toBe('mega_lra_imdb_tiny');
    expect(r.valid_accuracy).not.toBeNull();
    expect(r.majority_baseline).toBe(0.5);
  });

  it('retrieval (dual input, 3 columns)', () => {
    const d = dir('retrieval');
    const lines = Array.from({ length: 8 }, (_, i) => `${i % 2}\t${words(i, 2)}\t${words(i + 1, 3)}`).join('\n');
    for (const f of ['train.tsv', 'dev.tsv']) writeFileSync(join(d, f), lines);
    const r = train({ ...TINY, task: 'retrieval', data: d, save_dir: join(d, 'ck') });
    expect(r.updates).toBe(2);
    expect(r.valid_accuracy).not.toBeNull();
  });

  it('image classification from IDX files, validation held out of train', () => {
    const d = dir('image');
    const n = 20;
    const labels = Array.from({ length: n }, (_, i) => i % 3);
    writeFileSync(
      join(d, 'train-images-idx3-ubyte'),
      idxImages(n, 4, 4, (i, p) => (labels[i]! * 80 + p * 5) % 256),
    );
    writeFileSync(join(d, 'train-labels-idx1-ubyte'), idxLabels(labels));
    const r = train({ ...TINY, task: 'image', data: d, num_classes: 3, valid_fraction: 0.25, save_dir: join(d, 'ck') });
    expect(r.updates).toBe(2);
    expect(r.valid_accuracy).not.toBeNull();
  });

  it('speech (Speech Commands layout, stratified split, chunked encoder)', () => {
    const d = dir('speech');
    for (const [c, label] of ['yes', 'no'].entries()) {
      mkdirSync(join(d, label));
      for (let k = 0; k < 7; k++) {
        writeFileSync(join(d, label, `clip${k}.wav`), wav(Array.from({ length: 64 }, (_, t) => 8000 * Math.sin((t + k) * (c + 1) * 0.3))));
      }
      writeFileSync(join(d, label, 'short.wav'), wav([1, 2, 3])); // dropped: shorter than the clip length
    }
    const r = train({ ...TINY, task: 'speech', data: d, max_positions: 64, chunk_size: 16, save_dir: join(d, 'ck') });
    expect(r.updates).toBe(2);
    expect(r.parameters).toBeGreaterThan(0);
    expect(r.valid_accuracy).not.toBeNull();
  });

  it('language model on one text file: perplexity and bits per byte', () => {
    const d = dir('lm');
    const f = join(d, 'corpus.txt');
    writeFileSync(f, Array.from({ length: 40 }, (_, i) => words(i, 4)).join('\n'));
    const r = train({ ...TINY, task: 'lm', data: f, tokens_per_sample: 32, save_dir: join(d, 'ck') });
    expect(r.valid_accuracy).toBeNull();
    expect(r.majority_baseline).toBeNull();
    expect(r.valid_ppl).toBeCloseTo(2 ** r.valid_loss!, 6);
    expect(r.valid_bpb).toBeCloseTo(r.valid_loss!, 12);
    const e = evaluateCheckpoint({ checkpoint: r.checkpoint!, split: 'valid' });
    expect(e.bpb).toBeCloseTo(r.valid_bpb!, 10);
  });

  it('translation (source<TAB>target) with label smoothing', () => {
    const d = dir('mt');
    const lines = Array.from({ length: 10 }, (_, i) => `${words(i, 2)}\t${words(i + 3, 2)}`).join('\n');
    for (const f of ['train.tsv', 'valid.tsv']) writeFileSync(join(d, f), lines);
    const r = train({ ...TINY, task: 'translation', data: d, save_dir: join(d, 'ck') });
    expect(r.updates).toBe(2);
    expect(r.valid_ppl).toBeGreaterThan(1);
    // the smoothed loss is above the plain NLL that the perplexity uses
    expect(r.valid_loss!).toBeGreaterThan(Math.log2(r.valid_ppl!));
  });
});
