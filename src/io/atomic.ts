/**
 * Atomic file replacement: write to a temporary file in the destination's directory, fsync it,
 * then rename it over the destination. Readers see either the old or the new content, never a
 * partial file; on any error the temporary file is removed and the old file is left untouched.
 */
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** Options of `writeFileAtomic`. */
export interface AtomicWriteOptions {
  /** File mode of the new file (default 0o644, subject to umask). */
  mode?: number;
  /**
   * Called with the temporary path after its data is written and synced, just before the rename;
   * throwing aborts the write (the temp file is removed). Meant for tests and fault injection.
   */
  beforeRename?: (tmpPath: string) => void;
}

/**
 * Atomically replace `path` with `data` (a string is written as UTF-8). The temporary file is
 * `<path>.tmp-<pid>-<random hex>` in the same directory, so the final rename cannot cross filesystems.
 * @throws the underlying filesystem error (after removing the temporary file)
 */
export function writeFileAtomic(path: string, data: Uint8Array | string, options: AtomicWriteOptions = {}): void {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  const tmp = join(dirname(path), `${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  let fd: number | undefined;
  let created = false;
  try {
    fd = openSync(tmp, 'wx', options.mode ?? 0o644);
    created = true;
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    options.beforeRename?.(tmp);
    renameSync(tmp, path);
    created = false;
  } catch (e) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        /* already failing */
      }
    }
    if (created) {
      try {
        unlinkSync(tmp);
      } catch {
        /* best effort */
      }
    }
    throw e;
  }
  syncDirectory(dirname(path));
}

/** Best-effort fsync of a directory so the rename itself is durable (not supported everywhere). */
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    /* directories cannot be opened/fsynced on some platforms */
  } finally {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        /* ignore */
      }
    }
  }
}
