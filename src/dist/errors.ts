/**
 * Errors of the distributed floor.
 *
 * - {@link DistConfigError} : a launch the user got wrong — malformed launcher
 *   variables, a world size or a model that differs across ranks. The CLI prints one line and exits
 *   with 2, like every other configuration error.
 * - {@link DistError}: the job failed while running — a rank was lost (its process exited or was
 *   killed), stopped answering within `--dist-timeout`, or the ranks disagreed on the sequence of
 *   collectives. `lostRank` names the rank at fault when one is known. Exit code 1.
 */

import { MegaError } from '../errors.js';

/** A distributed launch that is misconfigured (user error; exit code 2). */
export class DistConfigError extends MegaError {
  static override readonly kind = 'user';
}

/** A distributed job that failed at run time (exit code 1). */
export class DistError extends MegaError {
  /** The rank whose loss caused the failure, when known. */
  readonly lostRank: number | null;
  constructor(message: string, lostRank: number | null = null) {
    super(message);
    this.lostRank = lostRank;
  }
}
