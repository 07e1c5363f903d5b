/**
 * Helpers shared by the full models (docs/MEGA.md §8): model-level chunk padding of token ids, padding
 * masks, zeroing padded positions, and the fairseq dictionary facts a model needs.
 */
import * as F from '../../autograd/index.js';
import { ConfigError } from '../../nn/errors.js';
import { scalar } from '../../tensor/create.js';
import { ShapeError } from '../../tensor/errors.js';
import * as K from '../../tensor/kernels.js';
import type { Tensor } from '../../tensor/tensor.js';
import { Module } from '../../nn/module.js';
import { normal } from '../../nn/init.js';
import type { FloatDType } from '../../tensor/dtype.js';
import type { Generator } from '../../tensor/random.js';

/** The fairseq dictionary facts a model is built from (golden `task`). */
export interface TaskInfo {
  /** Vocabulary size `V` (including the special symbols). */
  dictionary_size: number;
  /** Padding index (fairseq: 1). */
  pad: number;
  bos?: number;
  eos?: number;
  unk?: number;
}

/** Checks a task object. */
export function checkTask(task: TaskInfo | undefined, who: string): TaskInfo {
  if (!task || !Number.isInteger(task.dictionary_size) || task.dictionary_size < 1 || !Number.isInteger(task.pad)) {
    throw new ConfigError(`${who}: a task with an integer dictionary_size and pad index is required`);
  }
  return task;
}

/** Checks `tokens` is an i32 `B × L` tensor. */
export function checkTokens(tokens: Tensor, who: string): void {
  if (tokens.dtype !== 'i32' || tokens.ndim !== 2) throw new ShapeError(`${who}: expected i32 token ids B × L, got ${tokens.dtype} [${tokens.shape}]`);
}

/**
 * Model-level chunk padding (docs/MEGA.md §6.3): if `0 < C < L` and `L mod C ≠ 0`, right-pads the
 * `B × L` ids with `pad` up to `⌈L/C⌉·C`; otherwise returns them unchanged.
 */
export function chunkPadTokens(tokens: Tensor, C: number, pad: number): Tensor {
  const L = tokens.shape[1];
  if (!(C > 0 && L > C && L % C !== 0)) return tokens;
  return K.pad(
    tokens,
    [
      [0, 0],
      [0, Math.ceil(L / C) * C - L],
    ],
    pad,
  );
}

/** `tokens == pad` as a bool `B × L` mask, or null when nothing is padded (fairseq's convention). */
export function paddingMaskOf(tokens: Tensor, pad: number): Tensor | null {
  const m = K.binary(tokens, scalar(pad, 'i32'), 'eq');
  const s = m.storage;
  for (let i = 0; i < s.length; i++) if (s[i]) return m;
  return null;
}

/** `x ⊙ (1 − mask)`: zeroes padded positions. x `B × L × D` (batchFirst) or `L × B × D`; mask `B × L`. */
export function zeroPads(x: Tensor, mask: Tensor | null, batchFirst: boolean): Tensor {
  if (!mask) return x;
  let keep = K.cast(K.unary(mask, 'not'), x.dtype); // B × L
  if (!batchFirst) keep = K.copy(F.transpose(keep, 0, 1)); // L × B
  return F.mul(x, F.unsqueeze(keep, -1));
}

/** The first `len` positions along `axis` (drops model-level chunk padding). */
export function trimTo(x: Tensor, axis: number, len: number): Tensor {
  return x.shape[axis] === len ? x : F.narrow(x, axis, 0, len);
}

/** The first `len` columns of a `B × T` mask (null stays null). */
export function trimMask(mask: Tensor | null, len: number): Tensor | null {
  if (!mask || mask.shape[1] === len) return mask;
  return K.copy(F.narrow(mask, 1, 0, len));
}

/** An indexed container (PyTorch `nn.ModuleList`): children are named `0`, `1`, ... */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[];
  constructor(items: M[]) {
    super();
    this.items = items.map((m, i) => this.child(String(i), m));
  }
}

/**
 * A token embedding over a given weight `[V, d]` (registered as `weight`), so that one tensor can
 * be shared by several modules (tied / shared embeddings appear under every name).
 */
export class TokenEmbedding extends Module {
  readonly weight: Tensor;
  constructor(weight: Tensor) {
    super();
    this.weight = this.param('weight', weight);
  }
  /** ids `B × L` → `B × L × d`. */
  forward(ids: Tensor): Tensor {
    return F.embedding(this.weight, ids);
  }
}

/** A bias-free output projection `x·Wᵀ` over a given (possibly tied) weight `[V, D]`. */
export class OutputProjection extends Module {
  readonly weight: Tensor;
  constructor(weight: Tensor) {
    super();
    this.weight = this.param('weight', weight);
  }
  /** x `... × D` → `... × V`. */
  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, null);
  }
}

/** fairseq's `Embedding(V, d, pad)` weight: `N(0, 1/d)` with the padding row zeroed. */
export function embeddingWeight(V: number, d: number, pad: number, dtype: FloatDType, gen: Generator): Tensor {
  const w = normal([V, d], d ** -0.5, dtype, gen);
  if (pad >= 0 && pad < V) w.storage.fill(0, pad * d, (pad + 1) * d);
  return w;
}
