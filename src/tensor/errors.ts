/** Typed errors of the tensor floor. Every message names the op, the offending values and what was expected. */

import { MegaError } from '../errors.js';

/** Base class of every tensor-level error (a program error unless a subclass says otherwise). */
export class TensorError extends MegaError {}

/** Shapes that do not fit the op (mismatch, bad reshape, non-broadcastable); usually shapes that came from data or a checkpoint. */
export class ShapeError extends TensorError {
  static override readonly kind = 'user';
}

/** An axis or index out of range. */
export class IndexError extends TensorError {}

/** A dtype the op does not accept, or two operands of different dtypes. */
export class DTypeError extends TensorError {}
