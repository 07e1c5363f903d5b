/**
 * Text ↔ token ids for a loaded model: the vocabulary (fairseq dict.txt: `<s>`=0, `<pad>`=1,
 * `</s>`=2, `<unk>`=3, then the symbols) and the tokenizer settings of config.json.
 */
import { BYTE_OFFSET, BYTE_VOCAB_SIZE, Dictionary, EOS, NUM_SPECIALS, decodeText } from '../data/vocab.js';
import { ConfigError } from '../nn/errors.js';
import type { TokenizerConfig } from './config.js';

/** Encodes text for a model and decodes its output ids. */
export class Tokenizer {
  /**
   * @param dict the vocabulary (its size is the model's `dictionary_size`)
   * @param config how text is split (bytes or words) and whether `</s>` is appended
   * @param label where the vocabulary came from (for messages)
   * @throws ConfigError when a byte vocabulary does not list the bytes "0".."255" at ids 4..259
   */
  constructor(
    readonly dict: Dictionary,
    readonly config: TokenizerConfig,
    label = 'dict.txt',
  ) {
    if (config.type === 'bytes') {
      if (dict.size < BYTE_VOCAB_SIZE)
        throw new ConfigError(`${label}: a byte-level vocabulary needs ${BYTE_VOCAB_SIZE} symbols (4 specials + bytes "0".."255"), got ${dict.size}`);
      for (let b = 0; b < 256; b++) {
        if (dict.symbol(b + BYTE_OFFSET) !== String(b)) {
          throw new ConfigError(
            `${label}: id ${b + BYTE_OFFSET} is ${JSON.stringify(dict.symbol(b + BYTE_OFFSET))}, expected the byte "${b}" (byte-level vocabulary)`,
          );
        }
      }
    }
  }

  /** Number of ids (specials included). */
  get size(): number {
    return this.dict.size;
  }

  /**
   * Token ids of `text`; `</s>` appended when the config says so (or `appendEos` overrides).
   */
  encode(text: string, { appendEos = this.config.append_eos }: { appendEos?: boolean } = {}): number[] {
    let ids: number[];
    if (this.config.type === 'bytes') {
      ids = Array.from(new TextEncoder().encode(text), (b) => b + BYTE_OFFSET);
    } else if (this.config.type === 'words') {
      const ignore = new Set(this.config.ignore ?? []);
      ids = text
        .split(/\s+/)
        .filter((t) => t !== '' && !ignore.has(t))
        .map((t) => this.dict.index(t));
    } else {
      throw new ConfigError('this model reads numbers, not text: pass an array of values');
    }
    if (appendEos) ids.push(EOS);
    return ids;
  }

  /** Text of output ids (specials dropped). */
  decode(ids: ArrayLike<number>): string {
    const keep = Array.from(ids).filter((i) => i >= NUM_SPECIALS && i < this.dict.size);
    if (this.config.type === 'bytes') return decodeText(keep.filter((i) => i < BYTE_VOCAB_SIZE));
    return this.dict.decode(keep).join(' ');
  }

  /** The vocabulary as a fairseq dict.txt (specials and every symbol in id order, count 1; specials flagged `#fairseq:overwrite`). */
  toDictText(): string {
    return (
      this.dict
        .toArray()
        .map((s, i) => (i < NUM_SPECIALS ? `${s} 1 #fairseq:overwrite` : `${s} 1`))
        .join('\n') + '\n'
    );
  }
}
