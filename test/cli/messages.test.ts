/**
 * Messages and exit codes the README promises (real `mega` processes): a user's mistake is one
 * line on stderr naming the value and what was expected, exit code 2.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildForChildren, run, type Built } from '../dist/helpers.js';
import { tinyListops } from '../tiny.js';

let built: Built;
let cli: string;
const tmp = mkdtempSync(join(tmpdir(), 'mega-messages-'));
beforeAll(async () => {
  built = await buildForChildren();
  cli = built.js('src/cli/main.ts');
}, 60000);
afterAll(() => {
  built?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

function mega(args: string[], env: Record<string, string> = {}) {
  return run('node', [cli, ...args], { env, timeoutMs: 90000 }).done;
}

/** One line on stderr, exit 2, the line matching `re`. */
function userError(r: { code: number | null; stderr: string }, re: RegExp): void {
  expect(r.code, r.stderr).toBe(2);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(re);
}

describe('backend selection', () => {
  it('--backend bogus, MEGA_BACKEND=bogus and --gpu -1 are user errors', async () => {
    const [a, b, c, d] = await Promise.all([
      mega(['info', '--backend', 'bogus']),
      mega(['info'], { MEGA_BACKEND: 'bogus' }),
      mega(['info', '--gpu', '-1']),
      mega(['info'], { MEGA_GPU: '-1' }),
    ]);
    userError(a, /unknown backend 'bogus' \(expected cpu, gpujs or auto\)/);
    userError(b, /MEGA_BACKEND=bogus: unknown backend 'bogus' \(expected cpu, gpujs or auto\)/);
    userError(c, /--gpu -1: invalid GPU adapter index/);
    userError(d, /MEGA_GPU=-1: invalid GPU adapter index/);
  }, 60000);
});

describe('learning-rate schedule from --max-update', () => {
  const TINY = [...tinyListops(48), '--log-interval', '1'];

  it('--max-update 100 (= the default warmup) scales the warmup like the default run (listops: 100 of 1000 updates → 10 of 100)', async () => {
    const dir = join(tmp, 'short');
    const r = await mega(['train', ...TINY, '--max-update', '100', '--validate-interval-updates', '0', '--save-dir', dir]);
    expect(r.code, r.stderr).toBe(0);
    const lrs = readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((x) => x.type === 'train')
      .map((x) => x.lr);
    // linear_decay: warmup from 1e-7 over W = 10 updates to 0.005, then linear decay to 0 at T = 100; update k uses lr(k − 1)
    const want = Array.from({ length: 100 }, (_, n) => (n <= 10 ? 1e-7 + (n * (0.005 - 1e-7)) / 10 : (0.005 * (100 - n)) / 90));
    expect(lrs).toHaveLength(100);
    lrs.forEach((lr: number, n: number) => expect(lr, `update ${n + 1}`).toBeCloseTo(want[n]!, 12));
  }, 120000);

  it('--warmup-updates equal to --max-update is explained with the flags the user gave', async () => {
    const r = await mega(['train', ...TINY, '--max-update', '10', '--warmup-updates', '10', '--save-dir', join(tmp, 'eq')]);
    userError(
      r,
      new RegExp(
        '--warmup-updates 10 equals --max-update 10: linear_decay warms up for --warmup-updates and then decays until --max-update ' +
          '\\(or --total-num-update\\); give a smaller --warmup-updates or a larger --total-num-update',
      ),
    );
  }, 60000);
});

describe('the default speech preset fits a small CPU machine', () => {
  it('mega train --task speech (default arch and batch) on 1-second 16 kHz clips peaks below 2 GiB; --help states the costs', async () => {
    const data = join(tmp, 'speech');
    for (const [c, label] of ['yes', 'no'].entries()) {
      mkdirSync(join(data, label), { recursive: true });
      for (let k = 0; k < 10; k++)
        writeFileSync(join(data, label, `clip${k}.wav`), wav16k(Array.from({ length: 16000 }, (_, t) => 8000 * Math.sin((t + k) * (c + 1) * 0.01))));
    }
    const rssFile = join(tmp, 'speech.rss');
    const hook = new URL('./fixtures/max-rss.cjs', import.meta.url).pathname;
    const r = await run(
      'node',
      [
        '--require',
        hook,
        cli,
        'train',
        '--task',
        'speech',
        '--data',
        data,
        '--max-update',
        '2',
        '--validate-interval-updates',
        '0',
        '--quiet',
        '--save-dir',
        join(tmp, 'speech-ck'),
        '--json',
      ],
      { env: { MEGA_TEST_RSS_FILE: rssFile }, timeoutMs: 600000 },
    ).done;
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toMatchObject({ arch: 'mega_sc_raw_tiny', updates: 2 });
    const peakKiB = Number(readFileSync(rssFile, 'utf8'));
    expect(peakKiB).toBeGreaterThan(0);
    expect(peakKiB / 1024 ** 2, 'peak memory in GiB').toBeLessThan(2);
    const h = await mega(['train', '--help']);
    expect(h.stdout).toMatch(/mega_sc_raw_base \(the reference preset[^)]*\) needs ≈ [\d.]+ GB per clip/);
  }, 600000);
});

/** A mono 16-bit PCM WAV file at 16 kHz. */
function wav16k(samples: number[]): Buffer {
  const data = Buffer.alloc(samples.length * 2);
  samples.forEach((s, i) => data.writeInt16LE(Math.round(s), 2 * i));
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVEfmt ', 8);
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
