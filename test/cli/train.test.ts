import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { tinyListops } from '../tiny.js';

const root = mkdtempSync(join(tmpdir(), 'mega-cli-train-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Tiny generated-ListOps options (a run of a few updates takes well under a second). */
const TINY = [...tinyListops(64), '--warmup-updates', '1'];

let stdout: string[] = [];
let stderr: string[] = [];
beforeEach(() => {
  stdout = [];
  stderr = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (stdout.push(String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (stderr.push(String(s)), true));
});
afterEach(() => vi.restoreAllMocks());

async function mega(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  stdout = [];
  stderr = [];
  const code = await main(argv);
  return { code, out: stdout.join(''), err: stderr.join('') };
}

function weights(path: string): Record<string, number[]> {
  return Object.fromEntries(Object.entries(readSafetensors(path).tensors).map(([k, t]) => [k, Array.from(t.data)]));
}

const good = join(root, 'good');

describe('mega train / mega eval', () => {
  it('--json prints one final line with the results', async () => {
    const r = await mega('train', ...TINY, '--max-update', '4', '--validate-interval-updates', '2', '--save-dir', good, '--json');
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines).toHaveLength(1);
    const j = JSON.parse(lines[0]!);
    expect(j).toMatchObject({ status: 'completed', task: 'listops', arch: 'mega_lra_listop_tiny', updates: 4 });
    for (const k of ['wall_time_s', 'train_loss', 'valid_loss', 'valid_accuracy', 'majority_baseline']) expect(typeof j[k], k).toBe('number');
    expect(j.checkpoint).toBe(join(good, 'checkpoint_last.safetensors'));
    expect(j.plot).toBe(join(good, 'curves.svg'));
    expect(r.err).toBe(''); // --quiet
  });

  it('prints a summary with the majority baseline, and --help', async () => {
    const r = await mega('train', ...TINY, '--max-update', '2', '--save-dir', join(root, 'summary'));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/valid accuracy \d+\.\d% vs majority-class baseline \d+\.\d%/);
    const h = await mega('train', '--help');
    expect(h.code).toBe(0);
    expect(h.out).toContain('--update-freq');
    expect(h.out).toContain('mega_lra_listop_tiny');
  });

  it('--resume continues exactly: N/2 + N/2 == N bitwise', async () => {
    const a = join(root, 'resA'),
      b = join(root, 'resB');
    expect((await mega('train', ...TINY, '--dropout', '0.1', '--max-update', '6', '--save-dir', a)).code).toBe(0);
    expect((await mega('train', ...TINY, '--dropout', '0.1', '--max-update', '3', '--total-num-update', '6', '--save-dir', b)).code).toBe(0);
    const r = await mega('train', '--resume', '--max-update', '6', '--save-dir', b, '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ updates: 6, updates_this_run: 3 });
    expect(weights(join(b, 'checkpoint_last.safetensors'))).toEqual(weights(join(a, 'checkpoint_last.safetensors')));
  });

  it('--config FILE with flags overriding it', async () => {
    const cfg = join(root, 'cfg.json');
    writeFileSync(cfg, JSON.stringify({ 'max-update': 5, batch_size: 4, warmupUpdates: 1, 'listops-train': 32, 'listops-valid': 8, quiet: true }));
    const r = await mega('train', '--config', cfg, '--max-update', '2', '--layers', '1', '--embed-dim', '16', '--save-dir', join(root, 'cfg'), '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).updates).toBe(2);
  });

  it('mega eval reports loss and accuracy on a split', async () => {
    const r = await mega('eval', join(good, 'checkpoint_last.safetensors'), '--split', 'test', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({ command: 'eval', task: 'listops', split: 'test', update: 4, examples: 8 });
    expect(j.accuracy).toBeGreaterThanOrEqual(0);
    expect(j.loss).toBeGreaterThan(0);
    const t = await mega('eval', good); // a folder: its checkpoint_best
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/^valid \| 16 examples \| loss \d+\.\d+ \| accuracy \d+\.\d%/);
  });

  it('a NaN loss stops training with exit 1 and keeps the last good checkpoint', async () => {
    const dir = join(root, 'nan');
    const r = await mega(
      'train',
      ...TINY,
      '--max-update',
      '6',
      '--validate-interval-updates',
      '1',
      '--lr',
      '1e30',
      '--warmup-updates',
      '0',
      '--clip-norm',
      '0',
      '--save-dir',
      dir,
      '--json',
    );
    expect(r.code).toBe(1);
    const j = JSON.parse(r.out);
    expect(j.status).toBe('diverged');
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/loss is (NaN|Infinity|-Infinity); training stopped, the last good checkpoint is/);
    const meta = readSafetensors(join(dir, 'checkpoint_last.safetensors')).metadata;
    expect(Number(meta.update)).toBe(j.update - 1);
  });
});

describe('bad input: one line, exit 2, nothing overwritten', () => {
  const data = join(root, 'bad');
  const files: Record<string, string> = {
    'empty/train.tsv': '',
    'empty/valid.tsv': '0\tx\n',
    'labels/train.tsv': '0\tgood\n7\tlabel seven of two\n',
    'labels/valid.tsv': '0\tx\n',
    'long/train.tsv': `0\t${'a'.repeat(40)}\n`,
    'long/valid.tsv': '1\tb\n',
  };
  const setup = () => {
    for (const [f, text] of Object.entries(files)) {
      mkdirSync(join(data, f, '..'), { recursive: true });
      writeFileSync(join(data, f), text);
    }
    mkdirSync(join(data, 'unreadable', 'train.tsv'), { recursive: true }); // a folder where a file is expected
    mkdirSync(join(data, 'speech', 'yes'), { recursive: true });
    writeFileSync(join(data, 'bad.json'), '{"lr": 0.1,');
    writeFileSync(join(data, 'unknown.json'), '{"learning_rate": 0.1}');
    cpSync(good, join(data, 'corrupt'), { recursive: true });
    writeFileSync(join(data, 'corrupt', 'checkpoint_last.safetensors'), Buffer.from('\x08\x00\x00\x00\x00\x00\x00\x00{"a":1}'));
  };

  const cases: [string, string[], RegExp][] = [
    ['missing data', ['--task', 'text', '--data', '/nonexistent/mega'], /no such file or folder/],
    ['unreadable file', ['--task', 'text', '--data', '@/unreadable'], /train\.tsv: is a folder; expected a file/],
    ['empty data', ['--task', 'text', '--data', '@/empty'], /no examples/],
    ['label out of range', ['--task', 'text', '--data', '@/labels'], /example 2 has label 7, out of range \(expected 0\.\.1/],
    ['sequence too long', ['--task', 'text', '--data', '@/long', '--max-positions', '16'], /41 tokens, longer than the model allows \(16\)/],
    ['chunk size 0', ['--chunk-size', '0'], /--chunk-size = 0: expected -1/],
    ['chunk size the speech encoder rejects', ['--task', 'speech', '--data', '@/speech', '--max-positions', '64', '--chunk-size', '30'], /multiple/],
    ['unknown option', ['--bogus', '1'], /unknown option --bogus/],
    ['ill-typed value', ['--lr', 'fast'], /--lr = "fast": expected a number/],
    ['invalid config JSON', ['--config', '@/bad.json'], /invalid JSON/],
    ['unknown config key', ['--config', '@/unknown.json'], /unknown option "learning_rate"/],
    ['contradictory flags', ['--resume', '--overwrite'], /contradict/],
    ['arch of another task', ['--task', 'listops', '--arch', 'mega_lm_tiny'], /does not fit --task listops/],
    ['task without its data', ['--arch', 'mega_lm_tiny'], /--task lm needs --data/],
    ['unknown arch', ['--arch', 'mega_nope'], /unknown architecture/],
    ['warmup start above the peak', ['--warmup-updates', '5', '--warmup-init-lr', '1'], /warmup-init-lr/],
    ['corrupt checkpoint on --resume', ['--resume', '--save-dir', '@/corrupt'], /safetensors|checkpoint/],
  ];

  it.each(cases)('%s', async (_name, args, message) => {
    if (cases[0]![0] === _name) setup();
    const before = readFileSync(join(good, 'checkpoint_last.safetensors'));
    const argv = args.map((a) => a.replace(/^@/, data));
    if (!argv.includes('--save-dir')) argv.push('--save-dir', good, '--overwrite');
    if (argv.includes('--resume') && argv.includes('--overwrite') && !args.includes('--overwrite')) argv.splice(argv.indexOf('--overwrite'), 1);
    const r = await mega('train', ...TINY, ...argv);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    const lines = r.err.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.startsWith('mega train: ')).toBe(true);
    expect(lines[0]).toMatch(message);
    expect(readFileSync(join(good, 'checkpoint_last.safetensors')).equals(before)).toBe(true);
  });

  it('refuses to overwrite an existing run without --resume or --overwrite', async () => {
    const r = await mega('train', ...TINY, '--save-dir', good);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/already holds checkpoint_last\.safetensors: pass --resume/);
  });

  it('mega eval: corrupt or missing checkpoint', async () => {
    const c = await mega('eval', join(data, 'corrupt', 'checkpoint_last.safetensors'));
    expect(c.code).toBe(2);
    expect(c.err.trim().split('\n')).toHaveLength(1);
    const m = await mega('eval', join(root, 'nothing-here'));
    expect(m.code).toBe(2);
    expect(m.err).toMatch(/no such checkpoint/);
  });
});
