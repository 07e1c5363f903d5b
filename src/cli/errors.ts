import { MegaError } from '../errors.js';

/** CLI usage errors: printed as one line, exit code 2. */
export class UsageError extends MegaError {
  static override readonly kind = 'user';
}
