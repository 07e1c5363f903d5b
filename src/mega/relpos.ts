/**
 * Relative positional biases (docs/MEGA.md §4, reference `fairseq/modules/relative_positional_bias.py`).
 * Both modules are called with a length `n` and return an `n × n` matrix `bias[i, j]`
 * (i = query position, j = key position) that is added to attention logits. Both are built
 * from differentiable ops on their parameters, so gradients reach `rel_pos_bias` / `alpha` / `beta`.
 */
import * as F from '../autograd/index.js';
import { toeplitz } from '../autograd/ops/fused.js';
import { fromArray } from '../tensor/create.js';
import { allocate, type FloatDType } from '../tensor/dtype.js';
import { defaultGenerator, type Generator } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import { ConfigError } from '../nn/errors.js';
import { normal } from '../nn/init.js';
import { Module } from '../nn/module.js';

/** Construction options of the relative-position modules. */
export interface RelPosOptions {
  /** Parameter dtype (default f32). */
  dtype?: FloatDType;
  /** Generator for the N(0, 0.02²) initialisation (default: the process-wide one). */
  gen?: Generator;
}

/** What the Mega layer needs from either bias: `forward(n)` → `n × n`. */
export interface RelPosBias extends Module {
  /** The `seqLen × seqLen` additive bias. */
  forward(seqLen: number): Tensor;
}

function checkLength(seqLen: number, who: string): void {
  if (!Number.isInteger(seqLen) || seqLen < 0) throw new ConfigError(`${who}: sequence length must be a non-negative integer, got ${seqLen}`);
}

/**
 * The 'simple' bias (§4.1): a learned vector `rel_pos_bias` of length `2M − 1` (init N(0, 0.02²))
 * read as a Toeplitz matrix, `bias[i, j] = w[M − 1 + j − i]`. Lengths above `M` are an error.
 */
export class SimpleRelativePositionalBias extends Module implements RelPosBias {
  /** `[2M − 1]`; entry `M − 1 + d` is the bias of a key `d` positions after the query. */
  readonly rel_pos_bias: Tensor;

  constructor(
    readonly maxPositions: number,
    opts: RelPosOptions = {},
  ) {
    super();
    if (!Number.isInteger(maxPositions) || maxPositions < 1) {
      throw new ConfigError(`SimpleRelativePositionalBias: max_positions must be a positive integer, got ${maxPositions}`);
    }
    const dtype = opts.dtype ?? 'f32';
    this.rel_pos_bias = this.param('rel_pos_bias', normal([2 * maxPositions - 1], 0.02, dtype, opts.gen ?? defaultGenerator));
  }

  /** `bias[i, j] = w[M − 1 + j − i]` for `0 ≤ i, j < seqLen` → `seqLen × seqLen`. */
  forward(seqLen: number): Tensor {
    checkLength(seqLen, 'SimpleRelativePositionalBias');
    const M = this.maxPositions;
    if (seqLen > M) {
      throw new ConfigError(`SimpleRelativePositionalBias: sequence length ${seqLen} is beyond max_positions ${M} (the bias has ${2 * M - 1} entries)`);
    }
    return toeplitz(this.rel_pos_bias, seqLen); // n × n
  }
}

/**
 * The sinusoid tables of the rotary bias (§4.2): `h = Z/2`, `θ_k = exp(−k·ln(10000)/h)`,
 * `sin[m, k] = sin(m·θ_k)`, `cos[m, k] = cos(m·θ_k)` for `m < n`, each `n × h`, evaluated in
 * double precision and stored in `dtype` (the reference's f64 run builds them in f64).
 */
export function sinusoidTables(n: number, halfDim: number, dtype: FloatDType): { sin: Tensor; cos: Tensor } {
  const s = allocate(dtype, n * halfDim),
    c = allocate(dtype, n * halfDim);
  const step = Math.log(10000) / halfDim;
  for (let k = 0; k < halfDim; k++) {
    const theta = Math.exp(-k * step);
    for (let m = 0; m < n; m++) {
      const phi = m * theta;
      s[m * halfDim + k] = Math.sin(phi);
      c[m * halfDim + k] = Math.cos(phi);
    }
  }
  return { sin: fromArray(s, [n, halfDim]), cos: fromArray(c, [n, halfDim]) };
}

/**
 * The 'rotary' bias (§4.2): learned `alpha`, `beta` `[1, Z]` (init N(0, 0.02²)), each rotated to
 * every position with the halves layout; `bias[i, j] = R_i(alpha) · R_j(beta)`. No length limit
 * (`maxPositions` only sizes the initial sinusoid table, which grows on demand).
 */
export class RotaryRelativePositionalBias extends Module implements RelPosBias {
  /** `[1, Z]`: the query-side vector. */
  readonly alpha: Tensor;
  /** `[1, Z]`: the key-side vector. */
  readonly beta: Tensor;
  private readonly dtype: FloatDType;
  private tables: { sin: Tensor; cos: Tensor };

  constructor(
    readonly embedDim: number,
    readonly maxPositions: number,
    opts: RelPosOptions = {},
  ) {
    super();
    if (!Number.isInteger(embedDim) || embedDim < 2 || embedDim % 2 !== 0) {
      throw new ConfigError(`RotaryRelativePositionalBias: embed_dim must be a positive even integer, got ${embedDim}`);
    }
    this.dtype = opts.dtype ?? 'f32';
    const gen = opts.gen ?? defaultGenerator;
    this.alpha = this.param('alpha', normal([1, embedDim], 0.02, this.dtype, gen));
    this.beta = this.param('beta', normal([1, embedDim], 0.02, this.dtype, gen));
    this.tables = sinusoidTables(Math.max(0, maxPositions), embedDim / 2, this.dtype);
  }

  /** `R_m(x)` for every `m < n`: x `[1, Z]` → `n × Z` (halves layout, not interleaved pairs). */
  rotary(x: Tensor, n: number): Tensor {
    const h = this.embedDim / 2;
    if (n > this.tables.sin.shape[0]) this.tables = sinusoidTables(n, h, this.dtype);
    const sin = F.narrow(this.tables.sin, 0, 0, n),
      cos = F.narrow(this.tables.cos, 0, 0, n); // n × h
    const x1 = F.narrow(x, 1, 0, h),
      x2 = F.narrow(x, 1, h, h); // 1 × h each
    return F.concat([F.sub(F.mul(x1, cos), F.mul(x2, sin)), F.add(F.mul(x2, cos), F.mul(x1, sin))], 1); // n × Z
  }

  /** `bias[i, j] = R_i(alpha) · R_j(beta)` → `seqLen × seqLen`. */
  forward(seqLen: number): Tensor {
    checkLength(seqLen, 'RotaryRelativePositionalBias');
    const a = this.rotary(this.alpha, seqLen); // n × Z
    const b = this.rotary(this.beta, seqLen); // n × Z
    return F.matmul(a, F.transpose(b, 0, 1)); // n × n
  }
}

/**
 * Builds the bias the Mega layer asks for by name (`--rel-pos-bias simple|rotary`):
 * 'simple' ignores `zdim` (`2·maxPositions − 1` parameters), 'rotary' uses `zdim` as its width.
 */
export function makeRelPosBias(
  kind: 'simple' | 'rotary',
  zdim: number,
  maxPositions: number,
  opts: RelPosOptions = {},
): SimpleRelativePositionalBias | RotaryRelativePositionalBias {
  switch (kind) {
    case 'simple':
      return new SimpleRelativePositionalBias(maxPositions, opts);
    case 'rotary':
      return new RotaryRelativePositionalBias(zdim, maxPositions, opts);
    default:
      throw new ConfigError(`unknown rel_pos_bias '${kind as string}' (expected simple or rotary)`);
  }
}
