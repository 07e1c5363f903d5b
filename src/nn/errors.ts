/** Typed errors of the nn floor. */

/** An invalid module configuration (bad option value or combination). */
export class ConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigError';
  }
}

/** A state dict that does not fit a module (missing/unexpected keys, shape mismatch). */
export class StateDictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StateDictError';
  }
}
