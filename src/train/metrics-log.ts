/**
 * JSON Lines metrics log: one JSON object per line, appended with a single synchronous write so a
 * crash leaves at most a missing last line, never a half-written file. Non-finite numbers are
 * written as `null` (JSON has no NaN/Infinity).
 */

import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { DataError, errorText } from '../data/errors.js';

/** One metrics record (e.g. `{update, epoch, loss, lr, wps}`). */
export type MetricsRecord = Record<string, unknown>;

/** Appends metrics records to a `.jsonl` file. */
export class MetricsLog {
  /**
   * @param path the `.jsonl` file (parent folders are created)
   * @param truncate start a fresh file instead of appending to an existing one (default false)
   */
  constructor(
    readonly path: string,
    truncate = false,
  ) {
    mkdirSync(dirname(path), { recursive: true });
    if (truncate) writeFileSync(path, '');
  }

  /** Append one record as one line. */
  write(record: MetricsRecord): void {
    const line = JSON.stringify(record, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v));
    appendFileSync(this.path, `${line}\n`);
  }
}

/**
 * Read all records of a JSON Lines file (blank lines skipped).
 * @throws DataError for an unreadable file or a line that is not a JSON object
 */
export function readMetricsLog(path: string): MetricsRecord[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new DataError(`${path}: cannot read metrics log (${errorText(e)})`, { cause: e });
  }
  const out: MetricsRecord[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw new DataError(`${path}:${i + 1}: invalid JSON (expected one object per line)`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      throw new DataError(`${path}:${i + 1}: expected a JSON object per line`);
    }
    out.push(v as MetricsRecord);
  });
  return out;
}
