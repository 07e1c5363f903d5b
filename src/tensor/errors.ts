/** Typed errors of the tensor floor. Every message names the op, the offending values and what was expected. */

/** Base class of every tensor-level error. */
export class TensorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Shapes that do not fit the op (mismatch, bad reshape, non-broadcastable). */
export class ShapeError extends TensorError {}

/** An axis or index out of range. */
export class IndexError extends TensorError {}

/** A dtype the op does not accept, or two operands of different dtypes. */
export class DTypeError extends TensorError {}
