import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError } from '../../src/data/errors.js';
import { MetricsLog, readMetricsLog } from '../../src/train/metrics-log.js';
import { formatDuration, formatRate, ProgressBar } from '../../src/train/progress.js';

function sink(isTTY: boolean): { out: string[]; write: (s: string) => void; isTTY: boolean; columns: number } {
  const out: string[] = [];
  return { out, write: (s) => void out.push(s), isTTY, columns: 200 };
}

describe('ProgressBar', () => {
  it('redraws one line with \\r on a TTY and shows the metrics', () => {
    let now = 0;
    const s = sink(true);
    const bar = new ProgressBar({ total: 100, stream: s, now: () => now, redrawMs: 100 });
    now = 1000;
    bar.update(10, { loss: 2.5, lr: 1e-3, tokens: 5000 });
    now = 1050;
    bar.update(11, { tokens: 100 }); // throttled
    expect(s.out).toHaveLength(1);
    expect(s.out[0]!.startsWith('\r[##')).toBe(true);
    expect(s.out[0]).toContain('10/100 ( 10%)');
    expect(s.out[0]).toContain('loss 2.5000');
    expect(s.out[0]).toContain('lr 1.00e-3');
    expect(s.out[0]).toContain('5.0k tok/s');
    expect(s.out[0]).toContain('ETA 9s');
    now = 2000;
    bar.update(100, { tokens: 0 });
    bar.finish();
    bar.finish();
    expect(s.out.at(-1)).toBe('\n');
    expect(s.out.at(-2)).toContain('100/100 (100%)');
    expect(s.out.at(-2)).toContain('ETA 0s');
  });

  it('prints periodic plain lines when not a TTY', () => {
    let now = 0;
    const s = sink(false);
    const bar = new ProgressBar({ total: 10, stream: s, now: () => now, lineIntervalMs: 1000, label: 'epoch 1' });
    for (let i = 1; i <= 10; i++) {
      now = i * 300;
      bar.update(i, { loss: 1 / i });
    }
    bar.finish();
    expect(s.out.every((l) => l.endsWith('\n') && !l.includes('\r'))).toBe(true);
    expect(s.out).toHaveLength(4); // t = 300, 1500, 2700 and the final line
    expect(s.out[0]!.startsWith('epoch 1 1/10')).toBe(true);
    expect(s.out.at(-1)).toContain('10/10');
  });

  it('prints nothing when quiet', () => {
    const s = sink(true);
    const bar = new ProgressBar({ total: 5, stream: s, quiet: true });
    bar.update(3, { loss: 1 });
    bar.finish();
    expect(s.out).toEqual([]);
    expect(bar.status()).toContain('3/5');
  });

  it('formats durations and rates', () => {
    expect([formatDuration(5), formatDuration(90), formatDuration(3725), formatDuration(NaN)]).toEqual(['5s', '1m30s', '1h02m05s', '--']);
    expect([formatRate(950), formatRate(12345), formatRate(4.56e6)]).toEqual(['950', '12.3k', '4.56M']);
  });
});

describe('MetricsLog', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mega-metrics-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('appends one JSON object per line', () => {
    const p = join(dir, 'sub', 'metrics.jsonl');
    const log = new MetricsLog(p);
    log.write({ update: 1, loss: 2.5 });
    log.write({ update: 2, loss: Number.NaN, split: 'valid' });
    expect(readFileSync(p, 'utf8')).toBe('{"update":1,"loss":2.5}\n{"update":2,"loss":null,"split":"valid"}\n');
    new MetricsLog(p).write({ update: 3 });
    expect(readMetricsLog(p)).toHaveLength(3);
    new MetricsLog(p, true).write({ update: 1 });
    expect(readMetricsLog(p)).toEqual([{ update: 1 }]);
  });

  it('rejects malformed logs', () => {
    const p = join(dir, 'bad.jsonl');
    const log = new MetricsLog(p);
    log.write({ a: 1 });
    rmSync(p);
    expect(() => readMetricsLog(p)).toThrow(DataError);
    new MetricsLog(p).write({ a: 1 });
    appendFileSync(p, '[1]\n');
    expect(() => readMetricsLog(p)).toThrow(/bad.jsonl:2: expected a JSON object/);
  });
});
