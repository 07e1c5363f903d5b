/**
 * `mega train --workers N`: the single-host launcher. It starts N copies of the same command as
 * worker processes with torchrun's variables (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
 * `LOCAL_WORLD_SIZE`, `MASTER_ADDR=127.0.0.1`, `MASTER_PORT` = a free port) plus
 * `MEGA_LAUNCHER=workers`, `MEGA_RESTART_COUNT` and `MEGA_LAUNCHER_PID`, so each worker takes
 * exactly the code path of a job launched by torchrun. It does no training itself: it supervises.
 * A worker whose launcher is gone (even SIGKILLed) stops after its current update.
 *
 * Each worker gets `MEGA_THREADS` = its share of the cores (at least 1) unless the user set
 * `MEGA_THREADS` or `--threads`. When a worker fails, the others stop on their own (they lose a
 * peer); after `--dist-timeout` + 5 s whatever is left is killed. With `--max-restarts M` the whole
 * group is then started again, up to M times, resuming from `SAVE_DIR/checkpoint_last` (a restart
 * adds `--resume` when that checkpoint exists and drops `--overwrite`), like torchrun's elastic
 * agent. The exit code is 0 when a group finished cleanly, else 1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { DistConfigError } from './errors.js';
import { DEFAULT_DIST_TIMEOUT_S, launchedWorldSize } from './training.js';

/** Options of {@link runWorkers}. */
export interface WorkersOptions {
  /** Number of worker processes (>= 1). */
  workers: number;
  /** Restarts of the whole group after a failure (default 0). */
  maxRestarts?: number;
  /** `--dist-timeout` in seconds (how long failed groups get to stop by themselves). */
  timeoutS?: number;
  /** Command of one worker: executable and arguments. */
  command: readonly string[];
  /** `SAVE_DIR` (checkpoint_last there turns restarts into resumes); null = `--no-save`. */
  saveDir: string | null;
  /** Threads per worker (default: cores / workers, at least 1; ignored when MEGA_THREADS is set). */
  threadsPerWorker?: number;
  /** Extra environment of the workers. */
  env?: Readonly<Record<string, string>>;
  /** Where supervision messages go (default stderr). */
  log?: (line: string) => void;
}

/** A free TCP port on the loopback interface (the usual small race: it is closed before use). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** The option names (in any spelling) removed from the workers' command line. */
const LAUNCHER_ONLY = new Set(['workers', 'max_restarts']);

function canonical(flag: string): string {
  return flag
    .replace(/^--?/, '')
    .replace(/=.*$/, '')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/-/g, '_')
    .toLowerCase();
}

/**
 * The workers' argument list: `argv` without `--workers N` / `--max-restarts N`; for a restart
 * with a checkpoint to resume, `--resume` is added and `--overwrite` dropped.
 */
export function workerArgv(argv: readonly string[], resume: boolean): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    if (a.startsWith('--')) {
      const key = canonical(a);
      if (LAUNCHER_ONLY.has(key)) {
        if (!a.includes('=')) i++;
        continue;
      }
      if (resume && (key === 'overwrite' || key === 'no_overwrite' || key === 'resume' || key === 'no_resume')) continue;
    }
    out.push(a);
  }
  if (resume) out.push('--resume');
  return out;
}

interface Exit {
  rank: number;
  code: number | null;
  signal: NodeJS.Signals | null;
}

function describeExit(e: Exit): string {
  return e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`;
}

/**
 * Run the workers (and restarts) to completion; resolves to the exit code.
 * @throws DistConfigError for a bad worker count or restart count
 */
export async function runWorkers(opts: WorkersOptions): Promise<number> {
  const n = opts.workers;
  if (!Number.isInteger(n) || n < 1) throw new DistConfigError(`--workers ${n}: expected an integer >= 1`);
  const maxRestarts = opts.maxRestarts ?? 0;
  if (!Number.isInteger(maxRestarts) || maxRestarts < 0) throw new DistConfigError(`--max-restarts ${maxRestarts}: expected an integer >= 0`);
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const timeoutS = opts.timeoutS ?? DEFAULT_DIST_TIMEOUT_S;
  const threads = opts.threadsPerWorker ?? Math.max(1, Math.floor(os.availableParallelism() / n));
  const [exe, ...baseArgs] = opts.command;
  let live: ChildProcess[] = [];
  const forward = (sig: NodeJS.Signals) => () => {
    for (const c of live) c.kill(sig);
  };
  const onInt = forward('SIGINT'),
    onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    for (let attempt = 0; ; attempt++) {
      const resume = attempt > 0 && opts.saveDir !== null && existsSync(join(opts.saveDir, 'checkpoint_last.safetensors'));
      const args = workerArgv(baseArgs, resume);
      const port = await freePort();
      const exits: Promise<Exit>[] = [];
      live = [];
      for (let r = 0; r < n; r++) {
        const env: Record<string, string | undefined> = {
          ...process.env,
          ...(opts.env ?? {}),
          RANK: String(r),
          WORLD_SIZE: String(n),
          LOCAL_RANK: String(r),
          LOCAL_WORLD_SIZE: String(n),
          GROUP_RANK: '0',
          MASTER_ADDR: '127.0.0.1',
          MASTER_PORT: String(port),
          MEGA_LAUNCHER: 'workers',
          MEGA_RESTART_COUNT: String(attempt),
          MEGA_LAUNCHER_PID: String(process.pid),
        };
        if (!process.env.MEGA_THREADS) env.MEGA_THREADS = String(threads);
        const child = spawn(exe, args, { env, stdio: 'inherit' });
        live.push(child);
        exits.push(
          new Promise((resolve) => {
            child.once('exit', (code, signal) => resolve({ rank: r, code, signal }));
            child.once('error', () => resolve({ rank: r, code: 127, signal: null }));
          }),
        );
      }
      // wait for the first failure or for everyone
      const pending = new Map(exits.map((p, r) => [r, p] as const));
      let firstFailure: Exit | null = null;
      while (pending.size > 0 && !firstFailure) {
        const e = await Promise.race(pending.values());
        pending.delete(e.rank);
        if (e.code !== 0) firstFailure = e;
      }
      if (!firstFailure) return 0;
      log(`mega train: worker rank ${firstFailure.rank} ${describeExit(firstFailure)}; waiting up to ${timeoutS + 5} s for the other workers to stop`);
      const grace = new Promise<'late'>((resolve) => {
        const t = setTimeout(() => resolve('late'), (timeoutS + 5) * 1000);
        t.unref();
      });
      const rest = Promise.all(pending.values());
      if ((await Promise.race([rest, grace])) === 'late') {
        for (const r of pending.keys()) {
          log(`mega train: worker rank ${r} did not stop; killing it`);
          live[r].kill('SIGKILL');
        }
        await rest;
      }
      live = [];
      if (attempt >= maxRestarts) {
        if (maxRestarts > 0) log(`mega train: giving up after ${maxRestarts} restart${maxRestarts > 1 ? 's' : ''}`);
        return 1;
      }
      const again = opts.saveDir !== null && existsSync(join(opts.saveDir, 'checkpoint_last.safetensors'));
      log(
        `mega train: restarting ${n} workers (restart ${attempt + 1} of ` +
          `${maxRestarts})${again ? ` from ${join(opts.saveDir!, 'checkpoint_last.safetensors')}` : ' from the start (no checkpoint yet)'}`,
      );
    }
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}

/**
 * `mega train --workers N` (N > 1) outside a launched job: start and supervise the workers.
 * Returns null when this process should train itself (no `--workers`, N = 1, or already a rank).
 * @param argv the arguments after `train`
 * @param user the parsed options (config file + flags)
 * @param saveDir the resolved `--save-dir` (null with `--no-save`)
 * @param check validates the run once before any worker starts (a user error is then reported once, not by every worker)
 * @param env variables added to every worker's environment (the CLI's malloc settings)
 */
export function runWorkersFromArgv(
  argv: readonly string[],
  user: Readonly<Record<string, unknown>>,
  saveDir: string | null,
  check?: () => void,
  env?: Readonly<Record<string, string>>,
): Promise<number> | null {
  const workers = user.workers;
  if (workers === undefined || launchedWorldSize() > 1) return null;
  if (typeof workers !== 'number' || !Number.isInteger(workers) || workers < 1) {
    return Promise.reject(new DistConfigError(`--workers ${String(workers)}: expected an integer >= 1`));
  }
  if (workers === 1) return null;
  check?.();
  const threads = typeof user.threads === 'number' ? user.threads : undefined;
  return runWorkers({
    workers,
    maxRestarts: typeof user.max_restarts === 'number' ? user.max_restarts : 0,
    timeoutS: typeof user.dist_timeout === 'number' ? user.dist_timeout : undefined,
    command: [process.execPath, ...process.execArgv, process.argv[1]!, 'train', ...argv],
    saveDir,
    threadsPerWorker: threads,
    env,
  });
}
