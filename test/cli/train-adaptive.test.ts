/**
 * `mega train --task lm --arch mega_lm_adaptive_tiny`: the adaptive-input / adaptive-softmax LM
 * trains (adaptive_loss), its loss falls well below where it starts and below a uniform guess
 * over the byte vocabulary, and `mega eval` of the checkpoint reproduces the logged validation loss.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { readMetricsLog } from '../../src/train/metrics-log.js';
import { train } from '../../src/train/trainer.js';

const root = mkdtempSync(join(tmpdir(), 'mega-adaptive-train-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let stdout: string[] = [];
let stderr: string[] = [];
beforeEach(() => {
  stdout = [];
  stderr = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (stdout.push(String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (stderr.push(String(s)), true));
});
afterEach(() => vi.restoreAllMocks());

/** 400 lines of 5–12 words from a 22-word vocabulary (a fixed LCG, so the file is always the same). */
function corpus(): string {
  const words = 'the quick brown fox jumps over lazy dog and a cat sat on mat while birds sing in trees near river bank'.split(' ');
  let s = 12345;
  const next = (n: number): number => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s % n;
  };
  const lines: string[] = [];
  for (let i = 0; i < 400; i++) lines.push(Array.from({ length: 5 + next(8) }, () => words[next(words.length)]).join(' '));
  return lines.join('\n') + '\n';
}

describe('mega train with adaptive input + adaptive softmax', () => {
  it('the loss goes down: last updates far below the first, validation below a uniform guess; mega eval agrees', async () => {
    const data = join(root, 'text.txt');
    writeFileSync(data, corpus());
    const save = join(root, 'save');
    const code = await main([
      'train',
      '--task',
      'lm',
      '--arch',
      'mega_lm_adaptive_tiny',
      '--data',
      data,
      '--max-update',
      '24',
      '--batch-size',
      '8',
      '--tokens-per-sample',
      '64',
      '--warmup-updates',
      '4',
      '--lr',
      '0.005',
      '--log-interval',
      '1',
      '--validate-interval-updates',
      '24',
      '--save-dir',
      save,
      '--quiet',
    ]);
    expect(code, stdout.join('')).toBe(0);
    const ck = readSafetensors(join(save, 'checkpoint_last.safetensors'));
    expect(Object.keys(ck.tensors)).toContain('decoder.adaptive_softmax.head.class_proj.weight');
    expect(Object.keys(ck.tensors)).toContain('decoder.embed_tokens.embeddings.2.0.weight');
    const log = readMetricsLog(join(save, 'metrics.jsonl'));
    const train = log.filter((r) => r.type === 'train').map((r) => r.loss as number);
    expect(train).toHaveLength(24);
    const first = train[0],
      last = train.slice(-4).reduce((a, b) => a + b, 0) / 4;
    expect(last, `losses ${train.map((x) => x.toFixed(2)).join(' ')}`).toBeLessThan(0.5 * first);
    const valid = log.filter((r) => r.type === 'valid');
    expect(valid).toHaveLength(1);
    const vloss = valid[0].loss as number;
    expect(vloss).toBeLessThan(0.6 * Math.log2(260)); // bits per byte, uniform over the byte vocabulary = 8.02
    // evaluation of the saved checkpoint (adaptive_loss on the valid split) reproduces it
    stdout = [];
    expect(await main(['eval', join(save, 'checkpoint_last.safetensors'), '--json'])).toBe(0);
    const j = JSON.parse(stdout.join('').trim().split('\n').at(-1)!);
    expect(j.loss).toBeCloseTo(vloss, 4);
  }, 60_000);

  it('--criterion picks the loss: cross_entropy scores the full log-probs (the "m" = 113 = 112 + pad targets keep their tail term), unknown names fail', () => {
    const data = join(root, 'crit.txt');
    writeFileSync(data, corpus());
    const run = (criterion: string) =>
      train({
        task: 'lm',
        arch: 'mega_lm_adaptive_tiny',
        data,
        criterion,
        dropout: 0,
        adaptive_softmax_dropout: 0,
        max_update: 1,
        batch_size: 8,
        tokens_per_sample: 64,
        no_save: true,
        quiet: true,
        save_dir: join(root, `crit-${criterion}`),
      });
    const ad = run('adaptive_loss').train_loss!,
      ce = run('cross_entropy').train_loss!;
    // same seed, same model and batch, no dropout: the criteria differ exactly by the dropped tail terms (all > 0)
    expect(ce).toBeGreaterThan(ad);
    expect(ce - ad).toBeLessThan(0.5 * ad);
    expect(() => run('label_smoothed_cross_entropy')).toThrow(/--criterion label_smoothed_cross_entropy.*cross_entropy or adaptive_loss/);
  });

  it("fairseq's adaptive flags turn a plain LM arch into an adaptive one (--adaptive-input, cutoffs, factors, tying, --criterion adaptive_loss)", async () => {
    const data = join(root, 'flags.txt');
    writeFileSync(data, corpus());
    const save = join(root, 'flags');
    const code = await main([
      'train',
      '--task',
      'language_modeling',
      '--arch',
      'mega_lm_tiny',
      '--data',
      data,
      '--max-update',
      '1',
      '--batch-size',
      '8',
      '--tokens-per-sample',
      '64',
      '--save-dir',
      save,
      '--quiet',
      '--adaptive-input',
      '--adaptive-input-cutoff',
      '64,112',
      '--adaptive-softmax-cutoff',
      '64,112',
      '--tie-adaptive-weights',
      '--tie-adaptive-proj',
      '--adaptive-input-factor',
      '2',
      '--adaptive-softmax-factor',
      '2',
      '--criterion',
      'adaptive_loss',
    ]);
    expect(code, stderr.join('')).toBe(0);
    const t = readSafetensors(join(save, 'checkpoint_last.safetensors')).tensors;
    const shape = (k: string) => t[k]?.shape;
    expect(shape('decoder.embed_tokens.embeddings.1.0.weight')).toEqual([48, 32]); // ids 64..111, width 64 / 2
    expect(shape('decoder.embed_tokens.embeddings.2.0.weight')).toEqual([148, 16]); // ids 112..259, width 64 / 4
    expect(shape('decoder.adaptive_softmax.tail.1.0.weight')).toEqual([64, 16]); // the tied projection [D, dim]
    expect(Array.from(t['decoder.adaptive_softmax.tail.1.2.weight'].data)).toEqual(Array.from(t['decoder.embed_tokens.embeddings.2.0.weight'].data));
    expect(shape('decoder.output_projection.weight')).toBeUndefined();
  });

  it('the WikiText-103 arch on the byte vocabulary: one line naming the cutoff and the vocabulary, exit 2, nothing written', async () => {
    const data = join(root, 'small.txt');
    writeFileSync(data, corpus());
    const save = join(root, 'big');
    expect(await main(['train', '--task', 'lm', '--arch', 'mega_lm_adaptive_big', '--data', data, '--save-dir', save, '--max-update', '1'])).toBe(2);
    const msg = stderr.join('').trim();
    expect(msg.split('\n')).toHaveLength(1);
    expect(msg).toMatch(/adaptive_input_cutoff = "20000,60000": cutoff 60000 is larger than the vocabulary \(260 symbols\)/);
    expect(existsSync(save)).toBe(false);
  });
});
