/** The `--dict FILE` option of `mega generate` / `mega export`: a fairseq `dict.txt`, read bounded. */
import { Dictionary } from '../data/vocab.js';
import { readBytes } from '../data/files.js';
import { UsageError } from './errors.js';

/**
 * Reads and parses `--dict FILE` (regular files only: `/dev/zero` would never end).
 * @throws UsageError naming the option and the file; DataError for a malformed dictionary
 */
export function readDictOption(path: string): Dictionary {
  let bytes: Uint8Array;
  try {
    bytes = readBytes(path);
  } catch (e) {
    throw new UsageError(`--dict ${(e as Error).message}`, { cause: e });
  }
  return Dictionary.parse(new TextDecoder().decode(bytes), path);
}
