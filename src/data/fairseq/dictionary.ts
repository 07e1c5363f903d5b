/**
 * fairseq's `dict.txt`: one `<symbol> <count>` per line (split at the last space), UTF-8. The
 * four specials are not written: index 0 `<s>`, 1 `<pad>`, 2 `</s>`, 3 `<unk>`; the symbol on
 * line k (0-based) has index 4 + k. Line binarization (`encodeLine`) follows `fairseq-preprocess`:
 * whitespace runs become one space, the line is stripped and split, unknown tokens map to `<unk>`,
 * and `</s>` is appended.
 */
import { DataError } from '../errors.js';
import { bytesToString, readBytes } from '../files.js';

/** fairseq's special symbols and their indices. */
export const SPECIALS = ['<s>', '<pad>', '</s>', '<unk>'] as const;
/** Index of `<s>`. */
export const BOS = 0;
/** Index of `<pad>`. */
export const PAD = 1;
/** Index of `</s>`. */
export const EOS = 2;
/** Index of `<unk>`. */
export const UNK = 3;

/** A fairseq dictionary. */
export class Dictionary {
  /** Symbols by index (specials first). */
  readonly symbols: string[];
  /** Counts by index (0 for the specials). */
  readonly counts: number[];
  private readonly index = new Map<string, number>();

  constructor(readonly path: string) {
    this.symbols = [...SPECIALS];
    this.counts = SPECIALS.map(() => 0);
    this.symbols.forEach((s, i) => this.index.set(s, i));
  }

  /** Number of entries, specials included. */
  get size(): number {
    return this.symbols.length;
  }

  /** Index of a symbol, or `<unk>`. */
  indexOf(sym: string): number {
    return this.index.get(sym) ?? UNK;
  }

  /** Whether the symbol is in the dictionary. */
  has(sym: string): boolean {
    return this.index.has(sym);
  }

  /** Appends a symbol (as the LRA task appends `<CLS>`); returns its index. @throws DataError if present */
  add(sym: string, count = 1): number {
    if (this.index.has(sym)) throw new DataError(`${this.path}: symbol ${JSON.stringify(sym)} appears twice (expected each symbol once)`);
    this.index.set(sym, this.symbols.length);
    this.symbols.push(sym);
    this.counts.push(count);
    return this.symbols.length - 1;
  }

  /** Binarizes one text line as `fairseq-preprocess` does (`</s>` appended). */
  encodeLine(line: string): Int32Array {
    const words = line.replace(/\s+/g, ' ').trim();
    const toks = words === '' ? [] : words.split(' ');
    const out = new Int32Array(toks.length + 1);
    toks.forEach((t, i) => (out[i] = this.indexOf(t)));
    out[toks.length] = EOS;
    return out;
  }
}

/**
 * Reads a `dict.txt`.
 * @throws DataError (naming the file and line) for an unreadable file, a line without
 *   `<symbol> <count>`, a count that is not a non-negative integer, or a duplicate symbol
 */
export function readDictionary(path: string): Dictionary {
  const text = bytesToString(readBytes(path));
  const d = new Dictionary(path);
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((raw, k) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const sp = line.lastIndexOf(' ');
    const where = `${path}:${k + 1}`;
    if (sp <= 0) throw new DataError(`${where}: ${JSON.stringify(line)} is not "<symbol> <count>" (expected a symbol, a space and a count)`);
    const sym = line.slice(0, sp);
    let countText = line.slice(sp + 1);
    if (countText === '#fairseq:overwrite') countText = '0';
    if (!/^\d+$/.test(countText)) throw new DataError(`${where}: count ${JSON.stringify(countText)} of ${JSON.stringify(sym)} is not a non-negative integer`);
    if (d.has(sym)) throw new DataError(`${where}: duplicate symbol ${JSON.stringify(sym)} (first at index ${d.indexOf(sym)}; expected each symbol once)`);
    d.add(sym, Number(countText));
  });
  return d;
}
