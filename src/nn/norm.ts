/**
 * `SequenceNorm` (docs/MEGA.md §3): layernorm, scalenorm, rmsnorm, batchnorm, syncbatchnorm over
 * `[L, B, D]` with eps 1e-5. Parameter names follow the reference: the wrapped module is `norm`,
 * so names are `norm.weight`, `norm.bias`, `norm.scalar`, `norm.running_mean`, ...
 */
import * as F from '../autograd/index.js';
import { noGrad } from '../autograd/index.js';
import { batchNorm, layerNorm } from '../autograd/ops/fused.js';
import { full, ones, scalar, zeros } from '../tensor/create.js';
import type { FloatDType } from '../tensor/dtype.js';
import * as K from '../tensor/kernels.js';
import type { Tensor } from '../tensor/tensor.js';
import * as V from '../tensor/view.js';
import { ConfigError } from './errors.js';
import { Module } from './module.js';

/** The norm types of `SequenceNorm`. */
export type NormType = 'layernorm' | 'scalenorm' | 'rmsnorm' | 'batchnorm' | 'syncbatchnorm';

/** A normalisation over the last axis (or over L·B for batch norm). */
export interface NormModule extends Module {
  forward(x: Tensor): Tensor;
}

/** LayerNorm over the last axis: (x − μ)/√(var + eps) ⊙ w + b. */
export class LayerNorm extends Module implements NormModule {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  constructor(
    readonly dim: number,
    readonly eps: number,
    affine: boolean,
    dtype: FloatDType,
  ) {
    super();
    this.weight = affine ? this.param('weight', ones([dim], dtype)) : null;
    this.bias = affine ? this.param('bias', zeros([dim], dtype)) : null;
  }
  forward(x: Tensor): Tensor {
    // one fused op each way (the composition mean, x − mean, square, mean, + eps, rsqrt, ·w + b)
    const y = layerNorm(F.reshape(x, [-1, this.dim]), this.weight, this.bias, this.eps);
    return F.reshape(y, x.shape);
  }
}

/** Mega's ScaleNorm: g · x / √(mean(x²) + eps), one scalar g. */
export class ScaleNorm extends Module implements NormModule {
  readonly scalar: Tensor | null;
  constructor(
    readonly eps: number,
    affine: boolean,
    dtype: FloatDType,
  ) {
    super();
    this.scalar = affine ? this.param('scalar', ones([1], dtype)) : null;
  }
  forward(x: Tensor): Tensor {
    // one fused op each way (the composition square, mean, + eps, rsqrt, ·, · g); g enters as a
    // weight broadcast over the row, so its gradient is the sum of the weight's
    const D = x.shape[x.ndim - 1];
    const g = this.scalar ? F.expand(this.scalar, [D]) : null;
    return F.reshape(layerNorm(F.reshape(x, [-1, D]), g, null, this.eps, false), x.shape);
  }
}

/** RMSNorm: x ⊙ w / √(mean(x²) + eps). */
export class RMSNorm extends Module implements NormModule {
  readonly weight: Tensor | null;
  constructor(
    readonly dim: number,
    readonly eps: number,
    affine: boolean,
    dtype: FloatDType,
  ) {
    super();
    this.weight = affine ? this.param('weight', ones([dim], dtype)) : null;
  }
  forward(x: Tensor): Tensor {
    // one fused op each way (the composition square, mean, + eps, rsqrt, ·, ·w)
    return F.reshape(layerNorm(F.reshape(x, [-1, this.dim]), this.weight, null, this.eps, false), x.shape);
  }
}

/**
 * Reduces batch-norm statistics across data-parallel workers (syncbatchnorm). Given the local
 * `[2, D]` tensor (Σx, Σx² over positions) and the local count, returns the global ones; the
 * distributed trainer installs one. The default is single-process (identity).
 */
export type BatchStatsReducer = (stats: Tensor, count: number) => { stats: Tensor; count: number };
let syncReducer: BatchStatsReducer = (stats, count) => ({ stats, count });

/** Installs the cross-worker reducer used by `syncbatchnorm`. */
export function setSyncBatchNormReducer(r: BatchStatsReducer | null): void {
  syncReducer = r ?? ((stats, count) => ({ stats, count }));
}

/** PyTorch BatchNorm1d on `[B, D, L]` = per-channel statistics over L and B of `[L, B, D]`. */
export class BatchNorm extends Module implements NormModule {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  constructor(
    readonly dim: number,
    readonly eps: number,
    affine: boolean,
    readonly dtype: FloatDType,
    readonly sync: boolean,
    readonly momentum = 0.1,
  ) {
    super();
    this.weight = affine ? this.param('weight', ones([dim], dtype)) : null;
    this.bias = affine ? this.param('bias', zeros([dim], dtype)) : null;
    this.buffer('running_mean', zeros([dim], dtype));
    this.buffer('running_var', ones([dim], dtype));
    this.buffer('num_batches_tracked', zeros([], 'i32'));
  }
  forward(x: Tensor): Tensor {
    const D = this.dim;
    const x2 = F.reshape(x, [-1, D]); // (L·B) × D
    if (this.training && !this.sync) {
      // one fused op each way (the composition below, as one kernel)
      const { y, stats } = batchNorm(x2, this.weight, this.bias, this.eps);
      noGrad(() => this.updateRunning(V.reshape(V.narrow(stats, 0, 0, 1), [D]), V.reshape(V.narrow(stats, 0, 1, 1), [D]), x2.shape[0]));
      return F.reshape(y, x.shape);
    }
    let mean: Tensor, varB: Tensor;
    if (this.training) {
      let n = x2.shape[0];
      if (this.sync) {
        const local = F.stack([F.sum(x2, 0), F.sum(F.square(x2), 0)], 0);
        const g = syncReducer(local, n);
        n = g.count;
        const [s, ss] = F.split(g.stats, [1, 1], 0);
        mean = F.mul(F.reshape(s, [D]), 1 / n);
        varB = F.sub(F.mul(F.reshape(ss, [D]), 1 / n), F.square(mean));
      } else {
        mean = F.mean(x2, 0);
        varB = F.mean(F.square(F.sub(x2, mean)), 0);
      }
      noGrad(() => this.updateRunning(mean, varB, n));
    } else {
      mean = this.getBuffer('running_mean');
      varB = this.getBuffer('running_var');
    }
    let y = F.mul(F.sub(x, mean), F.rsqrt(F.add(varB, this.eps)));
    if (this.weight && this.bias) y = F.add(F.mul(y, this.weight), this.bias);
    return y;
  }

  /** Running averages (momentum m) from the batch mean and biased variance of `n` positions. */
  private updateRunning(mean: Tensor, varB: Tensor, n: number): void {
    const m = this.momentum;
    const unbiased = K.binary(varB, scalar(n / Math.max(1, n - 1), this.dtype), 'mul');
    const upd = (name: string, v: Tensor) =>
      this.setBuffer(name, K.binary(K.binary(this.getBuffer(name), scalar(1 - m, this.dtype), 'mul'), K.binary(v, scalar(m, this.dtype), 'mul'), 'add'));
    upd('running_mean', mean);
    upd('running_var', unbiased);
    this.setBuffer('num_batches_tracked', full([], this.getBuffer('num_batches_tracked').item() + 1, 'i32'));
  }
}

/** The reference's `SequenceNorm(norm_type, D, eps=1e-5, affine)`; the inner module is `norm`. */
export class SequenceNorm extends Module {
  readonly norm: NormModule;
  constructor(
    readonly normType: NormType,
    dim: number,
    opts: { affine?: boolean; eps?: number; dtype?: FloatDType } = {},
  ) {
    super();
    const affine = opts.affine ?? true,
      eps = opts.eps ?? 1e-5,
      dtype = opts.dtype ?? 'f32';
    switch (normType) {
      case 'layernorm':
        this.norm = new LayerNorm(dim, eps, affine, dtype);
        break;
      case 'scalenorm':
        this.norm = new ScaleNorm(eps, affine, dtype);
        break;
      case 'rmsnorm':
        this.norm = new RMSNorm(dim, eps, affine, dtype);
        break;
      case 'batchnorm':
        this.norm = new BatchNorm(dim, eps, affine, dtype, false);
        break;
      case 'syncbatchnorm':
        this.norm = new BatchNorm(dim, eps, affine, dtype, true);
        break;
      default:
        throw new ConfigError(`unknown norm type '${normType as string}' (expected layernorm, scalenorm, rmsnorm, batchnorm, syncbatchnorm)`);
    }
    this.child('norm', this.norm);
  }
  /** `[L, B, D]` → `[L, B, D]`. */
  forward(x: Tensor): Tensor {
    return this.norm.forward(x);
  }
}
