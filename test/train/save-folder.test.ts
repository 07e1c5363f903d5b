/**
 * The save folder of `mega train` in real processes and real files: a kill at any step of a save
 * leaves a pair that `--resume` continues exactly; `--overwrite` and `--no-save` keep the previous
 * run until there is something to replace it with; stale temporary files are removed; one run per
 * folder (a lock); unusable `--save-dir` values are clear user errors.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mainJobSaveDir } from '../../src/cli/train.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { buildForChildren, run, type Built } from '../dist/helpers.js';
import { tinyListops } from '../tiny.js';

let built: Built;
let cli: string;
const tmp = mkdtempSync(join(tmpdir(), 'mega-save-folder-'));
beforeAll(async () => {
  built = await buildForChildren();
  cli = built.js('src/cli/main.ts');
}, 60000);
afterAll(() => {
  built?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

const TINY = [...tinyListops(48), '--warmup-updates', '1', '--dropout', '0.1'];

function mega(args: string[], env: Record<string, string> = {}) {
  return run('node', [cli, 'train', ...TINY, ...args], { env, timeoutMs: 90000 }).done;
}

function weights(dir: string): Record<string, number[]> {
  const c = loadCheckpoint(join(dir, 'checkpoint_last.safetensors'));
  return Object.fromEntries(Object.entries(c.tensors).map(([k, t]) => [k, Array.from(t.toTypedArray())]));
}

describe('a kill during a save', () => {
  it('at every step leaves a pair that --resume continues to the exact parameters of an uninterrupted run', async () => {
    const common = ['--max-update', '4', '--total-num-update', '4', '--save-interval-updates', '2', '--validate-interval-updates', '0'];
    const steps = ['prev', 'state', 'weights'] as const;
    const [clean, ...killed] = await Promise.all([
      mega([...common, '--save-dir', join(tmp, 'clean')]),
      ...steps.map((s) => mega([...common, '--save-dir', join(tmp, `kill-${s}`)], { MEGA_SAVE_FAULT: `kill:${s}@4` })),
    ]);
    expect(clean.code, clean.stderr).toBe(0);
    for (const k of killed) expect(k.signal, k.stderr).toBe('SIGKILL');
    const resumed = await Promise.all(steps.map((s) => mega(['--resume', '--max-update', '4', '--save-dir', join(tmp, `kill-${s}`), '--json'])));
    const expectedFrom = { prev: 2, state: 2, weights: 4 };
    steps.forEach((s, i) => {
      const r = resumed[i]!;
      expect(r.code, `${s}: ${r.stderr}`).toBe(0);
      const j = JSON.parse(r.stdout.trim());
      expect(j.updates, s).toBe(4);
      expect(j.updates_this_run, s).toBe(4 - expectedFrom[s]);
      expect(weights(join(tmp, `kill-${s}`)), s).toEqual(weights(join(tmp, 'clean')));
      expect(
        readdirSync(join(tmp, `kill-${s}`)).filter((f) => f.includes('prev-state')),
        s,
      ).toEqual([]);
    });
  }, 180000);

  it('a folder holding new state + kept previous state + previous weights resumes from the previous pair', async () => {
    // the on-disk state of a save killed between its state and weights steps, built by hand
    const [a, b] = [join(tmp, 'pairA'), join(tmp, 'pairB')];
    const [ra, rb] = await Promise.all([mega(['--max-update', '2', '--total-num-update', '4', '--save-dir', a]), mega(['--max-update', '4', '--save-dir', b])]);
    expect(ra.code, ra.stderr).toBe(0);
    expect(rb.code, rb.stderr).toBe(0);
    writeFileSync(join(a, 'checkpoint_last.prev-state.safetensors'), readFileSync(join(a, 'checkpoint_last.state.safetensors')));
    writeFileSync(join(a, 'checkpoint_last.state.safetensors'), readFileSync(join(b, 'checkpoint_last.state.safetensors')));
    const r = await mega(['--resume', '--max-update', '4', '--save-dir', a, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toMatchObject({ updates: 4, updates_this_run: 2 });
    expect(weights(a)).toEqual(weights(b));
  }, 120000);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait until `dir` holds a metrics log (the run passed its preparation and writes). */
async function started(dir: string): Promise<void> {
  for (let i = 0; i < 600 && !existsSync(join(dir, 'metrics.jsonl')); i++) await sleep(100);
  expect(existsSync(join(dir, 'metrics.jsonl')), `no run started in ${dir}`).toBe(true);
}

/** The pid of a process that has exited. */
function deadPid(): number {
  return Number(spawnSync('node', ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
}

const LONG = ['--max-update', '1000000', '--validate-interval-updates', '0', '--save-interval-updates', '0'];

describe('keeping the previous run', () => {
  it('--overwrite keeps the previous checkpoint until the new run has saved', async () => {
    const dir = join(tmp, 'over');
    const first = await mega(['--max-update', '2', '--save-dir', dir]);
    expect(first.code, first.stderr).toBe(0);
    const before = weights(dir);
    const bytes = readFileSync(join(dir, 'checkpoint_last.safetensors'));
    // a new run that dies before its first save leaves the previous run's checkpoint
    const p = run('node', [cli, 'train', ...TINY, ...LONG, '--overwrite', '--save-dir', dir], { timeoutMs: 90000 });
    // killed once it has trained a while: its fresh metrics log (no "end" record yet) has a train record
    const training = () => {
      const log = readFileSync(join(dir, 'metrics.jsonl'), 'utf8');
      return log.includes('"type":"train"') && !log.includes('"type":"end"');
    };
    for (let i = 0; i < 600 && !training() && p.child.exitCode === null; i++) await sleep(100);
    expect(training()).toBe(true);
    p.child.kill('SIGKILL');
    await p.done;
    expect(readFileSync(join(dir, 'checkpoint_last.safetensors')).equals(bytes)).toBe(true);
    expect(weights(dir)).toEqual(before);
    const r = await mega(['--resume', '--max-update', '3', '--save-dir', dir, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toMatchObject({ updates: 3, updates_this_run: 1 });
    // a new run that saves replaces it, best checkpoint included
    const o = await mega(['--max-update', '2', '--validate-interval-updates', '0', '--overwrite', '--seed', '7', '--save-dir', dir, '--json']);
    expect(o.code, o.stderr).toBe(0);
    const seven = weights(dir);
    expect(seven).not.toEqual(before);
    expect(loadCheckpoint(join(dir, 'checkpoint_last.safetensors')).update).toBe(2);
    expect(loadCheckpoint(join(dir, 'checkpoint_best.safetensors')).update).toBe(2);
  }, 120000);

  it('--no-save on a folder holding a run leaves its files untouched', async () => {
    const dir = join(tmp, 'nosave');
    const first = await mega(['--max-update', '2', '--save-dir', dir]);
    expect(first.code, first.stderr).toBe(0);
    const snap = () => Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f)).toString('base64')]));
    const before = snap();
    expect(Object.keys(before)).toEqual(expect.arrayContaining(['metrics.jsonl', 'curves.svg', 'accuracy.svg']));
    const r = await mega(['--max-update', '3', '--no-save', '--save-dir', dir, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toMatchObject({ updates: 3, checkpoint: null, metrics_log: null, plot: null });
    expect(snap()).toEqual(before);
  }, 120000);
});

describe('one run per folder, no litter', () => {
  it("stale temporary files of dead processes are removed on start; a live process's are kept", async () => {
    const dir = join(tmp, 'temps');
    mkdirSync(dir);
    const dead = deadPid();
    const stale = [`checkpoint_last.safetensors.tmp-${dead}-a1b2c3d4e5f6`, `metrics.jsonl.tmp-${dead}-00ff00ff00ff`];
    const live = `curves.svg.tmp-${process.pid}-0123456789ab`;
    for (const f of [...stale, live]) writeFileSync(join(dir, f), 'partial');
    const r = await mega(['--max-update', '2', '--save-dir', dir]);
    expect(r.code, r.stderr).toBe(0);
    const left = readdirSync(dir);
    for (const f of stale) expect(left).not.toContain(f);
    expect(left).toContain(live);
  }, 60000);

  it("a second run on the same folder is refused while the first lives; a killed run's lock is taken over", async () => {
    const dir = join(tmp, 'locked');
    const a = run('node', [cli, 'train', ...TINY, ...LONG, '--save-dir', dir], { timeoutMs: 90000 });
    try {
      await started(dir);
      const [b, c] = await Promise.all([
        mega(['--max-update', '2', '--save-dir', dir, '--overwrite']),
        mega(['--max-update', '2', '--save-dir', dir, '--overwrite', '--workers', '2']),
      ]);
      for (const r of [b, c]) {
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr.trim()).toBe(
          `mega train: --save-dir ${dir} is in use by another mega train run (pid ${a.child.pid}): wait for it to end or use another --save-dir`,
        );
      }
    } finally {
      a.child.kill('SIGKILL');
    }
    await a.done;
    const d = await mega(['--max-update', '2', '--save-dir', dir, '--overwrite']);
    expect(d.code, d.stderr).toBe(0);
    expect(readdirSync(dir).filter((f) => f.includes('lock'))).toEqual([]); // released at the end
  }, 120000);
});

describe('the main job (no arguments)', () => {
  it('goes to checkpoints/run-N when checkpoints/ is in use by a live run that has not saved yet', () => {
    const root = join(tmp, 'main-job');
    mkdirSync(root);
    const sleeper = spawn('sleep', ['30']);
    try {
      writeFileSync(join(root, '.mega-train.lock'), `${sleeper.pid}\n${hostname()}\n`);
      expect(mainJobSaveDir(root)).toBe(join(root, 'run-2'));
    } finally {
      sleeper.kill('SIGKILL');
    }
  });
});

describe('unusable --save-dir values', () => {
  it('a file, a path under a file, /sys, "" and /proc/self/x are one-line user errors (exit 2, no hang)', async () => {
    const file = join(tmp, 'a-file');
    writeFileSync(file, 'x');
    const cases: [string, RegExp][] = [
      [file, new RegExp(`--save-dir ${file}: is a file, not a folder`)],
      [join(file, 'sub'), new RegExp(`--save-dir ${file}/sub: ${file} is a file, not a folder`)],
      ['/sys/mega-test', /--save-dir \/sys\/mega-test: \/sys is on sysfs, a kernel pseudo filesystem/],
      ['', /--save-dir "": expected a folder path/],
      ['/proc/self/x', /--save-dir \/proc\/self\/x: \/proc\/self is on procfs, a kernel pseudo filesystem/],
    ];
    const rs = await Promise.all(cases.map(([d]) => run('node', [cli, 'train', ...TINY, '--max-update', '2', '--save-dir', d], { timeoutMs: 30000 }).done));
    rs.forEach((r, i) => {
      expect(r.signal, `${cases[i]![0]} hung`).toBe(null);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr.trim()).toMatch(cases[i]![1]);
    });
  }, 60000);
});
