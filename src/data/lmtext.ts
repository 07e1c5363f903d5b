/**
 * Byte-level language-modelling data from any text file (docs/MEGA.md §8.3 conventions).
 *
 * The file becomes a token stream: by default each line's bytes (`b ↦ b + 4`) followed by `</s>`
 * (fairseq appends `</s>` per line and drops the newline); with `lineEos: false` the raw bytes, newlines
 * included. The stream is split into train / valid by fraction (train first), then each part is cut
 * into contiguous blocks of `blockSize` tokens (the last one may be shorter). For a block
 * `t0 … t_{n−1}`: input `tokens = [</s>, t0, …, t_{n−2}]`, `target = [t0, …, t_{n−1}]`.
 */

import type { TokenExample } from './batch.js';
import { DataError } from './errors.js';
import { checkInt, readBytes } from './files.js';
import { BYTE_OFFSET, BYTE_VOCAB_SIZE, EOS } from './vocab.js';

/** Options of {@link readLmText}. */
export interface LmTextOptions {
  /** Tokens per block (> 0). */
  blockSize: number;
  /** Fraction of the stream (its end) used for validation, in `[0, 1)`. Default 0.1. */
  validFraction?: number;
  /** Replace each newline by `</s>` (and end the last line with one). Default true. */
  lineEos?: boolean;
}

/** A split LM corpus. */
export interface LmTextData {
  /** Training blocks. */
  train: TokenExample[];
  /** Validation blocks (empty when `validFraction` is 0). */
  valid: TokenExample[];
  /** Tokens in the whole stream. */
  numTokens: number;
  /** Vocabulary size (260: 4 specials + 256 bytes). */
  vocabSize: number;
}

/** Byte-level token stream of a buffer (see the module comment for `lineEos`). */
export function bytesToLmStream(buf: Uint8Array, lineEos = true): Int32Array {
  if (!lineEos) {
    const out = new Int32Array(buf.length);
    for (let i = 0; i < buf.length; i++) out[i] = buf[i]! + BYTE_OFFSET;
    return out;
  }
  const endsWithNl = buf.length > 0 && buf[buf.length - 1] === 0x0a;
  const out = new Int32Array(buf.length + (endsWithNl || buf.length === 0 ? 0 : 1));
  for (let i = 0; i < buf.length; i++) out[i] = buf[i] === 0x0a ? EOS : buf[i]! + BYTE_OFFSET;
  if (!endsWithNl && buf.length > 0) out[buf.length] = EOS;
  return out;
}

/**
 * Cut a token stream into contiguous blocks of `blockSize` with the `</s>`-shifted input.
 * @throws DataError for a bad block size
 */
export function makeLmBlocks(stream: Int32Array, blockSize: number): TokenExample[] {
  checkInt('blockSize', blockSize);
  const out: TokenExample[] = [];
  for (let s = 0; s < stream.length; s += blockSize) {
    const target = stream.slice(s, Math.min(stream.length, s + blockSize));
    const tokens = new Int32Array(target.length);
    tokens[0] = EOS;
    tokens.set(target.subarray(0, target.length - 1), 1);
    out.push({ tokens, target });
  }
  return out;
}

/**
 * Read a text file as byte-level LM blocks, split into train / valid.
 * @throws DataError for an unreadable or empty file, a bad block size or fraction, or a stream too
 *   short to give both splits a token
 */
export function readLmText(path: string, opts: LmTextOptions): LmTextData {
  checkInt('blockSize', opts.blockSize);
  const f = opts.validFraction ?? 0.1;
  if (!(f >= 0 && f < 1)) throw new DataError(`validFraction = ${f}: expected a number in [0, 1)`);
  const stream = bytesToLmStream(readBytes(path), opts.lineEos ?? true);
  if (stream.length === 0) throw new DataError(`${path}: empty file (expected text)`);
  let cut = stream.length;
  if (f > 0) {
    if (stream.length < 2) throw new DataError(`${path}: ${stream.length} token(s), too few to split (expected >= 2)`);
    cut = Math.min(stream.length - 1, Math.max(1, Math.round(stream.length * (1 - f))));
  }
  return {
    train: makeLmBlocks(stream.subarray(0, cut), opts.blockSize),
    valid: makeLmBlocks(stream.subarray(cut), opts.blockSize),
    numTokens: stream.length,
    vocabSize: BYTE_VOCAB_SIZE,
  };
}
