import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { unpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/train/errors.js';
import { makeSchedule, makeScheduleFromArgs } from '../../src/train/schedule.js';

const close = (a: number, b: number, tol = 1e-15): void => {
  expect(Math.abs(a - b)).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(b)));
};

describe('linear_decay', () => {
  const s = makeSchedule('linear_decay', {
    lr: 1e-3,
    warmupUpdates: 100,
    warmupInitLr: 1e-7,
    endLearningRate: 0,
    totalNumUpdate: 1000,
  });
  it('warms up linearly from warmup_init_lr', () => {
    expect(s.lr(0)).toBe(1e-7);
    close(s.lr(50), 1e-7 + 0.5 * (1e-3 - 1e-7));
    close(s.lr(100), 1e-3);
  });
  it('decays linearly to end_learning_rate at total_num_update', () => {
    close(s.lr(550), 0.0005);
    close(s.lr(999), 1e-3 / 900);
    expect(s.lr(1000)).toBe(0);
    expect(s.lr(5000)).toBe(0);
  });
  it('applies the setup rules for warmup_init_lr', () => {
    const noWarm = makeSchedule('linear_decay', { lr: 2, totalNumUpdate: 10, endLearningRate: 1 });
    expect(noWarm.lr(0)).toBe(2);
    close(noWarm.lr(5), 1.5);
    const neg = makeSchedule('linear_decay', { lr: 1, warmupUpdates: 4, totalNumUpdate: 8 });
    expect(neg.lr(0)).toBe(0);
    close(neg.lr(2), 0.5);
  });
  it('supports warmup_power (quadratic warmup)', () => {
    const q = makeSchedule('linear_decay', { lr: [1], warmupUpdates: 10, warmupPower: 2, warmupInitLr: 0, totalNumUpdate: 20 });
    close(q.lr(5), 0.25);
    close(q.lr(10), 1);
    close(q.lr(15), 0.5);
  });
  it('rejects invalid settings with ConfigError', () => {
    const bad = [
      { lr: 1e-3, warmupUpdates: 10, warmupInitLr: 1e-3 },
      { lr: 1e-3, warmupUpdates: 0, warmupInitLr: 1e-7 },
      { lr: [1e-3, 1e-4] },
      { lr: 1e-3, warmupUpdates: -1 },
      { lr: 1e-3, warmupUpdates: 10, warmupInitLr: 0, totalNumUpdate: 10 },
      { lr: Number.NaN },
    ];
    for (const b of bad) expect(() => makeSchedule('linear_decay', b)).toThrow(ConfigError);
    expect(() => makeSchedule('nope', { lr: 1 })).toThrow(/expected one of/);
    expect(() => s.lr(-1)).toThrow(ConfigError);
  });
});

describe('cosine', () => {
  it('follows one cosine period then shrinks', () => {
    const s = makeSchedule('cosine', { lr: 1, maxUpdate: 100 });
    expect(s.lr(0)).toBe(1);
    close(s.lr(25), 0.5 * (1 + Math.SQRT1_2));
    close(s.lr(50), 0.5);
    close(s.lr(100), 0.1);
    close(s.lr(150), 0.05);
  });
  it('warms up from min_lr when warmup_init_lr is unset', () => {
    const s = makeSchedule('cosine', { lr: 1, minLr: 0.1, warmupUpdates: 10, maxUpdate: 110 });
    close(s.lr(0), 0.1);
    close(s.lr(5), 0.55);
    close(s.lr(10), 1);
    close(s.lr(60), 0.55);
  });
  it('grows periods by t_mult', () => {
    const s = makeSchedule('cosine', { lr: 1, tMult: 2, lrPeriodUpdates: 10 });
    close(s.lr(5), 0.5);
    close(s.lr(10), 0.1);
    close(s.lr(20), 0.05);
    close(s.lr(30), 0.01);
  });
  it('rejects invalid settings with ConfigError', () => {
    expect(() => makeSchedule('cosine', { lr: 0.1, minLr: 0.1, maxUpdate: 10 })).toThrow(ConfigError);
    expect(() => makeSchedule('cosine', { lr: 0.1, warmupUpdates: 5 })).toThrow(/max-update/);
  });
});

describe('fixed and inverse_sqrt', () => {
  it('fixed uses the (n+1)/W warmup factor', () => {
    const s = makeSchedule('fixed', { lr: 1, warmupUpdates: 4 });
    expect([0, 3, 4, 100].map((n) => s.lr(n))).toEqual([0.25, 1, 1, 1]);
  });
  it('inverse_sqrt warms up then decays as 1/sqrt(n)', () => {
    const s = makeSchedule('inverse_sqrt', { lr: 1, warmupUpdates: 4 });
    expect([0, 2, 4, 16].map((n) => s.lr(n))).toEqual([0, 0.5, 1, 0.5]);
    expect(() => makeSchedule('inverse_sqrt', { lr: 1, warmupUpdates: 0 })).toThrow(ConfigError);
  });
});

/** A golden fixture of the project (test/golden, copied unchanged from the reference run). */
function golden(name: string): string {
  return fileURLToPath(new URL(`../golden/${name}`, import.meta.url));
}

interface GTensor {
  dtype: string;
  shape: number[];
  data: Uint8Array;
}
const scalar = (t: GTensor): number => {
  expect(t.dtype).toBe('f64');
  return new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength).getFloat64(0, true);
};

describe.each(['adam_linear_decay.msgpack', 'adam_cosine_clip.msgpack'])('golden %s', (file) => {
  const path = golden(file);
  it('reproduces lr and lr_next of every step bit-exactly', () => {
    const g = unpack(readFileSync(path)) as {
      config: Record<string, unknown>;
      steps: { outputs: { lr: GTensor; lr_next: GTensor } }[];
    };
    const s = makeScheduleFromArgs(g.config);
    expect(g.steps.length).toBeGreaterThan(0);
    g.steps.forEach((step, i) => {
      expect(s.lr(i)).toBe(scalar(step.outputs.lr));
      expect(s.lr(i + 1)).toBe(scalar(step.outputs.lr_next));
    });
  });
});
