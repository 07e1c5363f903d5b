/**
 * Token vocabularies in fairseq's layout (docs/MEGA.md §8.1): `<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3, then
 * the regular symbols from id 4.
 *
 * Two kinds are used here:
 * - a symbol {@link Dictionary} (ListOps: tokens split on whitespace), which can also parse a fairseq
 *   `dict.txt` (`<symbol> <count>` per line) so that the reference's frequency-sorted dictionaries load
 *   with the same ids;
 * - the byte-level vocabulary for text tasks: byte `b` ↦ id `b + 4` ({@link encodeBytes}), 260 ids.
 */

import { DataError } from './errors.js';

/** Id of `<s>` (beginning of sentence). */
export const BOS = 0;
/** Id of `<pad>`. */
export const PAD = 1;
/** Id of `</s>` (end of sentence; also the first decoder input). */
export const EOS = 2;
/** Id of `<unk>`. */
export const UNK = 3;
/** Number of special symbols; the first regular symbol has this id. */
export const NUM_SPECIALS = 4;
/** Names of the special symbols in id order. */
export const SPECIAL_SYMBOLS: readonly string[] = ['<s>', '<pad>', '</s>', '<unk>'];

/** Offset of byte ids in the byte-level vocabulary: byte `b` has id `b + BYTE_OFFSET`. */
export const BYTE_OFFSET = NUM_SPECIALS;
/** Size of the byte-level vocabulary: 4 specials + 256 bytes. */
export const BYTE_VOCAB_SIZE = NUM_SPECIALS + 256;

/** Options of the encoders. */
export interface EncodeOptions {
  /** Append `</s>` (fairseq's binarizer does by default). Default true. */
  appendEos?: boolean;
  /** Keep only the first `maxLength` ids (after appending `</s>`, as the reference truncates). */
  maxLength?: number;
}

function finish(ids: number[] | Int32Array, n: number, opts: EncodeOptions | undefined): Int32Array {
  const appendEos = opts?.appendEos ?? true;
  const total = n + (appendEos ? 1 : 0);
  const max = opts?.maxLength;
  if (max !== undefined && !(Number.isInteger(max) && max >= 1)) {
    throw new DataError(`maxLength = ${max}: expected an integer >= 1`);
  }
  const len = max === undefined ? total : Math.min(total, max);
  const out = new Int32Array(len);
  for (let i = 0; i < Math.min(n, len); i++) out[i] = ids[i]!;
  if (appendEos && n < len) out[n] = EOS;
  return out;
}

/** fairseq-style symbol dictionary (specials first, then symbols in insertion order). */
export class Dictionary {
  /** Id of `<s>`. */
  readonly bos = BOS;
  /** Id of `<pad>`. */
  readonly pad = PAD;
  /** Id of `</s>`. */
  readonly eos = EOS;
  /** Id of `<unk>`. */
  readonly unk = UNK;
  private readonly symbols: string[] = [...SPECIAL_SYMBOLS];
  private readonly ids = new Map<string, number>(SPECIAL_SYMBOLS.map((s, i) => [s, i]));

  /** @param symbols regular symbols, added in order after the specials (duplicates ignored) */
  constructor(symbols: Iterable<string> = []) {
    for (const s of symbols) this.addSymbol(s);
  }

  /**
   * Parse a fairseq `dict.txt`: one `<symbol> <count>` per line (count ignored; a trailing
   * `#fairseq:overwrite` flag is accepted). Ids follow line order from 4.
   * @param text file contents
   * @param name file name for error messages
   */
  static parse(text: string, name = 'dict.txt'): Dictionary {
    const d = new Dictionary();
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.replace(/\r$/, '').replace(/ #fairseq:overwrite$/, '');
      if (line.trim() === '') continue;
      const sp = line.lastIndexOf(' ');
      if (sp <= 0 || !/^\d+$/.test(line.slice(sp + 1))) {
        throw new DataError(`${name}:${i + 1}: expected "<symbol> <count>", got ${JSON.stringify(line.slice(0, 40))}`);
      }
      d.addSymbol(line.slice(0, sp));
    }
    return d;
  }

  /** Number of ids (specials included). */
  get size(): number {
    return this.symbols.length;
  }

  /** Add a symbol if absent; returns its id. */
  addSymbol(symbol: string): number {
    const old = this.ids.get(symbol);
    if (old !== undefined) return old;
    const id = this.symbols.length;
    this.symbols.push(symbol);
    this.ids.set(symbol, id);
    return id;
  }

  /** Whether the symbol is in the dictionary. */
  has(symbol: string): boolean {
    return this.ids.has(symbol);
  }

  /** Id of a symbol, `<unk>` (3) when absent. */
  index(symbol: string): number {
    return this.ids.get(symbol) ?? UNK;
  }

  /** Symbol of an id. @throws DataError for an id outside `[0, size)` */
  symbol(id: number): string {
    const s = this.symbols[id];
    if (s === undefined) throw new DataError(`token id ${id}: expected an id in [0, ${this.size})`);
    return s;
  }

  /** Encode a list of symbols (unknown ones ↦ `<unk>`); appends `</s>` unless `appendEos: false`. */
  encode(tokens: readonly string[], opts?: EncodeOptions): Int32Array {
    const ids = tokens.map((t) => this.index(t));
    return finish(ids, ids.length, opts);
  }

  /** Split a line on whitespace and {@link encode} it. */
  encodeLine(line: string, opts?: EncodeOptions): Int32Array {
    const toks = line.split(/\s+/).filter((t) => t !== '');
    return this.encode(toks, opts);
  }

  /** Decode ids to symbols; `<pad>` and `</s>` are dropped unless `keepSpecials`. */
  decode(ids: ArrayLike<number>, keepSpecials = false): string[] {
    const out: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!keepSpecials && (id === PAD || id === EOS)) continue;
      out.push(this.symbol(id));
    }
    return out;
  }

  /** Decode to one space-joined string. */
  decodeLine(ids: ArrayLike<number>, keepSpecials = false): string {
    return this.decode(ids, keepSpecials).join(' ');
  }

  /** Symbols in id order (specials included); a copy. */
  toArray(): string[] {
    return [...this.symbols];
  }
}

/**
 * Encode bytes (e.g. UTF-8 text) in the byte-level vocabulary: byte `b` ↦ `b + 4`; appends `</s>`
 * unless `appendEos: false`, then truncates to `maxLength`.
 */
export function encodeBytes(bytes: Uint8Array, opts?: EncodeOptions): Int32Array {
  const n = bytes.length;
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) ids[i] = bytes[i]! + BYTE_OFFSET;
  return finish(ids, n, opts);
}

/** Encode a string's UTF-8 bytes with {@link encodeBytes}. */
export function encodeText(text: string, opts?: EncodeOptions): Int32Array {
  return encodeBytes(new TextEncoder().encode(text), opts);
}

/**
 * Decode byte-level ids back to bytes; special ids (0..3) are skipped.
 * @throws DataError for an id outside `[0, 260)`
 */
export function decodeBytes(ids: ArrayLike<number>): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id < NUM_SPECIALS) continue;
    if (id >= BYTE_VOCAB_SIZE || !Number.isInteger(id)) {
      throw new DataError(`byte token id ${id}: expected an id in [0, ${BYTE_VOCAB_SIZE})`);
    }
    out.push(id - BYTE_OFFSET);
  }
  return Uint8Array.from(out);
}

/** Decode byte-level ids to a string (UTF-8, invalid sequences replaced). */
export function decodeText(ids: ArrayLike<number>): string {
  return new TextDecoder().decode(decodeBytes(ids));
}

/**
 * A {@link Dictionary} equivalent to the byte vocabulary: symbols are the byte values in decimal
 * (`"0"`..`"255"`) at ids 4..259, so that `dict.index(String(b)) === b + 4`.
 */
export function byteDictionary(): Dictionary {
  return new Dictionary(Array.from({ length: 256 }, (_, b) => String(b)));
}
