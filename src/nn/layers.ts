/** Linear, Embedding, Dropout and FeatureDropout with PyTorch parameter names. */
import { dropout as dropoutOp, embedding, linear } from '../autograd/index.js';
import type { FloatDType } from '../tensor/dtype.js';
import { defaultGenerator, dropoutMask, type Generator } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import { DTypeError } from '../tensor/errors.js';
import { ConfigError } from './errors.js';
import { kaimingUniform, normal, xavierUniform, zeros } from './init.js';
import { Module, type ModuleOptions } from './module.js';

/** How a Linear weight is initialised. */
export type LinearInit = 'default' | 'xavier' | { std: number };

/** `y = x·weightᵀ + bias`; weight `[out, in]`, bias `[out]`. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: ModuleOptions & { bias?: boolean; init?: LinearInit; gen?: Generator } = {},
  ) {
    super();
    const dtype = opts.dtype ?? 'f32';
    const gen = opts.gen ?? defaultGenerator;
    const init = opts.init ?? 'default';
    const shape: [number, number] = [outFeatures, inFeatures];
    const w =
      init === 'default'
        ? kaimingUniform(shape, inFeatures, dtype, gen)
        : init === 'xavier'
          ? xavierUniform(shape, dtype, gen)
          : normal(shape, init.std, dtype, gen);
    this.weight = this.param('weight', w);
    this.bias =
      opts.bias === false ? null : this.param('bias', init === 'default' ? kaimingUniform([outFeatures], inFeatures, dtype, gen) : zeros([outFeatures], dtype));
  }

  /** x: `[..., in]` → `[..., out]`. */
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

/** Lookup table `weight` `[V, D]`, init N(0, std²), optional zeroed padding row. */
export class Embedding extends Module {
  readonly weight: Tensor;

  constructor(
    readonly numEmbeddings: number,
    readonly dim: number,
    opts: ModuleOptions & { paddingIdx?: number; std?: number; zeroPad?: boolean; gen?: Generator } = {},
  ) {
    super();
    const dtype: FloatDType = opts.dtype ?? 'f32';
    const w = normal([numEmbeddings, dim], opts.std ?? 1, dtype, opts.gen);
    if (opts.paddingIdx !== undefined && opts.zeroPad !== false) w.storage.fill(0, opts.paddingIdx * dim, (opts.paddingIdx + 1) * dim);
    this.weight = this.param('weight', w);
  }

  /** ids (i32, any shape) → `[...ids, D]`. */
  forward(ids: Tensor): Tensor {
    return embedding(this.weight, ids);
  }
}

/** Standard inverted dropout (fairseq `FairseqDropout`; its `batch_first` flag is ignored). */
export class Dropout extends Module {
  constructor(
    readonly p: number,
    readonly gen: Generator = defaultGenerator,
  ) {
    super();
    if (p < 0 || p >= 1) throw new ConfigError(`dropout probability ${p} is outside [0, 1)`);
  }

  /** Identity in eval mode. */
  forward(x: Tensor, _batchFirst = false): Tensor {
    return dropoutOp(x, this.p, this.training, this.gen);
  }

  /** The mask `forward(x)` would multiply x by (drawn the same way), or null in eval mode / p = 0. */
  mask(x: Tensor, _batchFirst = false): Tensor | null {
    if (!this.training || this.p === 0) return null;
    return dropoutMask(x.shape, this.p, floatDType(x), this.gen);
  }
}

/**
 * Channel dropout (fairseq `FairseqFeatureDropout`, docs/MEGA.md §1.3): one draw per (batch, channel),
 * broadcast over time. `[L, B, D]` → mask `[1, B, D]`; batch-first `[B, T, X]` → `[B, 1, X]`;
 * batch-first 4-D `[B, K, T, X]` → `[B, K, 1, 1]` (a whole chunk, the reference's quirk).
 */
export class FeatureDropout extends Module {
  constructor(
    readonly p: number,
    readonly gen: Generator = defaultGenerator,
  ) {
    super();
    if (p < 0 || p >= 1) throw new ConfigError(`dropout probability ${p} is outside [0, 1)`);
  }

  forward(x: Tensor, batchFirst = false): Tensor {
    if (!this.training || this.p === 0) return x;
    return dropoutOp(x, this.p, true, this.gen, this.maskShape(x, batchFirst));
  }

  /** The mask `forward(x)` would multiply x by (drawn the same way, unexpanded), or null in eval mode / p = 0. */
  mask(x: Tensor, batchFirst = false): Tensor | null {
    if (!this.training || this.p === 0) return null;
    return dropoutMask(this.maskShape(x, batchFirst), this.p, floatDType(x), this.gen);
  }

  private maskShape(x: Tensor, batchFirst: boolean): number[] {
    const s = x.shape;
    if (!batchFirst) return [1, s[1], s[2]];
    if (x.ndim === 3) return [s[0], 1, s[2]];
    return [s[0], s[1], ...s.slice(2).map(() => 1)];
  }
}

/** x's dtype when floating (dropout masks are drawn in it), else a DTypeError. */
function floatDType(x: Tensor): 'f32' | 'f64' {
  if (x.dtype !== 'f32' && x.dtype !== 'f64') throw new DTypeError(`dropout: expected a floating tensor, got ${x.dtype}`);
  return x.dtype;
}

/** Standard or feature dropout as fairseq chooses with `--feature-dropout`. */
export function makeDropout(p: number, feature: boolean, gen?: Generator): Dropout | FeatureDropout {
  return feature ? new FeatureDropout(p, gen) : new Dropout(p, gen);
}
