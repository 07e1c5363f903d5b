/** Differentiable movement ops: reshape, permute, transpose, narrow, expand, squeeze, unsqueeze, flip, concat, split, pad. */
import { scalar } from '../../tensor/create.js';
import { residentProtect } from '../../tensor/backends/cpu/resident.js';
import { ShapeError } from '../../tensor/errors.js';
import * as K from '../../tensor/kernels.js';
import { normAxis } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import * as V from '../../tensor/view.js';
import { isGradEnabled, record } from '../engine.js';
import { sumTo } from './arith.js';

/** New shape (one entry may be −1); a view when possible. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  return record(V.reshape(x, shape), 'reshape', [x], (g) => [V.reshape(g, x.shape)]);
}

/** Axis reorder. */
export function permute(x: Tensor, axes: readonly number[]): Tensor {
  const out = V.permute(x, axes);
  const inv = new Array<number>(axes.length);
  axes.forEach((a, i) => (inv[normAxis(a, x.ndim, 'permute')] = i));
  return record(out, 'permute', [x], (g) => [V.permute(g, inv)]);
}

/** Swap of two axes. */
export function transpose(x: Tensor, a: number, b: number): Tensor {
  return record(V.transpose(x, a, b), 'transpose', [x], (g) => [V.transpose(g, a, b)]);
}

/** Elements `start .. start+length-1` along `axis`. */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  const a = normAxis(axis, x.ndim, 'narrow');
  const s = start < 0 ? start + x.shape[a] : start;
  const out = V.narrow(x, a, s, length);
  return record(out, 'narrow', [x], (g) => {
    const pads = x.shape.map(() => [0, 0] as [number, number]);
    pads[a] = [s, x.shape[a] - s - length];
    return [K.pad(g, pads, 0)];
  });
}

/** Broadcast to `shape`. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  return record(V.expand(x, shape), 'expand', [x], (g) => [sumTo(g, x.shape)]);
}

/** Removes size-1 axes. */
export function squeeze(x: Tensor, axes?: number | number[]): Tensor {
  return record(V.squeeze(x, axes), 'squeeze', [x], (g) => [V.reshape(g, x.shape)]);
}

/** Inserts a size-1 axis. */
export function unsqueeze(x: Tensor, axis: number): Tensor {
  return record(V.unsqueeze(x, axis), 'unsqueeze', [x], (g) => [V.reshape(g, x.shape)]);
}

/** Reverses along axes. */
export function flip(x: Tensor, axes: number | number[]): Tensor {
  return record(V.flip(x, axes), 'flip', [x], (g) => [V.flip(g, axes)]);
}

/** A contiguous copy when needed (identity for gradients). */
export function contiguous(x: Tensor): Tensor {
  if (x.isContiguous()) return x;
  return record(K.copy(x), 'contiguous', [x], (g) => [g]);
}

/** Concatenation along `axis`. */
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new ShapeError('concat: no tensors given');
  const a = normAxis(axis, xs[0].ndim, 'concat');
  const out = K.concat(xs, a);
  return record(out, 'concat', xs, (g) => {
    let at = 0;
    return xs.map((t) => {
      const piece = V.narrow(g, a, at, t.shape[a]);
      at += t.shape[a];
      return piece;
    });
  });
}

/** Stacks equal-shaped tensors along a new axis. */
export function stack(xs: readonly Tensor[], axis = 0): Tensor {
  return concat(
    xs.map((t) => unsqueeze(t, axis)),
    axis,
  );
}

/**
 * Records several outputs of one computation (`pieces`, e.g. views into one packed result) as a
 * single tape node, so that their gradients come back together: `backward` receives one gradient
 * per piece (null for a piece none flowed to) and returns one per input, like `record`'s.
 *
 * The tape has one-output nodes only, so the pieces hang off a 0-d hub node: each piece's backward
 * parks its gradient and passes the hub a 0-d zero (the engine sums those, a scalar add); the hub
 * comes after every piece in reverse topological order, and its backward hands the parked
 * gradients to `backward` and clears them. First-order only, like every backward here. In a
 * resident scope (tensor/backends/cpu/resident.ts) the parked gradients' blocks are kept until
 * the scope ends: the engine cannot see that the hub still reads them.
 */
export function recordPieces(pieces: Tensor[], name: string, inputs: readonly Tensor[], backward: (gs: (Tensor | null)[]) => (Tensor | null)[]): Tensor[] {
  if (!isGradEnabled() || !inputs.some((t) => t.requiresGrad)) return pieces;
  const parked: (Tensor | null)[] = pieces.map(() => null);
  const dtype = pieces[0]?.dtype ?? inputs[0].dtype;
  const token = scalar(0, dtype); // what each piece passes the hub
  const hub = record(scalar(0, dtype), name, inputs, () => {
    const gs = parked.slice();
    parked.fill(null);
    return backward(gs);
  });
  return pieces.map((p, i) =>
    record(p, `${name}[${i}]`, [hub], (g) => {
      parked[i] = g;
      residentProtect(g); // the engine would free it early (it looks consumed); kept to the scope's end
      return [token];
    }),
  );
}

/**
 * Splits along `axis` into pieces of the given sizes (views). Backward: one concat of the pieces'
 * gradients (a zero view for a piece without one) instead of a padded copy per piece summed.
 */
export function split(x: Tensor, sizes: readonly number[], axis: number): Tensor[] {
  const a = normAxis(axis, x.ndim, 'split');
  const totalSize = sizes.reduce((p, s) => p + s, 0);
  if (totalSize !== x.shape[a]) throw new ShapeError(`split: sizes [${sizes}] do not sum to ${x.shape[a]} (axis ${axis} of [${x.shape}])`);
  let at = 0;
  const pieces = sizes.map((s) => {
    const piece = V.narrow(x, a, at, s);
    at += s;
    return piece;
  });
  return recordPieces(pieces, 'split', [x], (gs) => {
    const zero = scalar(0, x.dtype);
    return [
      K.concat(
        gs.map((g, i) => g ?? V.expand(zero, pieces[i].shape)),
        a,
      ),
    ];
  });
}

/** Splits along `axis` into `n` equal chunks (the last may be smaller, as torch.chunk). */
export function chunk(x: Tensor, n: number, axis: number): Tensor[] {
  const a = normAxis(axis, x.ndim, 'chunk');
  const step = Math.ceil(x.shape[a] / n);
  const sizes: number[] = [];
  for (let left = x.shape[a]; left > 0; left -= step) sizes.push(Math.min(step, left));
  return split(x, sizes, a);
}

/** Constant padding `pads[i] = [before, after]` per axis (negative crops). */
export function pad(x: Tensor, pads: readonly (readonly [number, number])[], value = 0): Tensor {
  const out = K.pad(x, pads, value);
  return record(out, 'pad', [x], (g) => [
    K.pad(
      g,
      pads.map(([b, a]) => [-b, -a] as [number, number]),
      0,
    ),
  ]);
}
