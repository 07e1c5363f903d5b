/**
 * The save folder of `mega train` (`--save-dir`): checked before a run starts, created without
 * Node's recursive mkdir (which hangs on some pseudo filesystems), locked for one run at a time,
 * and cleared of the temporary files of interrupted writes.
 *
 * - {@link checkSaveDir}: `""`, a path that is or goes through a file, a folder on `/proc` or `/sys`,
 *   or one this user cannot write are {@link ConfigError}s naming the path, before anything runs.
 * - {@link lockSaveDir}: `SAVE_DIR/.mega-train.lock` holds the pid and host of the run using the
 *   folder; a second run is refused while that process lives; a lock left by a dead process (a kill)
 *   is taken over. Released when the run ends (also on an error exit).
 * - {@link removeStaleTemps}: `*.tmp-<pid>-<hex>` files (see `writeFileAtomic`) of processes that
 *   no longer run are removed.
 */
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statfsSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { ConfigError } from './errors.js';

/** statfs magic numbers of the kernel's pseudo filesystems (no place for files). */
const PSEUDO_FS: Readonly<Record<number, string>> = {
  0x9fa0: 'procfs',
  0x62656572: 'sysfs',
  0x64626720: 'debugfs',
  0x74726163: 'tracefs',
  0x1cd1: 'devpts',
  0x27e0eb: 'cgroup',
  0x63677270: 'cgroup2',
};

/** Name of the lock file in a save folder. */
export const LOCK_FILE = '.mega-train.lock';

function errno(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code ? `${err.code}: ${err.message.replace(/^\w+: /, '').replace(/, \w+ '.*'$/, '')}` : String(e);
}

/**
 * The folders of `dir` that do not exist yet (outermost first) after checking the path.
 * @throws ConfigError for an unusable `--save-dir`
 */
export function checkSaveDir(dir: string): string[] {
  if (dir.trim() === '') throw new ConfigError('--save-dir "": expected a folder path');
  const full = resolve(dir);
  const missing: string[] = [];
  let p = full;
  for (;;) {
    let st;
    try {
      st = statSync(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        // ENOTDIR: a part above is a file, found further up
        const up = dirname(p);
        if (up === p) throw new ConfigError(`--save-dir ${dir}: cannot be created (${errno(e)})`);
        missing.unshift(p);
        p = up;
        continue;
      }
      throw new ConfigError(`--save-dir ${dir}: cannot use ${p} (${errno(e)})`);
    }
    if (!st.isDirectory()) {
      throw new ConfigError(`--save-dir ${dir}: ${p === full ? 'is a file' : `${p} is a file`}, not a folder`);
    }
    break;
  }
  let fsType = 0;
  try {
    fsType = statfsSync(p).type;
  } catch {
    /* statfs unsupported: the checks below still apply */
  }
  const pseudo = PSEUDO_FS[fsType];
  if (pseudo) throw new ConfigError(`--save-dir ${dir}: ${p} is on ${pseudo}, a kernel pseudo filesystem (expected a folder on a disk)`);
  try {
    accessSync(p, constants.W_OK | constants.X_OK);
  } catch (e) {
    throw new ConfigError(`--save-dir ${dir}: ${p === full ? 'the folder' : p} is not writable (${errno(e)})`);
  }
  return missing;
}

/**
 * Check `dir` ({@link checkSaveDir}) and create its missing folders one by one.
 * @throws ConfigError for an unusable `--save-dir`
 */
export function makeSaveDir(dir: string): void {
  for (const p of checkSaveDir(dir)) {
    try {
      mkdirSync(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || !statSync(p).isDirectory()) {
        throw new ConfigError(`--save-dir ${dir}: cannot create ${p} (${errno(e)})`);
      }
    }
  }
}

/** Whether process `pid` runs on this host (a process of another user counts). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The pid a user sees for this run: the process they started. When the CLI re-executed itself
 * for its malloc settings (src/cli/malloc.ts), that is the parent named by `MEGA_REEXEC_PID`, which
 * lives exactly as long as this process (each ends the other).
 */
export function runPid(): number {
  const p = Number(process.env.MEGA_REEXEC_PID);
  return Number.isInteger(p) && p > 0 && p === process.ppid ? p : process.pid;
}

interface LockOwner {
  pid: number;
  host: string;
}

function readLock(path: string): LockOwner | null {
  try {
    const [pid, host] = readFileSync(path, 'utf8').split('\n');
    return { pid: Number(pid), host: host ?? '' };
  } catch {
    return null;
  }
}

/** The live run holding `dir`'s lock, or null (no lock, or a stale one). */
export function lockHolder(dir: string): LockOwner | null {
  const owner = readLock(join(dir, LOCK_FILE));
  if (!owner || owner.pid === runPid()) return null;
  return owner.host !== hostname() || pidAlive(owner.pid) ? owner : null;
}

function busy(dir: string, owner: LockOwner): ConfigError {
  const where = owner.host === hostname() ? `pid ${owner.pid}` : `pid ${owner.pid} on host ${owner.host}; if it is gone, remove ${join(dir, LOCK_FILE)}`;
  return new ConfigError(`--save-dir ${dir} is in use by another mega train run (${where}): wait for it to end or use another --save-dir`);
}

/**
 * Check that no other live run holds `dir` (without taking the lock).
 * @throws ConfigError naming the other run
 */
export function checkUnlocked(dir: string): void {
  const owner = lockHolder(dir);
  if (owner) throw busy(dir, owner);
}

/**
 * Take `dir`'s lock for this process (the folder must exist); a stale lock is taken over.
 * @returns the release function (also run at process exit)
 * @throws ConfigError when another live run holds it
 */
export function lockSaveDir(dir: string): () => void {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; ; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0)
        throw new ConfigError(`--save-dir ${dir}: cannot create the lock file ${path} (${errno(e)})`);
      const owner = lockHolder(dir);
      if (owner) throw busy(dir, owner);
      try {
        unlinkSync(path); // stale: its process is gone
      } catch {
        /* removed meanwhile */
      }
      continue;
    }
    writeSync(fd, `${runPid()}\n${hostname()}\n`);
    closeSync(fd);
    break;
  }
  let held = true;
  const release = (): void => {
    if (!held) return;
    held = false;
    process.off('exit', release);
    if (readLock(path)?.pid === runPid()) {
      try {
        unlinkSync(path);
      } catch {
        /* already gone */
      }
    }
  };
  process.on('exit', release);
  return release;
}

/** Pid in a temporary file name of `writeFileAtomic` (`NAME.tmp-<pid>-<hex>`), or null. */
function tempPid(name: string): number | null {
  const m = /\.tmp-(\d+)-[0-9a-f]+$/.exec(name);
  return m ? Number(m[1]) : null;
}

/**
 * Remove the temporary files of interrupted writes in `dir` whose process no longer runs.
 * @returns the names removed
 */
export function removeStaleTemps(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const removed: string[] = [];
  for (const name of readdirSync(dir)) {
    const pid = tempPid(name);
    if (pid === null || pid === process.pid || pidAlive(pid)) continue;
    try {
      unlinkSync(join(dir, name));
      removed.push(name);
    } catch {
      /* removed meanwhile */
    }
  }
  return removed;
}
