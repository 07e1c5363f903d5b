/**
 * Planning timings for docs/REPRODUCE.md: for each row of the release's result tables, the model
 * of its recipe (the arch with the README's model flags) on one synthetic micro-batch of the
 * recipe's sequence length, timed for one training step (forward, backward, clip, Adam) and one
 * evaluation forward. The micro-batch holds `micro` examples (1 or 2, to stay within this machine's
 * memory); the time of one recipe update is extrapolated linearly to the recipe's examples (or
 * tokens) per update.
 *
 * `node --expose-gc dist/bench/recipes.js [--row NAME] [--json]` (after `npm run build`).
 */
import { backward, noGrad } from '../src/autograd/engine.js';
import type { MegaLanguageModel } from '../src/mega/models/lm.js';
import { lraCrossEntropy, type LRAModel } from '../src/mega/models/lra.js';
import { labelSmoothedCrossEntropy, type MegaModel } from '../src/mega/models/nmt.js';
import type { SCRawModel } from '../src/mega/models/speech.js';
import type { Module } from '../src/nn/module.js';
import { fromStorage, type Tensor } from '../src/tensor/tensor.js';
import { buildFromModelArgs, resolveModelArgs } from '../src/train/arch.js';
import type { TaskName } from '../src/train/args.js';
import { Adam, clipGradNorm } from '../src/train/optim.js';

/** One row of the release's tables. */
interface Row {
  name: string;
  arch: string;
  task: TaskName;
  /** The README's model flags. */
  flags: Record<string, unknown>;
  /** Sequence length of one example (LM / MT: tokens of one sequence). */
  L: number;
  /** Examples of the timed micro-batch. */
  micro: number;
  /** Examples (or sequences) per recipe update, over all of the recipe's GPUs. */
  perUpdate: number;
  /** What `perUpdate` counts. */
  unit: string;
  vocab?: number;
  classes?: number;
  /** Time the evaluation forward only (the training step does not fit this machine's memory). */
  evalOnly?: boolean;
}

const LRA = { activation_fn: 'silu', n_dim: 16 };
const ROWS: Row[] = [
  {
    name: 'ListOps',
    arch: 'mega_lra_listop',
    task: 'listops',
    flags: { ...LRA, encoder_layers: 6, norm_type: 'layernorm', attention_activation_fn: 'softmax' },
    L: 2000,
    micro: 2,
    perUpdate: 64,
    unit: 'examples (batch 64)',
    vocab: 25,
    classes: 10,
  },
  {
    name: 'Text (IMDB)',
    arch: 'mega_lra_imdb',
    task: 'text',
    flags: { ...LRA, encoder_layers: 4, norm_type: 'scalenorm', attention_activation_fn: 'softmax' },
    L: 4000,
    micro: 1,
    perUpdate: 50,
    unit: 'examples (batch 25 x update-freq 2)',
    vocab: 261,
    classes: 2,
  },
  {
    name: 'Retrieval (AAN)',
    arch: 'mega_lra_aan',
    task: 'retrieval',
    flags: { ...LRA, encoder_layers: 6, norm_type: 'scalenorm', attention_activation_fn: 'softmax' },
    L: 4000,
    micro: 1,
    perUpdate: 64,
    unit: 'document pairs (batch 8 x update-freq 8)',
    vocab: 261,
    classes: 2,
  },
  {
    name: 'Image (CIFAR-10)',
    arch: 'mega_lra_cifar10',
    task: 'image',
    flags: { ...LRA, encoder_layers: 8, norm_type: 'batchnorm', normalize_before: true, attention_activation_fn: 'laplace' },
    L: 1024,
    micro: 2,
    perUpdate: 50,
    unit: 'images (batch 50)',
    classes: 10,
  },
  {
    name: 'Pathfinder',
    arch: 'mega_lra_pf32',
    task: 'image',
    flags: { ...LRA, encoder_layers: 6, norm_type: 'batchnorm', normalize_before: true, attention_activation_fn: 'laplace' },
    L: 1024,
    micro: 2,
    perUpdate: 128,
    unit: 'images (batch 128)',
    classes: 2,
  },
  // Path-X: --chunk-size 1024 (the README leaves $CHUNK to the user; unchunked attention at 16384 needs ~1 GB per attention map)
  {
    name: 'Path-X',
    arch: 'mega_lra_pf128',
    task: 'image',
    flags: { ...LRA, encoder_layers: 4, chunk_size: 1024, norm_type: 'batchnorm', normalize_before: true, attention_activation_fn: 'laplace' },
    L: 16384,
    micro: 1,
    perUpdate: 16,
    unit: 'images (batch 2 x update-freq 8)',
    classes: 2,
  },
  {
    name: 'WMT16 en-de',
    arch: 'mega_wmt_en_de',
    task: 'translation',
    flags: { activation_fn: 'silu', encoder_n_dim: 16, encoder_chunk_size: -1, truncation_length: 0 },
    L: 32,
    micro: 8,
    perUpdate: 2048,
    unit: 'sentence pairs of 32 tokens (8 GPUs x --max-tokens 8192)',
    vocab: 32768,
  },
  // WikiText-103: 252M parameters; with its gradients and Adam state a training step needs ~4 GB more than this shared machine had free
  {
    name: 'WikiText-103',
    arch: 'mega_lm_adaptive_big',
    task: 'lm',
    flags: {
      activation_fn: 'silu',
      decoder_n_dim: 16,
      decoder_chunk_size: 1024,
      truncation_length: 8192,
      rel_pos_bias: 'rotary',
      normalize_before: true,
      no_affine_final_norm: true,
      decoder_hidden_dim: 2048,
    },
    L: 2048,
    micro: 1,
    perUpdate: 72,
    unit: 'blocks of 2048 tokens (24 GPUs x --max-tokens 6144)',
    vocab: 267744,
    evalOnly: true,
  },
  {
    name: 'enwik8',
    arch: 'mega_lm_enwik8_base',
    task: 'lm',
    flags: {
      activation_fn: 'silu',
      decoder_n_dim: 16,
      decoder_chunk_size: 2048,
      truncation_length: 8192,
      rel_pos_bias: 'rotary',
      normalize_before: true,
      no_affine_final_norm: true,
    },
    L: 2048,
    micro: 1,
    perUpdate: 32,
    unit: 'blocks of 2048 bytes (8 GPUs x --max-tokens 8192)',
    vocab: 208,
  },
  {
    name: 'Speech Commands (SC-Raw)',
    arch: 'mega_sc_raw_base',
    task: 'speech',
    flags: {},
    L: 16000,
    micro: 1,
    perUpdate: 20,
    unit: 'clips (batch 20)',
    classes: 10,
  },
];

function ints(n: number, lo: number, hi: number, seed: number): Int32Array {
  const a = new Int32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = lo + (s % (hi - lo));
  }
  return a;
}

function floats(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  ints(n, 0, 256, seed).forEach((v, i) => (a[i] = (v / 255 - 0.5) / 0.5));
  return a;
}

/** The summed loss of one synthetic micro-batch of the row. */
function lossOf(row: Row, model: Module): Tensor {
  const B = row.micro,
    L = row.L,
    V = row.vocab ?? 0;
  const tok = (seed: number): Tensor => fromStorage(ints(B * L, 4, V, seed), [B, L]);
  const labels = fromStorage(ints(B, 0, row.classes ?? 2, 7), [B]);
  const lengths = fromStorage(new Int32Array(B).fill(L), [B]);
  switch (row.task) {
    case 'lm': {
      return (model as MegaLanguageModel).criterionLoss(tok(1), tok(2)); // cross_entropy, or adaptive_loss
    }
    case 'translation': {
      const m = model as MegaModel;
      return labelSmoothedCrossEntropy(m.forward(tok(1), tok(2)).logits, tok(3), 0.1, 1).loss;
    }
    case 'speech':
      return lraCrossEntropy((model as SCRawModel).forward(fromStorage(floats(B * L, 1), [B, L])), labels);
    case 'image':
      return lraCrossEntropy((model as LRAModel).forward(fromStorage(floats(B * L, 1), [B, L]), lengths), labels);
    default: {
      const m = model as LRAModel;
      const second = row.task === 'retrieval' ? { srcTokens: tok(5), srcLengths: lengths } : undefined;
      return lraCrossEntropy(m.forward(tok(1), lengths, second), labels);
    }
  }
}

/** Times one row: one training step and one evaluation forward of the micro-batch (ms). */
export function timeRow(row: Row): { train_ms: number; eval_ms: number; train_cpu_ms: number; eval_cpu_ms: number; parameters: number } {
  const modelArgs = resolveModelArgs(row.arch, row.task, row.flags, row.classes);
  const taskInfo = row.vocab ? { dictionary_size: row.vocab, pad: 1 } : null;
  const model = buildFromModelArgs(modelArgs, taskInfo);
  const params = [...model.parameters()];
  const adam = row.evalOnly ? null : new Adam(params, { lr: 1e-3, betas: [0.9, 0.98], eps: 1e-8, weightDecay: 0.01 });
  const cpu = (c: NodeJS.CpuUsage): number => (c.user + c.system) / 1000;
  let train = NaN,
    trainCpu = NaN;
  let t = performance.now(),
    c = process.cpuUsage();
  if (!row.evalOnly) {
    model.train();
    backward(lossOf(row, model));
    clipGradNorm(params, 1);
    adam!.step();
    train = performance.now() - t;
    trainCpu = cpu(process.cpuUsage(c));
  }
  model.eval();
  t = performance.now();
  c = process.cpuUsage();
  noGrad(() => lossOf(row, model));
  const evalMs = performance.now() - t,
    evalCpu = cpu(process.cpuUsage(c));
  return { train_ms: train, eval_ms: evalMs, train_cpu_ms: trainCpu, eval_cpu_ms: evalCpu, parameters: model.numParameters() };
}

function main(): void {
  const argv = process.argv.slice(2);
  const only = argv.includes('--row') ? argv[argv.indexOf('--row') + 1] : undefined;
  for (const row of ROWS) {
    if (only && !row.name.toLowerCase().includes(only.toLowerCase())) continue;
    const r = timeRow(row);
    const perEx = r.train_ms / row.micro;
    const rec = {
      row: row.name,
      arch: row.arch,
      parameters: r.parameters,
      length: row.L,
      micro_batch: row.micro,
      train_step_ms: Math.round(r.train_ms),
      eval_forward_ms: Math.round(r.eval_ms),
      train_step_cpu_ms: Math.round(r.train_cpu_ms),
      eval_forward_cpu_ms: Math.round(r.eval_cpu_ms),
      update_estimate_s: Math.round((perEx * row.perUpdate) / 100) / 10,
      per_update: `${row.perUpdate} ${row.unit}`,
    };
    if (argv.includes('--json')) process.stdout.write(`${JSON.stringify(rec)}\n`);
    else
      process.stdout.write(
        `${row.name}: ${r.parameters} parameters; one step of ${row.micro} x ${row.L}: train ${rec.train_step_ms} ms (CPU ${rec.train_step_cpu_ms} ` +
          `ms), eval ${rec.eval_forward_ms} ms (CPU ${rec.eval_forward_cpu_ms} ms); one recipe update (${rec.per_update}) ~ ${rec.update_estimate_s} s\n`,
      );
  }
}

main();
