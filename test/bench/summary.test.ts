import { describe, expect, it } from 'vitest';
import type { BenchResult } from '../../bench/report.js';
import { computeFigures, summaryLines, type Figure } from '../../bench/summary.js';

const row = (bench: string, impl: string, shape: number[], value: number, unit: string, ratio?: number, baseline?: string): BenchResult => ({
  bench,
  impl,
  dtype: 'f32',
  shape,
  value,
  unit,
  ...(ratio !== undefined ? { ratio } : {}),
  ...(baseline !== undefined ? { baseline } : {}),
});

/** A run that measured every figure (values made up, ratios chosen around the targets). */
const FULL: BenchResult[] = [
  row('mega', 'mega-ts-cpu', [1024, 4, -1], 6000, 'tokens/s', 2.0, 'pytorch'), // the attention-only layer: not a figure
  row('mega-enc', 'pytorch', [1024, 4, -1], 4000, 'tokens/s'),
  row('mega-enc-mem', 'pytorch', [1024, 4, -1], 500, 'MiB'),
  row('mega-enc', 'mega-ts-cpu', [1024, 4, -1], 6400, 'tokens/s', 1.6, 'pytorch'),
  row('mega-enc-mem', 'mega-ts-cpu', [1024, 4, -1], 550, 'MiB', 1.1, 'pytorch'),
  row('mega-enc', 'mega-ts-cpu', [1024, 4, 128], 5000, 'tokens/s', 1.25, 'pytorch'),
  row('mega-enc-mem', 'mega-ts-cpu', [1024, 4, 128], 400, 'MiB', 0.8, 'pytorch'),
  row('mega-enc-bound', 'mega-ts-cpu', [1024, 4, -1], 5600, 'tokens/s', 1.4, 'pytorch'),
  row('mega-enc-bound', 'mega-ts-cpu', [1024, 4, 128], 12000, 'tokens/s', 3, 'pytorch'),
  row('train', 'pytorch-imdb-t2', [4, 1024], 0.5, 'steps/s'),
  row('train', 'mega-ts-imdb-t2', [4, 1024], 0.9, 'steps/s', 1.8, 'pytorch-imdb-t2'),
  row('train', 'mega-ts-imdb-t1', [4, 1024], 0.4, 'steps/s', 0.7, 'pytorch-imdb-t1'),
  row('train', 'mega-ts-listops-t2', [32, 40], 30, 'steps/s', 0.35, 'pytorch-listops-t2'),
  row('train-bound', 'mega-ts-listops-t2', [32, 40], 300, 'steps/s', 10, 'pytorch-listops-t2'),
  row('train-bound', 'mega-ts-imdb-t2', [4, 1024], 1, 'steps/s', 2, 'pytorch-imdb-t2'),
  row('matmul-ceiling', 'mega-ts-1024-vs-ceiling', [1024, 1024, 1024], 60, 'GFLOP/s', 0.92),
  row('matmul-openblas', 'mega-ts-1024-vs-openblas', [1024, 1024, 1024], 60, 'GFLOP/s', 0.31),
  row('main-job', 'mega-train', [], 24, 's', 1.25, '30 s'),
  row('main-job-acc', 'mega-train', [], 55.4, '%', 1, '55.4 %'),
  row('mega-scale', 'mega-ts-cpu', [1024, 2, 128], 260, 'ms'),
  row('mega-mem', 'mega-ts-cpu', [1024, 2, 128], 350, 'MiB'),
  row('mega-scale', 'mega-ts-cpu', [4096, 2, 128], 1170, 'ms', 4.5, 'L=1024'),
  row('mega-mem', 'mega-ts-cpu', [4096, 2, 128], 980, 'MiB', 2.8, 'L=1024'),
  row('mega-scale', 'mega-ts-cpu', [16384, 2, 128], 5382, 'ms', 4.6, 'L=4096'),
  row('mega-mem', 'mega-ts-cpu', [16384, 2, 128], 3038, 'MiB', 3.1, 'L=4096'),
];

const byId = (figs: Figure[]) => Object.fromEntries(figs.map((f) => [f.figure, f]));

describe('issue 13 summary', () => {
  it('takes each figure from its row and judges it against the target', () => {
    const f = byId(computeFigures(FULL));
    expect(Object.keys(f)).toEqual([
      'issue13-1-layer-full',
      'issue13-1-memory-full',
      'issue13-1-bound-full',
      'issue13-1-layer-chunk128',
      'issue13-1-memory-chunk128',
      'issue13-1-bound-chunk128',
      'issue13-2-train-imdb',
      'issue13-2-bound-imdb',
      'issue13-3-matmul-ceiling',
      'issue13-3-matmul-openblas',
      'issue13-4-main-job',
      'issue13-5-scale-time-1k-4k',
      'issue13-5-scale-memory-1k-4k',
      'issue13-5-scale-time-4k-16k',
      'issue13-5-scale-memory-4k-16k',
    ]);
    const summary = Object.fromEntries(Object.entries(f).map(([k, v]) => [k, [v.ratio, v.met]]));
    expect(summary).toEqual({
      'issue13-1-layer-full': [1.6, true],
      'issue13-1-memory-full': [1.1, false], // lower is better, target 1
      'issue13-1-bound-full': [1.4, null], // reported without a target
      'issue13-1-layer-chunk128': [1.25, false],
      'issue13-1-memory-chunk128': [0.8, true],
      'issue13-1-bound-chunk128': [3, null],
      'issue13-2-train-imdb': [1.8, true], // the first imdb row reported (t2), not t1 nor listops
      'issue13-2-bound-imdb': [2, null], // the imdb bound, not listops'
      'issue13-3-matmul-ceiling': [0.92, true],
      'issue13-3-matmul-openblas': [0.31, null], // reported without a target
      'issue13-4-main-job': [1.25, true],
      'issue13-5-scale-time-1k-4k': [4.5, true], // ≤ 4.5 is met at equality
      'issue13-5-scale-memory-1k-4k': [2.8, true],
      'issue13-5-scale-time-4k-16k': [4.6, false],
      'issue13-5-scale-memory-4k-16k': [3.1, true],
    });
    expect(f['issue13-1-layer-full']).toMatchObject({
      row: 'mega-enc/mega-ts-cpu/f32/1024x4x-1',
      value: 6400,
      unit: 'tokens/s',
      baseline: 'pytorch',
      target: 1.5,
    });
    expect(f['issue13-2-train-imdb'].row).toBe('train/mega-ts-imdb-t2/f32/4x1024');
    expect(f['issue13-1-bound-full']).toMatchObject({ row: 'mega-enc-bound/mega-ts-cpu/f32/1024x4x-1', value: 5600, baseline: 'pytorch' });
    expect(f['issue13-5-scale-time-4k-16k'].row).toBe('mega-scale/mega-ts-cpu/f32/16384x2x128');
    expect(f['issue13-4-main-job']).toMatchObject({ value: 24, unit: 's', accuracy: 55.4, accuracy_ratio: 1 });
  });

  it('the main job is not met when it loses accuracy, however fast', () => {
    const rows = FULL.map((r) => (r.bench === 'main-job-acc' ? { ...r, value: 54.1, ratio: 54.1 / 55.4 } : r));
    const f = byId(computeFigures(rows))['issue13-4-main-job'];
    expect(f.ratio).toBe(1.25);
    expect(f.accuracy).toBe(54.1);
    expect(f.met).toBe(false);
    // the reference's own rounding (55.35 rounds to 55.4) still counts as the same accuracy
    const same = FULL.map((r) => (r.bench === 'main-job-acc' ? { ...r, value: 55.35, ratio: 55.35 / 55.4 } : r));
    expect(byId(computeFigures(same))['issue13-4-main-job'].met).toBe(true);
  });

  it('a figure whose row was not measured says so, with neither ratio nor verdict', () => {
    const rows = FULL.filter((r) => r.bench !== 'mega-enc' && r.bench !== 'main-job-acc' && !(r.bench === 'mega-scale' && r.shape[0] === 1024));
    // the 4k row has no ratio without the 1k row before it
    const noPrev = rows.map((r) => (r.bench === 'mega-scale' && r.shape[0] === 4096 ? { ...r, ratio: undefined } : r));
    const f = byId(computeFigures(noPrev));
    expect(f['issue13-1-layer-full']).toMatchObject({ ratio: null, met: null, missing: 'mega-enc/mega-ts-cpu/f32/1024x4x-1: no row with a ratio in this run' });
    expect(f['issue13-1-memory-full'].ratio).toBe(1.1); // its own row is there
    expect(f['issue13-4-main-job']).toMatchObject({ ratio: 1.25, met: null, missing: 'main-job-acc/mega-train/f32/: no row with a ratio in this run' });
    expect(f['issue13-5-scale-time-1k-4k']).toMatchObject({ ratio: null, met: null });
    expect(f['issue13-5-scale-time-4k-16k'].ratio).toBe(4.6);
  });

  it('prints one JSON line per figure, nothing when no figure was measured', () => {
    expect(summaryLines(computeFigures([row('matmul', 'mega-ts-cpu', [512, 512, 512], 40, 'GFLOP/s')]), true)).toEqual([]);
    const figs = computeFigures([row('mega-enc', 'mega-ts-cpu', [1024, 4, 128], 4321.987, 'tokens/s', 1.23456789, 'pytorch')]);
    const lines = summaryLines(figs, true);
    expect(lines).toHaveLength(15);
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed[3]).toEqual({
      figure: 'issue13-1-layer-chunk128',
      what: 'MegaSentenceEncoderLayer fwd+bwd tokens/s, mega-ts / PyTorch+OpenBLAS, chunk 128',
      ratio: 1.235,
      target: 1.5,
      better: 'higher',
      met: false,
      row: 'mega-enc/mega-ts-cpu/f32/1024x4x128',
      value: 4322,
      unit: 'tokens/s',
      baseline: 'pytorch',
    });
    expect(parsed[0]).toMatchObject({ figure: 'issue13-1-layer-full', ratio: null, met: null });
  });

  it('prints a table without --json', () => {
    const lines = summaryLines(computeFigures(FULL), false);
    expect(lines).toHaveLength(16);
    expect(lines[0]).toMatch(/^figure\s+ratio\s+target\s+met\s+what$/);
    expect(lines[1]).toBe(
      'issue13-1-layer-full              1.60  ≥ 1.5   yes  ' +
        'MegaSentenceEncoderLayer fwd+bwd tokens/s, mega-ts / PyTorch+OpenBLAS, full attention [mega-enc/mega-ts-cpu/f32/1024x4x-1: 6400 tokens/s]',
    );
    expect(lines[3]).toMatch(/^issue13-1-bound-full\s+1\.40 {2}– {7}– {4}the layer's matrix products alone/);
    expect(lines[10]).toMatch(/^issue13-3-matmul-openblas\s+0\.31 {2}– {7}– {4}matmul/);
    expect(lines[11]).toMatch(/^issue13-4-main-job\s+1\.25 {2}≥ 1 {5}yes {2}main job .*\[main-job\/mega-train\/f32\/: 24 s; accuracy 55\.4\]$/);
  });
});
