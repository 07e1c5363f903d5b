/**
 * The `mega train --workers N` launcher in real processes: a config or data error is reported once
 * by the launcher (no worker starts); a launcher SIGKILLed mid-run takes its workers with it (they
 * notice, re-parented, after their current update and stop, writing no further checkpoint).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildForChildren, run, type Built } from './helpers.js';
import { tinyListops } from '../tiny.js';

let built: Built;
let cli: string;
const tmp = mkdtempSync(join(tmpdir(), 'mega-launcher-gone-'));
const strays: number[] = [];
beforeAll(async () => {
  built = await buildForChildren();
  cli = built.js('src/cli/main.ts');
}, 60000);
afterAll(() => {
  for (const pid of strays) if (alive(pid)) process.kill(pid, 'SIGKILL');
  built?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Direct children of `pid` (Linux /proc). */
function children(pid: number): number[] {
  const f = `/proc/${pid}/task/${pid}/children`;
  return existsSync(f) ? readFileSync(f, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number) : [];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('mega train --workers: launcher killed', () => {
  it('SIGKILL of the launcher stops its workers', async () => {
    const dir = join(tmp, 'run');
    const launcher = run(
      'node',
      [
        cli,
        'train',
        ...tinyListops(48),
        '--warmup-updates',
        '1',
        '--max-update',
        '1000000',
        '--validate-interval-updates',
        '0',
        '--save-interval-updates',
        '0',
        '--workers',
        '2',
        '--save-dir',
        dir,
      ],
      { timeoutMs: 120000 },
    );
    const pid = launcher.child.pid!;
    // training has started once rank 0 wrote its start record
    for (let i = 0; i < 600 && !(existsSync(join(dir, 'metrics.jsonl')) && children(pid).length === 2); i++) await sleep(100);
    const workers = children(pid);
    expect(workers).toHaveLength(2);
    strays.push(...workers);
    const exited = new Promise((r) => launcher.child.once('exit', r)); // not 'close': the workers hold its stdio
    process.kill(pid, 'SIGKILL');
    await exited;
    let left = workers;
    for (let i = 0; i < 300 && left.length; i++) {
      await sleep(100);
      left = left.filter(alive);
    }
    expect(left, 'workers still running 30 s after their launcher was killed').toEqual([]);
    expect(existsSync(join(dir, 'checkpoint_last.safetensors'))).toBe(false);
  }, 120000);
});

describe('mega train --workers: bad input', () => {
  it('a config or data error is printed once by the launcher, exit 2, no worker started', async () => {
    const base = [
      '--listops-train',
      '48',
      '--listops-valid',
      '16',
      '--batch-size',
      '8',
      '--layers',
      '1',
      '--embed-dim',
      '16',
      '--quiet',
      '--max-update',
      '2',
      '--workers',
      '2',
    ];
    const [data, config] = await Promise.all([
      run('node', [cli, 'train', ...base, '--task', 'text', '--data', '/nonexistent/mega', '--save-dir', join(tmp, 'bad-data')], { timeoutMs: 60000 }).done,
      run('node', [cli, 'train', ...base, '--chunk-size', '0', '--save-dir', join(tmp, 'bad-config')], { timeoutMs: 60000 }).done,
    ]);
    const cases = [
      [data, /^mega train: .*\/nonexistent\/mega.*no such file or folder/],
      [config, /^mega train: --chunk-size = 0: expected -1/],
    ] as const;
    for (const [r, re] of cases) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr.trim()).toMatch(re);
    }
    expect(existsSync(join(tmp, 'bad-data'))).toBe(false);
    expect(existsSync(join(tmp, 'bad-config'))).toBe(false);
  }, 60000);
});
