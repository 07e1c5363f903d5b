/**
 * Adaptive input (Baevski & Auli 2019; reference `fairseq/modules/adaptive_input.py`), the token
 * embedding of the WikiText-103 LM (docs/MEGA.md, language model).
 *
 * The vocabulary is split into bands by the cutoffs `[c₀, c₁, …, V]`. Band `i` owns an embedding
 * `[c_i − c_{i−1}, ⌊d / factorⁱ⌋]` and a bias-free projection `Linear(⌊d / factorⁱ⌋ → D)`; a
 * token `t` of band `i` is embedded as `P_i · E_i[t − c_{i−1}]`.
 *
 * State-dict names: `embeddings.i.0.weight` (band embedding `[size_i, dim_i]`),
 * `embeddings.i.1.weight` (projection `[D, dim_i]`). The reference's `_float_tensor` buffer is a
 * dtype marker and is not kept.
 *
 * Reference quirk kept: row `pad` of **every** band's embedding is zeroed at init (band 0 is the
 * only one that treats it as padding; the LM zeroes padded positions itself, so the padding row
 * of band 0 never receives a gradient through the input).
 */
import * as F from '../../autograd/index.js';
import { Linear } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { normal } from '../../nn/init.js';
import type { FloatDType } from '../../tensor/dtype.js';
import { IndexError } from '../../tensor/errors.js';
import { defaultGenerator, type Generator } from '../../tensor/random.js';
import { fromStorage, type Tensor } from '../../tensor/tensor.js';
import { ModuleList, TokenEmbedding } from '../models/common.js';
import { bandDim } from './cutoff.js';

/** One band: `0` = embedding, `1` = projection to `D` (fairseq's `nn.Sequential`). */
export class AdaptiveBand extends Module {
  readonly embedding: TokenEmbedding;
  readonly proj: Linear;
  constructor(size: number, dim: number, D: number, pad: number, dtype: FloatDType, gen: Generator) {
    super();
    const w = normal([size, dim], dim ** -0.5, dtype, gen);
    if (pad >= 0 && pad < size) w.storage.fill(0, pad * dim, (pad + 1) * dim);
    this.embedding = this.child('0', new TokenEmbedding(w));
    this.proj = this.child('1', new Linear(dim, D, { bias: false, init: 'xavier', dtype, gen }));
  }
}

/** Options of {@link AdaptiveInput}. */
export interface AdaptiveInputOptions {
  dtype?: FloatDType;
  gen?: Generator;
}

/** `AdaptiveInput(V, pad, d, factor, D, cutoff)`. */
export class AdaptiveInput extends Module {
  readonly embeddings: ModuleList<AdaptiveBand>;
  /** Band ends `[c₀, …, V]`. */
  readonly cutoff: readonly number[];
  /** Output width `D`. */
  readonly embeddingDim: number;

  /**
   * @param cutoff band ends ending with `V` (see `parseCutoffs`)
   * @param initialDim `d` = width of band 0 (`decoder_input_dim`)
   */
  constructor(
    readonly vocabSize: number,
    readonly padIdx: number,
    initialDim: number,
    factor: number,
    outputDim: number,
    cutoff: readonly number[],
    opts: AdaptiveInputOptions = {},
  ) {
    super();
    const dtype = opts.dtype ?? 'f32',
      gen = opts.gen ?? defaultGenerator;
    this.cutoff = cutoff;
    this.embeddingDim = outputDim;
    // fairseq creates each band's Embedding then Linear, then re-initialises all of them in
    // module order (embedding N(0, 1/dim) with the pad row zeroed, linear Xavier)
    this.embeddings = this.child(
      'embeddings',
      new ModuleList(
        cutoff.map((end, i) => {
          const start = i > 0 ? cutoff[i - 1] : 0;
          return new AdaptiveBand(end - start, bandDim(initialDim, factor, i, 'adaptive_input_factor'), outputDim, padIdx, dtype, gen);
        }),
      ),
    );
  }

  /** The tensors of band `i`: embedding `[size_i, dim_i]` and projection `[D, dim_i]` (tied by the adaptive softmax). */
  weightsForBand(i: number): { embedding: Tensor; proj: Tensor } {
    const b = this.embeddings.items[i];
    return { embedding: b.embedding.weight, proj: b.proj.weight };
  }

  /** ids `B × L` (i32) → `B × L × D`. */
  forward(ids: Tensor): Tensor {
    const flat = ids.toTypedArray();
    const N = flat.length,
      V = this.vocabSize;
    const bandOf = new Int32Array(N);
    const counts = new Array<number>(this.cutoff.length).fill(0);
    for (let n = 0; n < N; n++) {
      const t = flat[n];
      if (!(t >= 0 && t < V)) throw new IndexError(`AdaptiveInput: token id ${t} is out of range for a vocabulary of ${V}`);
      let b = 0;
      while (t >= this.cutoff[b]) b++;
      bandOf[n] = b;
      counts[b]++;
    }
    if (N === 0) return F.reshape(this.embeddings.items[0].proj.forward(this.embeddings.items[0].embedding.forward(ids)), [...ids.shape, this.embeddingDim]);
    const pieces: Tensor[] = [];
    const order = new Int32Array(N); // order[j] = flat position of row j of the concatenated pieces
    let at = 0;
    for (let b = 0; b < this.cutoff.length; b++) {
      if (counts[b] === 0) continue;
      const start = b > 0 ? this.cutoff[b - 1] : 0;
      const local = new Int32Array(counts[b]);
      let k = 0;
      for (let n = 0; n < N; n++) {
        if (bandOf[n] !== b) continue;
        local[k++] = flat[n] - start;
        order[at++] = n;
      }
      const band = this.embeddings.items[b];
      pieces.push(band.proj.forward(band.embedding.forward(fromStorage(local, [counts[b]])))); // n_b × D
    }
    let rows = pieces.length === 1 ? pieces[0] : F.concat(pieces, 0); // N × D, band order
    let identity = true;
    for (let j = 0; j < N && identity; j++) identity = order[j] === j;
    if (!identity) {
      const inverse = new Int32Array(N);
      for (let j = 0; j < N; j++) inverse[order[j]] = j;
      rows = F.indexSelect(rows, 0, fromStorage(inverse, [N]));
    }
    return F.reshape(rows, [...ids.shape, this.embeddingDim]);
  }
}
