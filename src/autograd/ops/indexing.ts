/** Differentiable indexing: indexSelect / embedding (scatter-add gradient), gather. */
import * as K from '../../tensor/kernels.js';
import { normAxis } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import * as V from '../../tensor/view.js';
import { record } from '../engine.js';

/** Slices of `x` along `axis` at the 1-D i32 `index`. */
export function indexSelect(x: Tensor, axis: number, index: Tensor): Tensor {
  const a = normAxis(axis, x.ndim, 'indexSelect');
  return record(K.indexSelect(x, a, index), 'indexSelect', [x], (g) => [K.indexAdd(x.shape, a, index, g)]);
}

/** Embedding lookup: rows of `weight` `[V, D]` for i32 `ids` of any shape → `[...ids, D]`. */
export function embedding(weight: Tensor, ids: Tensor): Tensor {
  const flat = V.reshape(ids, [-1]);
  const rows = indexSelect(weight, 0, flat);
  return record(V.reshape(rows, [...ids.shape, weight.shape[1]]), 'reshape', [rows], (g) => [V.reshape(g, rows.shape)]);
}

/** torch.gather along `axis`. */
export function gather(x: Tensor, axis: number, index: Tensor): Tensor {
  const a = normAxis(axis, x.ndim, 'gather');
  return record(K.gather(x, a, index), 'gather', [x], (g) => [K.scatterAdd(x.shape, a, index, g)]);
}
