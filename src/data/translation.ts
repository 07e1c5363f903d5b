/**
 * Byte-level translation pairs from a TSV file `source<TAB>target` (docs/MEGA.md §8.4 conventions):
 * - `tokens` = source bytes + `</s>`;
 * - `prevOutputTokens` = `[</s>, y0, …, y_{n−1}]` (teacher-forcing decoder input);
 * - `target` = `[y0, …, y_{n−1}, </s>]`.
 */

import type { TokenExample } from './batch.js';
import { DataError } from './errors.js';
import { checkInt, readMaybeGzip, splitLines, splitTabs } from './files.js';
import { encodeBytes, EOS } from './vocab.js';

/** Options of {@link readTranslationTsv}. */
export interface TranslationOptions {
  /** Max source tokens (`</s>` included; the first tokens are kept). Default: no limit. */
  maxSourceLength?: number;
  /** Max target tokens (`</s>` included). Default: no limit. */
  maxTargetLength?: number;
}

/**
 * Build a translation example from byte strings.
 * @param maxSourceLength / maxTargetLength truncation (the `</s>` stays the last token)
 */
export function makeTranslationExample(src: Uint8Array, tgt: Uint8Array, maxSourceLength?: number, maxTargetLength?: number): TokenExample {
  const s = src.subarray(0, maxSourceLength === undefined ? src.length : maxSourceLength - 1);
  const t = tgt.subarray(0, maxTargetLength === undefined ? tgt.length : maxTargetLength - 1);
  const tokens = encodeBytes(s);
  const target = encodeBytes(t); // [y0 … y_{n−1}, </s>]
  const prevOutputTokens = new Int32Array(target.length);
  prevOutputTokens[0] = EOS;
  prevOutputTokens.set(target.subarray(0, target.length - 1), 1);
  return { tokens, prevOutputTokens, target };
}

/**
 * Read `source<TAB>target` pairs.
 * @throws DataError for an unreadable/empty file or a line without exactly one tab
 */
export function readTranslationTsv(path: string, opts: TranslationOptions = {}): TokenExample[] {
  checkInt('maxSourceLength', opts.maxSourceLength);
  checkInt('maxTargetLength', opts.maxTargetLength);
  const buf = readMaybeGzip(path);
  const out = splitLines(buf).map((l) => {
    const cols = splitTabs(buf.subarray(l.start, l.end));
    if (cols.length !== 2) {
      throw new DataError(`${path}:${l.lineNo}: expected 2 columns "source<TAB>target", got ${cols.length}`);
    }
    return makeTranslationExample(cols[0]!, cols[1]!, opts.maxSourceLength, opts.maxTargetLength);
  });
  if (out.length === 0) throw new DataError(`${path}: no examples (expected at least one "source<TAB>target" line)`);
  return out;
}
