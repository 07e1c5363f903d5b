import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readSafetensors } from '../../src/io/safetensors.js';
import { readMetricsLog } from '../../src/train/metrics-log.js';
import { parseFlags, resolveTrainArgs, TRAIN_OPTIONS } from '../../src/train/args.js';
import { buildArch, resolveModelArgs } from '../../src/train/arch.js';
import { train, TrainingDivergedError } from '../../src/train/trainer.js';

const root = mkdtempSync(join(tmpdir(), 'mega-trainer-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Tiny generated-ListOps run: 48 training examples in batches of 8 (6 per epoch), dropout on. */
const BASE = {
  listops_train: 48,
  listops_valid: 16,
  listops_test: 0,
  batch_size: 8,
  layers: 1,
  embed_dim: 16,
  hidden_dim: 16,
  ffn_embed_dim: 16,
  z_dim: 8,
  n_dim: 2,
  dropout: 0.1,
  warmup_updates: 2,
  quiet: true,
};

function tensors(path: string): Record<string, Float32Array> {
  return Object.fromEntries(Object.entries(readSafetensors(path).tensors).map(([k, t]) => [k, t.data as Float32Array]));
}

function expectBitwiseEqual(a: Record<string, ArrayLike<number>>, b: Record<string, ArrayLike<number>>): void {
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  for (const k of Object.keys(a)) {
    const x = a[k]!,
      y = b[k]!;
    expect(x.length, k).toBe(y.length);
    for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) throw new Error(`${k}[${i}]: ${x[i]} != ${y[i]}`);
  }
}

describe('trainer', () => {
  it('N updates in one run == N/2 + resume + N/2, bitwise (weights, Adam moments), across epochs with update_freq 2', () => {
    const opts = { ...BASE, update_freq: 2, validate_interval_updates: 3 };
    const one = train({ ...opts, max_update: 8, save_dir: join(root, 'one') });
    const half = train({ ...opts, max_update: 4, total_num_update: 8, save_dir: join(root, 'two') });
    expect(half.updates).toBe(4);
    const two = train({ resume: true, max_update: 8, quiet: true, save_dir: join(root, 'two') });
    expect(two.updates).toBe(8);
    expect(two.updates_this_run).toBe(4);
    expect(one.epochs).toBe(3); // 16 micro-batches over 6-batch epochs
    expectBitwiseEqual(tensors(one.checkpoint!), tensors(two.checkpoint!));
    expectBitwiseEqual(tensors(join(root, 'one', 'checkpoint_last.state.safetensors')), tensors(join(root, 'two', 'checkpoint_last.state.safetensors')));
    expect(two.valid_loss).toBe(one.valid_loss);
    // the resumed log continues the first one
    const log = readMetricsLog(join(root, 'two', 'metrics.jsonl'));
    expect(log.filter((r) => r.type === 'start').map((r) => r.resumed)).toEqual([false, true]);
    expect(log.filter((r) => r.type === 'valid').map((r) => r.update)).toEqual([3, 4, 6, 8]);
  });

  it('accumulates summed losses over micro-batches and divides by the total sample size', () => {
    // one update on the same 8 examples: 8×1 and 4×2 must agree up to float summation order
    const o = { ...BASE, dropout: 0, max_update: 1, warmup_updates: 0, lr: 0.01, no_save: true };
    const a = train({ ...o, batch_size: 8, update_freq: 1, save_dir: join(root, 'acc1') });
    const b = train({ ...o, batch_size: 4, update_freq: 2, save_dir: join(root, 'acc2') });
    expect(b.train_loss!).toBeCloseTo(a.train_loss!, 5);
    expect(b.valid_loss!).toBeCloseTo(a.valid_loss!, 5);
    expect(a.checkpoint).toBeNull();
  });

  it('validates every N updates, keeps checkpoint_best, writes metrics.jsonl and the SVG curves', () => {
    const dir = join(root, 'val');
    const r = train({ ...BASE, max_update: 4, validate_interval_updates: 2, log_interval: 1, save_dir: dir });
    const log = readMetricsLog(join(dir, 'metrics.jsonl'));
    expect(log.filter((x) => x.type === 'train')).toHaveLength(4);
    expect(log.filter((x) => x.type === 'valid').map((x) => x.update)).toEqual([2, 4]);
    expect(log.at(-1)!.type).toBe('end');
    expect(existsSync(join(dir, 'checkpoint_best.safetensors'))).toBe(true);
    expect(r.best_valid!.metric).toBe('accuracy');
    const svg = readFileSync(r.plot!, 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('data-name="valid loss"');
    expect(readFileSync(join(dir, 'accuracy.svg'), 'utf8')).toContain('majority class');
  });

  it('stops on a NaN loss and leaves the last good checkpoint intact', () => {
    const dir = join(root, 'nan');
    let before: Buffer | null = null;
    let err: unknown;
    try {
      train(
        { ...BASE, max_update: 6, validate_interval_updates: 2, save_dir: dir },
        {
          hooks: {
            afterUpdate(u, model) {
              if (u !== 3) return;
              before = readFileSync(join(dir, 'checkpoint_last.safetensors'));
              (model.parameters()[0]!.storage as Float32Array).fill(NaN); // poison the weights after update 3
            },
          },
        },
      );
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TrainingDivergedError);
    const d = err as TrainingDivergedError;
    expect(d.update).toBe(4);
    expect(d.message).toMatch(/update 4: the loss is NaN; training stopped, the last good checkpoint is .*checkpoint_last\.safetensors \(update 2\)/);
    expect(d.message.includes('\n')).toBe(false);
    expect(readFileSync(join(dir, 'checkpoint_last.safetensors')).equals(before!)).toBe(true);
    expect(readSafetensors(join(dir, 'checkpoint_last.safetensors')).metadata.update).toBe('2');
    expect(readMetricsLog(join(dir, 'metrics.jsonl')).at(-1)).toMatchObject({ type: 'diverged', update: 4 });
  });
});

describe('options', () => {
  it('an arch brings its published recipe (docs/MEGA.md §8.6); flags override it', () => {
    const a = resolveTrainArgs({ arch: 'mega_lra_imdb' });
    expect(a).toMatchObject({
      task: 'text',
      lr: 4e-3,
      weight_decay: 0.01,
      batch_size: 25,
      update_freq: 2,
      max_update: 25000,
      total_num_update: 25000,
      warmup_updates: 10000,
      warmup_init_lr: 1e-7,
      clip_norm: 1,
      adam_betas: '(0.9, 0.98)',
    });
    const m = resolveModelArgs('mega_lra_listop', 'listops', resolveTrainArgs({ arch: 'mega_lra_listop', chunk_size: 128 }), 10);
    expect(m).toMatchObject({
      norm_type: 'layernorm',
      attention_activation_fn: 'softmax',
      attention_dropout: 0,
      dropout: 0.1,
      chunk_size: 128,
      encoder_embed_dim: 80,
      max_positions: 2002,
    });
    const lm = resolveModelArgs('mega_lm_tiny', 'lm', { embed_dim: 32, chunk_size: 16 });
    expect(lm).toMatchObject({ decoder_embed_dim: 32, decoder_input_dim: 32, decoder_chunk_size: 16, decoder_layers: 2 });
    const nmt = resolveModelArgs('mega_nmt_tiny', 'translation', { layers: 1, encoder_z_dim: 8 });
    expect(nmt).toMatchObject({ encoder_layers: 1, decoder_layers: 1, encoder_z_dim: 8, decoder_z_dim: 8 });
  });

  it('parses --kebab flags, --no-flags and = values; the main job has defaults for everything', () => {
    const { values } = parseFlags(['--lr=0.01', '--update-freq', '4', '--no-normalize-before', '--adam-betas', '(0.9, 0.99)'], TRAIN_OPTIONS, 'train');
    expect(values).toEqual({ lr: 0.01, update_freq: 4, normalize_before: false, adam_betas: '(0.9, 0.99)' });
    const d = resolveTrainArgs({});
    expect(d).toMatchObject({ task: 'listops', arch: 'mega_lra_listop_tiny', seed: 1, save_dir: 'checkpoints', lr_scheduler: 'linear_decay' });
    expect(resolveTrainArgs({ warmup_updates: 0 }).warmup_init_lr).toBe(-1);
  });

  it('buildArch gives reference parameter counts (mega info --arch)', () => {
    expect(buildArch('mega_sc_raw_big').numParameters()).toBe(475890);
    expect(buildArch('mega_lra_listop_tiny').numParameters()).toBeGreaterThan(10000);
  });
});
