/**
 * Adaptive softmax (Grave et al. 2017; reference `fairseq/modules/adaptive_softmax.py`) and the
 * `adaptive_loss` criterion (`fairseq/criterions/adaptive_loss.py`); docs/MEGA.md
 * (language model, losses).
 *
 * With cutoffs `[c₀, c₁, …, V]` the head scores the `c₀` most frequent words plus one logit per
 * tail cluster; tail `i` scores the words `[c_i, c_{i+1})` through a low-rank path
 * `x → x·Projᵢ (→ dropout) → ·Outᵢᵀ` of width `⌊D / factor^{i+1}⌋`:
 *
 *   log p(w) = logsoftmax(head)[w]                                  for w < c₀
 *   log p(w) = logsoftmax(head)[c₀ + i] + logsoftmax(tail_i)[w − c_i]  for w in cluster i
 *
 * Tied to an {@link AdaptiveInput} (`--tie-adaptive-weights`): the head's word matrix is band 0's
 * embedding and `Outᵢ` is band `i+1`'s embedding; with `--tie-adaptive-proj` also `Projᵢ` is band
 * `i+1`'s projection (`[D, dim]`, used transposed).
 *
 * State-dict names: untied head `head.weight` `[c₀ + n, D]`; tied head `head.word_proj.weight`,
 * `head.class_proj.weight` `[n, D]`; tail `tail.i.0.weight` (projection: `[dim, D]`, or the tied
 * `[D, dim]`) and `tail.i.2.weight` (`[c_{i+1} − c_i, dim]`). The reference's `version` and
 * `_float_tensor` buffers are bookkeeping and not kept.
 */
import * as F from '../../autograd/index.js';
import { ConfigError } from '../../nn/errors.js';
import { Dropout, Linear } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { xavierUniform } from '../../nn/init.js';
import { zeros } from '../../tensor/create.js';
import type { FloatDType } from '../../tensor/dtype.js';
import { IndexError, ShapeError } from '../../tensor/errors.js';
import { defaultGenerator, type Generator } from '../../tensor/random.js';
import { fromStorage, type Tensor } from '../../tensor/tensor.js';
import { ModuleList, OutputProjection } from '../models/common.js';
import { bandDim } from './cutoff.js';
import type { AdaptiveInput } from './input.js';

/** fairseq `TiedLinear(weight, transpose=True)`: `x · W` with a shared `W` `[in, out]`. */
export class TransposedProjection extends Module {
  readonly weight: Tensor;
  constructor(weight: Tensor) {
    super();
    this.weight = this.param('weight', weight);
  }
  /** x `N × in` → `N × out`. */
  forward(x: Tensor): Tensor {
    return F.matmul(x, this.weight);
  }
}

/** `TiedHeadModule`: `[x·E₀ᵀ | x·W_clsᵀ]`. */
export class TiedHead extends Module {
  readonly word_proj: OutputProjection;
  readonly class_proj: Linear;
  constructor(wordWeight: Tensor, inputDim: number, numClasses: number, dtype: FloatDType, gen: Generator) {
    super();
    if (wordWeight.shape[1] !== inputDim) {
      throw new ConfigError(
        `adaptive softmax: tied head needs band 0 of the adaptive input to have width ` +
          `${inputDim}, got ${wordWeight.shape[1]} (decoder_input_dim must equal decoder_embed_dim)`,
      );
    }
    this.word_proj = this.child('word_proj', new OutputProjection(wordWeight));
    this.class_proj = this.child('class_proj', new Linear(inputDim, numClasses, { bias: false, init: 'xavier', dtype, gen }));
  }
  /** x `N × D` → `N × (c₀ + n)`. */
  forward(x: Tensor): Tensor {
    return F.concat([this.word_proj.forward(x), this.class_proj.forward(x)], 1);
  }
}

/** One tail cluster: `0` = projection, `1` = dropout, `2` = output (fairseq's `nn.Sequential`). */
export class AdaptiveTail extends Module {
  readonly proj: Linear | TransposedProjection;
  readonly out: OutputProjection;
  private readonly dropout: Dropout;
  constructor(proj: Linear | TransposedProjection, out: OutputProjection, p: number, gen: Generator) {
    super();
    this.proj = this.child('0', proj);
    this.dropout = this.child('1', new Dropout(p, gen));
    this.out = this.child('2', out);
  }
  /** x `N × D` → `N × size`. */
  forward(x: Tensor): Tensor {
    return this.out.forward(this.dropout.forward(this.proj.forward(x)));
  }
}

/** Options of {@link AdaptiveSoftmax}. */
export interface AdaptiveSoftmaxOptions {
  /** Dropout on the input (loss path) and inside each tail (`--adaptive-softmax-dropout`). */
  dropout?: number;
  /** Tail width divisor (`--adaptive-softmax-factor`, default 4). */
  factor?: number;
  /** Share word matrices with this adaptive input (`--tie-adaptive-weights`). */
  tiedTo?: AdaptiveInput | null;
  /** Also share the tail projections (`--tie-adaptive-proj`; needs `tiedTo`). */
  tieProj?: boolean;
  dtype?: FloatDType;
  gen?: Generator;
}

/** `AdaptiveSoftmax(V, D, cutoff, dropout, factor, adaptive_inputs, tie_proj)`. */
export class AdaptiveSoftmax extends Module {
  readonly head: Linear | TiedHead;
  readonly tail: ModuleList<AdaptiveTail>;
  /** Cluster ends `[c₀, …, V]`. */
  readonly cutoff: readonly number[];
  private readonly dropout: Dropout;

  /** @param cutoff cluster ends ending with `V` (see `parseCutoffs`) */
  constructor(
    readonly vocabSize: number,
    readonly inputDim: number,
    cutoff: readonly number[],
    opts: AdaptiveSoftmaxOptions = {},
  ) {
    super();
    const dtype = opts.dtype ?? 'f32',
      gen = opts.gen ?? defaultGenerator;
    const p = opts.dropout ?? 0,
      factor = opts.factor ?? 4,
      tied = opts.tiedTo ?? null;
    if (opts.tieProj && !tied) throw new ConfigError('adaptive softmax: --tie-adaptive-proj needs --tie-adaptive-weights');
    if (tied && tied.cutoff.join(',') !== cutoff.join(',')) {
      throw new ConfigError(
        `adaptive softmax: tied to an adaptive input with cutoffs ${tied.cutoff.join(',')} but its own are ${cutoff.join(',')} (they must be equal)`,
      );
    }
    this.cutoff = cutoff;
    const nClusters = cutoff.length - 1;
    this.dropout = this.child('dropout_module', new Dropout(p, gen));
    // every matrix the softmax owns is Xavier-uniform (the reference re-initialises them so)
    this.head = this.child(
      'head',
      tied
        ? new TiedHead(tied.weightsForBand(0).embedding, inputDim, nClusters, dtype, gen)
        : new Linear(inputDim, cutoff[0] + nClusters, { bias: false, init: 'xavier', dtype, gen }),
    );
    const tails: AdaptiveTail[] = [];
    for (let i = 0; i < nClusters; i++) {
      const dim = bandDim(inputDim, factor, i + 1, 'adaptive_softmax_factor');
      const band = tied ? tied.weightsForBand(i + 1) : null;
      let proj: Linear | TransposedProjection;
      if (band && opts.tieProj) proj = new TransposedProjection(band.proj);
      else if (band) proj = new Linear(band.proj.shape[0], band.proj.shape[1], { bias: false, init: 'xavier', dtype, gen });
      else proj = new Linear(inputDim, dim, { bias: false, init: 'xavier', dtype, gen });
      const projOut = proj instanceof Linear ? proj.outFeatures : proj.weight.shape[1];
      const out = new OutputProjection(band ? band.embedding : xavierUniform([cutoff[i + 1] - cutoff[i], dim], dtype, gen)); // size_i × dim
      if (out.weight.shape[1] !== projOut) {
        throw new ConfigError(`adaptive softmax: tail ${i} projects to width ${projOut} but its output matrix has width ${out.weight.shape[1]}`);
      }
      tails.push(new AdaptiveTail(proj, out, p, gen));
    }
    this.tail = this.child('tail', new ModuleList(tails));
  }

  /**
   * Full log-probabilities over the vocabulary (`get_log_prob` with no target): x `N × D` →
   * `N × V`. The tails' dropout acts in training mode, as in the reference; the input dropout
   * does not.
   */
  logProbs(x: Tensor): Tensor {
    checkInput(x, this.inputDim);
    const c0 = this.cutoff[0];
    const head = F.logSoftmax(this.head.forward(x), -1); // N × (c₀ + n)
    const parts = [F.narrow(head, 1, 0, c0)];
    this.tail.items.forEach((t, i) => {
      parts.push(F.add(F.logSoftmax(t.forward(x), -1), F.narrow(head, 1, c0 + i, 1))); // N × size_i
    });
    return parts.length === 1 ? parts[0] : F.concat(parts, 1);
  }

  /**
   * `log p(target)` per row (`get_log_prob` with a target, as fairseq's sequence scorer uses it):
   * x `N × D`, target `N` (i32) → `N`. Only the head and, per row, the tail of its target's
   * cluster are evaluated, `rowBatch` rows at a time (fairseq's `--softmax-batch`), so scoring a
   * long evaluation segment never holds an `N × V` matrix. No pad quirk here: every target is
   * scored.
   */
  targetLogProbs(x: Tensor, target: Tensor, rowBatch = 1024): Tensor {
    checkInput(x, this.inputDim);
    checkTarget(x, target);
    const N = x.shape[0];
    if (N > rowBatch) {
      const parts: Tensor[] = [];
      for (let at = 0; at < N; at += rowBatch) {
        const n = Math.min(rowBatch, N - at);
        parts.push(this.targetLogProbs(F.narrow(x, 0, at, n), F.narrow(target, 0, at, n), rowBatch));
      }
      return F.concat(parts, 0);
    }
    const { headTarget, rows } = this.split(target);
    const tgt = target.toTypedArray();
    const head = F.logSoftmax(this.head.forward(x), -1); // N × (c₀ + n)
    let out = F.reshape(F.gather(head, 1, fromStorage(headTarget, [N, 1])), [N]); // head term of every row
    const pieces: Tensor[] = [],
      order: number[] = [];
    this.tail.items.forEach((t, i) => {
      if (rows[i].length === 0) return;
      const idx = fromStorage(Int32Array.from(rows[i]), [rows[i].length]);
      const lp = F.logSoftmax(t.forward(F.indexSelect(x, 0, idx)), -1); // n_i × size_i
      const local = Int32Array.from(rows[i], (n) => tgt[n] - this.cutoff[i]);
      pieces.push(F.reshape(F.gather(lp, 1, fromStorage(local, [local.length, 1])), [local.length]));
      order.push(...rows[i]);
    });
    if (pieces.length === 0) return out;
    // place the tail terms at their rows: [head rows without a tail term: 0 | tail terms] permuted back
    const tails = F.concat([zeros([1], x.dtype), ...pieces], 0); // 1 + Σ n_i
    const pos = new Int32Array(N); // 0 → the zero entry
    order.forEach((n, j) => {
      pos[n] = j + 1;
    });
    out = F.add(out, F.indexSelect(tails, 0, fromStorage(pos, [N])));
    return out;
  }

  /** Head targets (cluster words → `c₀ + i`) and the rows of each cluster. */
  private split(target: Tensor): { headTarget: Int32Array; rows: number[][] } {
    const tgt = target.toTypedArray();
    const N = tgt.length,
      c0 = this.cutoff[0],
      V = this.vocabSize;
    const headTarget = new Int32Array(N);
    const rows: number[][] = this.tail.items.map(() => []);
    for (let n = 0; n < N; n++) {
      const t = tgt[n];
      if (!(t >= 0 && t < V)) throw new IndexError(`adaptive softmax: target ${t} is out of range for a vocabulary of ${V}`);
      let c = 0;
      while (t >= this.cutoff[c]) c++;
      headTarget[n] = c === 0 ? t : c0 + c - 1;
      if (c > 0) rows[c - 1].push(n);
    }
    return { headTarget, rows };
  }

  /**
   * The `adaptive_loss` criterion's summed loss: x `N × D` (dropout applied here in training),
   * target `N` (i32). Head cross-entropy with cluster words replaced by their cluster class
   * `c₀ + i`, plus per cluster the tail cross-entropy of its rows (target `w − c_i`); every term
   * ignores targets equal to `pad` — so in a tail the words `c_i + pad` count only in the head
   * (reference quirk).
   */
  loss(x: Tensor, target: Tensor, pad: number): Tensor {
    checkInput(x, this.inputDim);
    checkTarget(x, target);
    const xs = this.dropout.forward(x);
    const tgt = target.toTypedArray();
    const { headTarget, rows } = this.split(target);
    const ce = (scores: Tensor, y: Int32Array): Tensor => F.crossEntropy(scores, fromStorage(y, [y.length]), { ignoreIndex: pad, reduction: 'sum' }).loss;
    let loss = ce(this.head.forward(xs), headTarget);
    this.tail.items.forEach((t, i) => {
      if (rows[i].length === 0) return;
      const idx = Int32Array.from(rows[i]);
      const y = Int32Array.from(rows[i], (n) => tgt[n] - this.cutoff[i]);
      loss = F.add(loss, ce(t.forward(F.indexSelect(xs, 0, fromStorage(idx, [idx.length]))), y));
    });
    return loss;
  }
}

function checkTarget(x: Tensor, target: Tensor): void {
  if (target.dtype !== 'i32' || target.ndim !== 1 || target.shape[0] !== x.shape[0]) {
    throw new ShapeError(`adaptive softmax: expected an i32 target [${x.shape[0]}], got ${target.dtype} [${target.shape}]`);
  }
}

function checkInput(x: Tensor, D: number): void {
  if (x.ndim !== 2 || x.shape[1] !== D) throw new ShapeError(`adaptive softmax: expected input N × ${D}, got [${x.shape}]`);
}
