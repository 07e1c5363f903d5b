/**
 * The one error base class of mega-ts (floor 0: imports nothing).
 *
 * Every error the project throws on purpose is a {@link MegaError}. Its `kind` says who must act:
 * - `user`: the input was wrong (an option, a file, a configuration, a shape that came from data).
 *   The CLI prints the message as one line and exits with 2.
 * - `internal`: the run failed for another reason (a lost distributed rank, a diverged training run,
 *   a kernel missing on a backend). The CLI prints the message and exits with 1.
 *
 * Subclasses fix their kind; a single throw may override it with `{ kind }`.
 */

/** Who must act on an error: the user (bad input, exit 2) or the program (exit 1). */
export type ErrorKind = 'user' | 'internal';

/** Options of every mega-ts error constructor. */
export interface MegaErrorOptions {
  /** Underlying error (filesystem, zlib, msgpack, ...). */
  cause?: unknown;
  /** Overrides the class's default kind for this one error. */
  kind?: ErrorKind;
}

/** Base class of every typed error; the class name becomes `name`. */
export class MegaError extends Error {
  /** Default kind of the class; subclasses override it. */
  static readonly kind: ErrorKind = 'internal';
  /** Who must act on this error. */
  readonly kind: ErrorKind;

  /**
   * @param message one line: what is wrong, the offending value, what was expected
   * @param options optional `cause` and `kind`
   */
  constructor(message: string, options: MegaErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.kind = options.kind ?? (new.target as unknown as typeof MegaError).kind;
  }
}

/** True when `e` is a mega-ts error caused by the user's input (CLI exit code 2). */
export function isUserError(e: unknown): e is MegaError {
  return e instanceof MegaError && e.kind === 'user';
}
