/**
 * The vocabulary a task's training used, for checkpoints that carry none (a mega-ts checkpoint
 * stores the vocabulary size, not the symbols): byte-level for text, retrieval, LM and
 * translation; the ListOps symbols for ListOps (given by the host, see host/node.ts).
 */
import { BYTE_VOCAB_SIZE, Dictionary, byteDictionary } from '../data/vocab.js';
import type { TokenizerConfig } from './config.js';

/** A vocabulary and how text maps onto it. */
export interface Vocabulary {
  dict: Dictionary;
  tokenizer: TokenizerConfig;
}

/** The symbol LRA tasks append to the dictionary at load time (counted in the model's vocabulary). */
export const CLS_SYMBOL = '<CLS>';

/**
 * The vocabulary of a byte-level task, or null when `task` / `size` do not describe one.
 * @param size the model's `dictionary_size`
 */
export function byteVocabulary(task: string, size: number): Vocabulary | null {
  const lra = task === 'text' || task === 'retrieval';
  if (!lra && task !== 'lm' && task !== 'translation') return null;
  const dict = byteDictionary();
  if (lra) dict.addSymbol(CLS_SYMBOL);
  if (dict.size !== size) return null;
  return { dict, tokenizer: { type: 'bytes', append_eos: task !== 'lm' } };
}

/** Whether `size` is a byte-level vocabulary size (260, or 261 with `<CLS>`). */
export function isByteSize(size: number): boolean {
  return size === BYTE_VOCAB_SIZE || size === BYTE_VOCAB_SIZE + 1;
}
