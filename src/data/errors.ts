/**
 * Typed error of the data floor (`src/data`).
 *
 * Every message is one line that names the offending file / value and what was expected, e.g.
 * `data/train.tsv:12: label "x" is not an integer (expected 0..9)`.
 */

import { MegaError } from '../errors.js';

/**
 * Raised for empty data sets, labels out of range, malformed or unreadable files and invalid
 * reader / generator options.
 */
export class DataError extends MegaError {
  static override readonly kind = 'user';
}

/** Short message of an unknown thrown value (for wrapping filesystem / zlib errors). */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message.split('\n')[0]! : String(e);
}
