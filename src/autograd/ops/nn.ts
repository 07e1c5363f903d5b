/** Differentiable training helpers: dropout and cross-entropy (label smoothing, ignore index). */
import { scalar } from '../../tensor/create.js';
import { DTypeError, ShapeError, TensorError } from '../../tensor/errors.js';
import * as K from '../../tensor/kernels.js';
import { defaultGenerator, dropoutMask, Generator } from '../../tensor/random.js';
import type { Tensor } from '../../tensor/tensor.js';
import * as V from '../../tensor/view.js';
import { compare, mul, neg, sub, where } from './arith.js';
import { logSoftmax } from './activation.js';
import { gather } from './indexing.js';
import { sum } from './reduce.js';
import { reshape } from './shape.js';

/**
 * Inverted dropout: zero each element with probability `p` (one uniform draw per element of
 * `maskShape`, default x's shape, broadcast over x), scale survivors by 1/(1−p).
 */
export function dropout(x: Tensor, p: number, training: boolean, gen: Generator = defaultGenerator, maskShape?: readonly number[]): Tensor {
  if (!(p >= 0 && p < 1)) throw new TensorError(`dropout: probability ${p} is outside [0, 1)`); // modules check it first (ConfigError)
  if (!training || p === 0) return x;
  if (x.dtype !== 'f32' && x.dtype !== 'f64') throw new DTypeError(`dropout: expected a floating tensor, got ${x.dtype}`);
  return mul(x, dropoutMask(maskShape ?? x.shape, p, x.dtype, gen));
}

/** Options of `crossEntropy`. */
export interface CrossEntropyOptions {
  /** Targets equal to this contribute nothing (fairseq: the pad index). */
  ignoreIndex?: number;
  /** ε of label smoothing: loss = (1−ε)·nll + ε/V · Σ_v −log p_v. */
  labelSmoothing?: number;
  /** 'sum' (fairseq's criteria), 'mean' over non-ignored targets, or 'none'. */
  reduction?: 'sum' | 'mean' | 'none';
}

/**
 * Cross-entropy of `logits` `[N, V]` against i32 `target` `[N]`. Returns the (smoothed) loss and
 * the plain negative log-likelihood, both reduced the same way.
 */
export function crossEntropy(logits: Tensor, target: Tensor, opts: CrossEntropyOptions = {}): { loss: Tensor; nll: Tensor } {
  if (logits.ndim !== 2 || target.ndim !== 1 || target.shape[0] !== logits.shape[0]) {
    throw new ShapeError(`crossEntropy: expected logits [N, V] and target [N], got [${logits.shape}] and [${target.shape}]`);
  }
  if (target.dtype !== 'i32') throw new DTypeError(`crossEntropy: target must be i32, got ${target.dtype}`);
  const V_ = logits.shape[1];
  const eps = opts.labelSmoothing ?? 0;
  const lp = logSoftmax(logits, -1);
  let keep: Tensor | null = null;
  let tgt = target;
  if (opts.ignoreIndex !== undefined) {
    keep = compare(target, scalar(opts.ignoreIndex, 'i32'), 'ne');
    tgt = K.where(keep, target, scalar(0, 'i32'));
  }
  const picked = reshape(gather(lp, 1, V.reshape(tgt, [-1, 1])), [-1]);
  let nll = neg(picked);
  let loss = nll;
  if (eps > 0) {
    const smooth = neg(sum(lp, -1));
    loss = sub(mul(nll, 1 - eps), mul(smooth, -eps / V_));
  }
  if (keep) {
    nll = where(keep, nll, 0);
    loss = where(keep, loss, 0);
  }
  if (opts.reduction === 'none') return { loss, nll };
  if (opts.reduction === 'mean') {
    const n = keep ? K.reduce(K.cast(keep, 'i32'), 'sum', [0], false).item() : target.shape[0];
    return { loss: mul(sum(loss), 1 / Math.max(1, n)), nll: mul(sum(nll), 1 / Math.max(1, n)) };
  }
  return { loss: sum(loss), nll: sum(nll) };
}
