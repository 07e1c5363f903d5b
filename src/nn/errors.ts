/** Typed errors of the nn floor. */

import { MegaError } from '../errors.js';

/** An invalid module configuration (bad option value or combination). */
export class ConfigError extends MegaError {
  static override readonly kind = 'user';
}

/** A state dict that does not fit a module (missing/unexpected keys, shape mismatch). */
export class StateDictError extends MegaError {
  static override readonly kind = 'user';
}
