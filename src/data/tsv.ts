/**
 * Byte-level LRA text tasks from TSV files:
 * - classification (IMDB-style): `label<TAB>text` per line;
 * - retrieval (AAN-style, dual input): `label<TAB>text1<TAB>text2` (LRA's original 5-column layout
 *   `label<TAB>id1<TAB>id2<TAB>text1<TAB>text2` is accepted too).
 *
 * Text is taken as raw UTF-8 bytes, byte `b` ↦ id `b + 4` ({@link encodeBytes}); `</s>` is appended
 * (fairseq's binarizer default) and sequences are truncated to `maxLength` keeping the first tokens
 * (docs/MEGA.md §8.1). Labels are integers.
 */

import type { TokenExample } from './batch.js';
import { DataError } from './errors.js';
import { bytesToString, checkInt, parseLabel, readMaybeGzip, splitLines, splitTabs } from './files.js';
import { encodeBytes } from './vocab.js';

/** Options of the TSV readers. */
export interface TsvOptions {
  /** Keep at most this many tokens per text (`</s>` included). Default: no limit. */
  maxLength?: number;
  /** Labels must be in `[0, numClasses)`. Default: any integer >= 0. */
  numClasses?: number;
  /** Append `</s>` to each text (default true). */
  appendEos?: boolean;
  /** Skip the first non-blank line (a header). Default false. */
  header?: boolean;
}

interface Row {
  where: string;
  line: Uint8Array;
}

function readRows(path: string, header: boolean): Row[] {
  const buf = readMaybeGzip(path);
  const lines = splitLines(buf);
  const rows = (header ? lines.slice(1) : lines).map((l) => ({ where: `${path}:${l.lineNo}`, line: buf.subarray(l.start, l.end) }));
  if (rows.length === 0) throw new DataError(`${path}: no examples (expected at least one non-blank line)`);
  return rows;
}

function check(opts: TsvOptions): void {
  checkInt('maxLength', opts.maxLength);
  checkInt('numClasses', opts.numClasses);
}

/**
 * Read a classification TSV (`label<TAB>text`; the text may itself contain tabs, which are kept).
 * @returns one {@link TokenExample} (`tokens`, `label`) per non-blank line
 * @throws DataError for an unreadable/empty file, a missing text column or a bad label
 */
export function readClassificationTsv(path: string, opts: TsvOptions = {}): TokenExample[] {
  check(opts);
  const enc = { appendEos: opts.appendEos ?? true, maxLength: opts.maxLength };
  return readRows(path, opts.header ?? false).map(({ where, line }) => {
    const tab = line.indexOf(0x09);
    if (tab < 0) throw new DataError(`${where}: expected "label<TAB>text", found no tab`);
    const label = parseLabel(bytesToString(line.subarray(0, tab)), where, opts.numClasses);
    return { tokens: encodeBytes(line.subarray(tab + 1), enc), label };
  });
}

/**
 * Read a retrieval TSV (`label<TAB>text1<TAB>text2`, or 5 columns `label id1 id2 text1 text2`).
 * @returns examples with `tokens` (text1), `tokens2` (text2) and `label`
 * @throws DataError for an unreadable/empty file, a wrong column count or a bad label
 */
export function readRetrievalTsv(path: string, opts: TsvOptions = {}): TokenExample[] {
  check(opts);
  const enc = { appendEos: opts.appendEos ?? true, maxLength: opts.maxLength };
  return readRows(path, opts.header ?? false).map(({ where, line }) => {
    const cols = splitTabs(line);
    if (cols.length !== 3 && cols.length !== 5) {
      throw new DataError(`${where}: expected 3 columns "label<TAB>text1<TAB>text2" (or 5 with ids), got ${cols.length}`);
    }
    const label = parseLabel(bytesToString(cols[0]!), where, opts.numClasses);
    const [t1, t2] = cols.length === 3 ? [cols[1]!, cols[2]!] : [cols[3]!, cols[4]!];
    return { tokens: encodeBytes(t1, enc), tokens2: encodeBytes(t2, enc), label };
  });
}
