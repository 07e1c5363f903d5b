/**
 * Whole training-step benchmark: forward, summed loss (read, as the trainer does), backward,
 * gradients × 1/sample_size, global-norm clipping, fairseq Adam, batching — the step of
 * `mega train` (src/train/trainer.ts) on generated data, against a PyTorch baseline of the same
 * model, optimizer and step order (bench/torch_train.py, Debian's python3-torch, all cores).
 *
 * Cases (`train/<impl>/f32/<B>x<L>` with impl `mega-ts` / `pytorch`; mega-ts rows carry the
 * steps/s ratio, `train-mem` rows peak RSS in MiB with the memory ratio):
 * - `image`: `mega_lra_image_tiny` (2 layers, D 32, H 64, FFN 64, Z 16, N 8, batchnorm pre-norm,
 *   laplace attention), chunk 112, pixel sequences of 784, batch 32;
 * - `listops`: the main job's model `mega_lra_listop_tiny` on generated ListOps, batch 32;
 * - `lm`: `mega_lm_tiny`, blocks of 128 bytes, batch 8;
 * - `nmt`: `mega_nmt_tiny`, byte sequences of 20–40 tokens each side, batch 16.
 * Every measurement runs in its own process (clean peak RSS); the two sides alternate,
 * `MEGA_BENCH_TRAIN_REPS` rounds (default 3), and the figures are medians over the rounds; the
 * ratio is the median of the per-round ratios. Both sides use the bench's thread count (impl
 * suffix `-t<n>`); `MEGA_BENCH_TRAIN_THREADS=1` or `=2,1` runs other counts — on a machine
 * shared with other work, PyTorch's OpenMP threads spin at barriers and collapse (measured here:
 * 70× slower with 2 threads than 1 under load), so there only `-t1` compares the libraries.
 * `train-cpu` rows: median CPU time per step (user + system, every thread of the process) and
 * its ratio PyTorch / mega-ts — less disturbed by other processes than wall time.
 * mega-ts runs as `mega train` does (with its malloc settings, src/cli/malloc.ts); PyTorch with
 * its defaults. `MEGA_BENCH_MALLOC=system` runs mega-ts with the system defaults too.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { backward } from '../src/autograd/engine.js';
import { MALLOC_ENV } from '../src/cli/malloc.js';
import { ArrayDataset, Batcher, type Batch, type Example } from '../src/data/batch.js';
import type { Module } from '../src/nn/module.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { BYTE_VOCAB_SIZE } from '../src/data/vocab.js';
import { binary } from '../src/tensor/kernels.js';
import { getNumThreads } from '../src/tensor/backends/cpu/pool.js';
import { manualSeed, defaultGenerator } from '../src/tensor/random.js';
import { scalar } from '../src/tensor/create.js';
import { resolveTrainArgs, type TaskName } from '../src/train/args.js';
import { buildFromModelArgs, resolveModelArgs } from '../src/train/arch.js';
import { Adam, clipGradNorm, parseBetas } from '../src/train/optim.js';
import { stepRoots } from '../src/train/trainer.js';
import { residentScope } from '../src/tensor/backends/cpu/resident.js';
import { getTask } from '../src/train/tasks/index.js';
import { caseId, note, report, selected, type BenchOptions } from './report.js';
import { timeMedian } from './timing.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** One benchmark configuration: the user's options to `mega train` and the generated data. */
interface TrainCase {
  name: string;
  user: Record<string, unknown>;
  /** Source length (image pixels, LM block, NMT source max); listops: from the generated data. */
  L: number;
  /** NMT target max length. */
  T?: number;
}

const CASES: TrainCase[] = [
  { name: 'image', user: { task: 'image', chunk_size: 112, num_classes: 10 }, L: 784 },
  { name: 'listops', user: { task: 'listops' }, L: 0 },
  { name: 'lm', user: { task: 'lm' }, L: 128 },
  { name: 'nmt', user: { task: 'translation' }, L: 40, T: 40 },
];

/** Deterministic integers in [lo, hi) (a 32-bit LCG: the data only needs a shape). */
function lcg(seed: number): (lo: number, hi: number) => number {
  let s = seed >>> 0;
  return (lo, hi) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (s % (hi - lo));
  };
}

/** Generated examples of a case (listops: the task's own generated ListOps). */
function examples(
  c: TrainCase,
  args: Record<string, unknown>,
  modelArgs: Record<string, unknown>,
): { data: Example[]; taskInfo: Record<string, unknown> | null } {
  const r = lcg(7);
  const bytes = (n: number) => Int32Array.from({ length: n }, () => r(4, BYTE_VOCAB_SIZE));
  const byteInfo = { dictionary_size: BYTE_VOCAB_SIZE, pad: 1 };
  const n = 256;
  switch (c.name) {
    case 'image':
      return {
        data: Array.from({ length: n }, () => ({ values: Float32Array.from({ length: c.L }, () => r(0, 256) / 127.5 - 1), label: r(0, 10) })),
        taskInfo: null,
      };
    case 'lm':
      return {
        data: Array.from({ length: n }, () => {
          const t = bytes(c.L + 1);
          t[0] = 2;
          return { tokens: t.slice(0, c.L), target: t.slice(1) };
        }),
        taskInfo: byteInfo,
      };
    case 'nmt':
      return {
        data: Array.from({ length: n }, () => {
          const y = bytes(r(c.T! / 2, c.T! + 1));
          const prev = new Int32Array(y.length);
          prev[0] = 2;
          prev.set(y.subarray(0, y.length - 1), 1);
          return { tokens: bytes(r(c.L / 2, c.L + 1)), prevOutputTokens: prev, target: y };
        }),
        taskInfo: byteInfo,
      };
    default: {
      const d = getTask('listops').load(args, ['train'], modelArgs);
      return { data: (d.splits.train as ArrayDataset<Example>).examples.slice(), taskInfo: (d.taskInfo ?? null) as Record<string, unknown> | null };
    }
  }
}

/** The resolved options, model arguments, data and batcher of a case (as `mega train` resolves them). */
function setup(c: TrainCase) {
  const args = resolveTrainArgs({ ...c.user, no_save: true }) as unknown as Record<string, unknown>;
  const task = getTask(args.task as TaskName);
  const modelArgs = resolveModelArgs(
    args.arch as string,
    args.task as TaskName,
    args,
    (c.user.num_classes as number | undefined) ?? (task.numClasses ? 10 : undefined),
  );
  const { data, taskInfo } = examples(c, args, modelArgs);
  const batcher = new Batcher(new ArrayDataset(data, c.name), { batchSize: args.batch_size as number, seed: 1 });
  return { args, task, modelArgs, taskInfo, batcher };
}

/**
 * One case's model, parameters and `step()` — the body of `TrainRun.update` (update_freq 1, one
 * process) in its resident scope, as `mega train` runs it (`resident: false`: without). The step
 * returns its loss.
 */
export function trainStepOf(name: string, { resident = true } = {}): { step: () => number; params: Tensor[]; model: Module } {
  const c = CASES.find((x) => x.name === name);
  if (!c) throw new Error(`train bench: no case ${name} (${CASES.map((x) => x.name).join(', ')})`);
  const { args, task, modelArgs, taskInfo, batcher } = setup(c);
  manualSeed(1);
  const model = buildFromModelArgs(modelArgs, taskInfo as never, defaultGenerator);
  const params = model.parameters();
  const optimizer = new Adam(params, {
    lr: args.lr as number,
    betas: parseBetas(args.adam_betas as string),
    eps: args.adam_eps as number,
    weightDecay: args.weight_decay as number,
  });
  const body = () => {
    optimizer.zeroGrad();
    const batch: Batch = batcher.next();
    const out = task.forward(model, batch, args as never);
    const loss = out.loss.item();
    backward(out.loss);
    const s = scalar(1 / out.sampleSize, 'f32');
    for (const t of params) if (t.grad) t.grad = binary(t.grad, s, 'mul');
    clipGradNorm(params, args.clip_norm as number);
    optimizer.step();
    return loss;
  };
  const owner = {};
  const step = resident ? () => residentScope(owner, body, () => stepRoots(model, params)) : body;
  return { step, params, model };
}

/** Child-process entry: `--train-child NAME` times mega-ts's step; prints `{ms, cpuMs, maxRssMiB}`. */
export function trainChild(name: string): void {
  const { step } = trainStepOf(name);
  const cpu: number[] = [];
  const timed = () => {
    const c0 = process.cpuUsage();
    step();
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  };
  const ms = timeMedian(timed, { warmup: 2, warmupMs: 500, minReps: 5, maxReps: 15, maxMs: 8000 });
  const cpuMs = median(cpu.slice(-5));
  process.stdout.write(JSON.stringify({ ms, cpuMs, maxRssMiB: process.resourceUsage().maxRSS / 1024 }) + '\n');
}

/** The PyTorch config of a case, from the same resolved model arguments. */
function torchConfig(c: TrainCase): Record<string, unknown> {
  const { args, modelArgs: m, batcher } = setup(c);
  const num = (k: string, d = 0) => (typeof m[k] === 'number' ? (m[k] as number) : d);
  const B = args.batch_size as number;
  const common = { B, clip: args.clip_norm, wd: args.weight_decay, lr: args.lr, label_smoothing: args.label_smoothing, min_steps: 5, steps: 15, max_s: 8 };
  if (c.name === 'image' || c.name === 'listops') {
    let L = c.L,
      padFrac = 0;
    if (c.name === 'listops') {
      // the mean padded batch length and padding fraction of the generated data
      let sumL = 0,
        sumTok = 0;
      const n = 20;
      for (let i = 0; i < n; i++) {
        const b = batcher.next();
        sumL += b.L;
        sumTok += b.ntokens / (b.B * b.L);
      }
      L = Math.round(sumL / n);
      padFrac = 2 * (1 - sumTok / n);
    }
    return {
      ...common,
      kind: 'lra',
      input: c.name === 'image' ? 'image' : 'text',
      L,
      pad_frac: padFrac,
      layers: num('encoder_layers'),
      D: num('encoder_embed_dim'),
      H: num('encoder_hidden_dim'),
      F: num('encoder_ffn_embed_dim'),
      Z: num('z_dim'),
      N: num('n_dim', 16),
      chunk: num('chunk_size', -1),
      norm: m.norm_type,
      prenorm: m.encoder_normalize_before === true,
      attn: m.attention_activation_fn ?? 'softmax',
      dropout: num('dropout'),
      attention_dropout: num('attention_dropout'),
      hidden_dropout: num('act_dropout'),
      classifier_out_dim: num('classifier_out_dim'),
      classes: num('sentence_class_num', 10),
      vocab: c.name === 'listops' ? 20 : 0,
      max_positions: num('max_positions'),
    };
  }
  const p = c.name === 'lm' ? 'decoder' : 'encoder';
  return {
    ...common,
    kind: c.name,
    L: c.L,
    T: c.T ?? 0,
    pad_frac: c.name === 'nmt' ? 0.5 : 0,
    layers: num(`${p}_layers`),
    D: num(`${p}_embed_dim`),
    H: num(`${p}_hidden_dim`),
    F: num(`${p}_ffn_embed_dim`),
    Z: num(`${p}_z_dim`),
    N: num(`${p}_n_dim`, 16),
    chunk: num(`${p}_chunk_size`, -1),
    norm: m.normalization_type ?? 'layernorm',
    prenorm: m.normalize_before === true,
    attn: m.attention_activation_fn ?? 'softmax',
    dropout: num('dropout'),
    attention_dropout: num('attention_dropout'),
    hidden_dropout: num('hidden_dropout'),
    activation_dropout: num('activation_dropout'),
    vocab: BYTE_VOCAB_SIZE,
    final_norm_affine: m.no_affine_final_norm !== true,
    max_positions: c.name === 'lm' ? num('max_target_positions', 1024) : Math.max(num('max_source_positions', 1024), num('max_target_positions', 1024)),
  };
}

/** Median wall ms per step, median CPU ms per step (all threads of the process), peak RSS. */
interface Measured {
  ms: number;
  cpuMs: number;
  maxRssMiB: number;
}

function runMega(name: string, threads: number): Measured | undefined {
  const entry = fileURLToPath(import.meta.url).replace(/train\.js$/, 'run.js');
  const malloc = (process.env.MEGA_BENCH_MALLOC ?? '') === 'system' ? {} : MALLOC_ENV;
  const r = spawnSync(process.execPath, ['--expose-gc', entry, '--train-child', name], {
    encoding: 'utf8',
    env: { ...process.env, MEGA_THREADS: String(threads), ...malloc },
    timeout: 5 * 60_000,
    maxBuffer: 1 << 20,
  });
  const line = r.stdout?.split('\n').find((x) => x.startsWith('{'));
  if (r.status !== 0 || !line) {
    note(`train ${name}: mega-ts child failed: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-3).join(' ')}`);
    return undefined;
  }
  return JSON.parse(line) as Measured;
}

function runTorch(cfg: Record<string, unknown>, threads: number): Measured | undefined {
  const py = process.env.MEGA_PYTHON ?? '/usr/bin/python3';
  const script = [path.join(here, '..', '..', 'bench', 'torch_train.py'), path.join(here, 'torch_train.py')].find((p) => existsSync(p));
  if (!script) return undefined;
  const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) };
  for (const k of Object.keys(MALLOC_ENV)) delete env[k];
  const r = spawnSync(py, [script, JSON.stringify(cfg), '--threads', String(threads)], { env, encoding: 'utf8', timeout: 5 * 60_000 });
  const line = r.stdout?.split('\n').find((x) => x.startsWith('{'));
  if (r.status !== 0 || !line) {
    note(`train: pytorch baseline unavailable (${py}): ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-2).join(' ')}`);
    return undefined;
  }
  const o = JSON.parse(line) as { ms: number; cpu_ms: number; max_rss_mib: number };
  return { ms: o.ms, cpuMs: o.cpu_ms, maxRssMiB: o.max_rss_mib };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Run the training-step benchmarks. */
export async function runTrainBench(opts: BenchOptions): Promise<void> {
  const reps = Number(process.env.MEGA_BENCH_TRAIN_REPS ?? 3);
  const threadList = (process.env.MEGA_BENCH_TRAIN_THREADS ?? String(getNumThreads())).split(',').map(Number);
  for (const threads of threadList)
    for (const c of CASES) {
      const cfg = torchConfig(c);
      const shape = [cfg.B as number, cfg.L as number];
      const wantMega = selected(opts, caseId('train', `mega-ts-${c.name}-t${threads}`, 'f32', shape));
      const wantTorch = selected(opts, caseId('train', `pytorch-${c.name}-t${threads}`, 'f32', shape));
      if (!wantMega && !wantTorch) continue;
      note(`train ${c.name}: ${JSON.stringify(cfg)}; ${threads} thread(s), ${reps} alternating rounds, medians`);
      const mega: Measured[] = [],
        torch: Measured[] = [];
      for (let i = 0; i < reps; i++) {
        const a = wantMega ? runMega(c.name, threads) : undefined;
        if (a) mega.push(a);
        const b = wantTorch ? runTorch(cfg, threads) : undefined;
        if (b) torch.push(b);
      }
      const side = (impl: string, ms: Measured[]) =>
        ms.length === 0
          ? undefined
          : {
              sps: median(ms.map((m) => 1000 / m.ms)),
              rss: median(ms.map((m) => m.maxRssMiB)),
              impl,
            };
      const t = side(`pytorch-${c.name}-t${threads}`, torch),
        m = side(`mega-ts-${c.name}-t${threads}`, mega);
      // per-round ratios (same round = closest in time), then their median
      const pairs = Math.min(mega.length, torch.length);
      const ratio = pairs ? median(Array.from({ length: pairs }, (_, i) => torch[i].ms / mega[i].ms)) : undefined;
      const cpuRatio = pairs ? median(Array.from({ length: pairs }, (_, i) => torch[i].cpuMs / mega[i].cpuMs)) : undefined;
      const memRatio = pairs ? median(Array.from({ length: pairs }, (_, i) => mega[i].maxRssMiB / torch[i].maxRssMiB)) : undefined;
      if (t) {
        report({ bench: 'train', impl: t.impl, dtype: 'f32', shape, value: t.sps, unit: 'steps/s' });
        report({ bench: 'train-cpu', impl: t.impl, dtype: 'f32', shape, value: median(torch.map((x) => x.cpuMs)), unit: 'cpu-ms' });
        report({ bench: 'train-mem', impl: t.impl, dtype: 'f32', shape, value: t.rss, unit: 'MiB' });
      }
      if (m) {
        report({
          bench: 'train',
          impl: m.impl,
          dtype: 'f32',
          shape,
          value: m.sps,
          unit: 'steps/s',
          ...(ratio !== undefined ? { ratio, baseline: t!.impl } : {}),
        });
        report({
          bench: 'train-cpu',
          impl: m.impl,
          dtype: 'f32',
          shape,
          value: median(mega.map((x) => x.cpuMs)),
          unit: 'cpu-ms',
          ...(cpuRatio !== undefined ? { ratio: cpuRatio, baseline: t!.impl } : {}),
        });
        report({
          bench: 'train-mem',
          impl: m.impl,
          dtype: 'f32',
          shape,
          value: m.rss,
          unit: 'MiB',
          ...(memRatio !== undefined ? { ratio: memRatio, baseline: t!.impl } : {}),
        });
      }
    }
}
