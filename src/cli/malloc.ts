/**
 * glibc malloc settings for the compute commands (`mega train`, `mega eval`).
 *
 * Under glibc's defaults every allocation above the (adaptive) mmap threshold gets fresh pages
 * from the kernel and gives them back on free, so each large tensor pays its page faults again on
 * every step (≈ 10 µs per 4 KiB page on a VM; more than the arithmetic on small models). Keeping
 * freed memory in the heap is what PyTorch's users get from its allocator. The variables must be
 * set before the process starts, so the CLI re-executes itself once with them when the user has
 * set neither (see docs/PERF.md). `MEGA_MALLOC=system` keeps the system defaults.
 */
import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';

/** The settings: no mmap for blocks under 4 GiB, never trim the heap below 64 GiB of free space. */
export const MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: '4294967296',
  MALLOC_TRIM_THRESHOLD_: '68719476736',
};

/**
 * The environment to re-execute with, or null to run in this process: not on Linux (glibc), the
 * user set `MEGA_MALLOC=system`, either variable is already set (by us or by the user), or the
 * process runs under an inspector (`--inspect*` in Node's options: a child would fight over the
 * debugger port, and the user wants to debug this process).
 */
export function mallocReexecEnv(
  env: NodeJS.ProcessEnv,
  platform: NodeJS.Platform = process.platform,
  execArgv: readonly string[] = process.execArgv,
): NodeJS.ProcessEnv | null {
  if (platform !== 'linux') return null;
  if ([...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)].some((a) => a.startsWith('--inspect'))) return null;
  if (env.MEGA_MALLOC === 'system') return null;
  if (Object.keys(MALLOC_ENV).some((k) => env[k] !== undefined)) return null;
  return { ...env, ...MALLOC_ENV };
}

/**
 * Runs this same command line again in a child with `env` (stdio shared, SIGINT/SIGTERM/SIGHUP
 * forwarded; the child learns our pid as `MEGA_REEXEC_PID` and dies with us, see
 * {@link dieWithParent}); resolves to its exit code. A child killed by a signal is answered by
 * the same signal to this process, so whoever started `mega` sees the signal, as without re-exec.
 */
export function reexec(env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      env: { ...env, MEGA_REEXEC_PID: String(process.pid) },
      stdio: 'inherit',
    });
    const sigs: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    const fwd = (s: NodeJS.Signals) => child.kill(s);
    for (const s of sigs) process.on(s, fwd);
    const done = (code: number) => {
      for (const s of sigs) process.off(s, fwd);
      resolve(code);
    };
    child.once('error', (e) => {
      process.stderr.write(`mega: cannot restart with the malloc settings (${e.message}); set MEGA_MALLOC=system to skip\n`);
      done(1);
    });
    child.once('exit', (code, signal) => {
      if (signal) {
        for (const s of sigs) process.off(s, fwd);
        process.kill(process.pid, signal);
      }
      done(code ?? 128 + (signal ? signalNumber(signal) : 0));
    });
  });
}

/**
 * In a re-executed child: a watchdog thread ends this process at once (SIGKILL) when its parent
 * is gone, so a `kill -9` of the `mega` the user started never leaves a run going on without it.
 * The watchdog polls the parent pid every 100 ms; it does not keep the process alive.
 */
export function dieWithParent(parentPid: number): void {
  const code =
    "const { workerData } = require('node:worker_threads'); setInterval(() => { if " +
    "(process.ppid !== workerData) process.kill(process.pid, 'SIGKILL'); }, 100);";
  new Worker(code, { eval: true, workerData: parentPid }).unref();
}

function signalNumber(s: NodeJS.Signals): number {
  return ({ SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGSEGV: 11, SIGTERM: 15 } as Record<string, number>)[s] ?? 0;
}
