/** Bounded whole-file reading for the model and reference readers. */
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import type { IoErrorClass } from './errors.js';

/** Largest file the readers load whole (Node's limit for one read). */
export const MAX_FILE_BYTES = 2 ** 31 - 1;

/**
 * Reads a whole file, refusing devices, pipes and sockets (`/dev/zero` would never end) and files
 * over `maxBytes` before reading. A folder or a missing file throws Node's own error (callers add
 * their context).
 * @throws `Err` for a non-regular or too large file; node:fs errors otherwise
 */
export function readFileBounded(path: string, Err: IoErrorClass, maxBytes = MAX_FILE_BYTES): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const st = fstatSync(fd);
    if (!st.isFile() && !st.isDirectory()) throw new Err(`${path}: not a regular file (a device, pipe or socket); expected a file`);
    if (st.size > maxBytes) throw new Err(`${path}: ${st.size} bytes, more than the ${maxBytes}-byte limit of one file`);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}
