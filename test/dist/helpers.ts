/**
 * Helpers of the distributed tests: the sources are transpiled once per test file (esbuild, no
 * type check, one .js per .ts, so worker-thread files resolve as in `dist/`) into
 * `node_modules/.cache/mega-dist-test/<id>/`, and real worker processes run from there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function tsFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) tsFiles(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** A transpiled copy of `src/` and the test fixtures; `cleanup()` removes it. */
export interface Built {
  dir: string;
  /** Path of a transpiled file, e.g. `js('test/dist/fixtures/ddp-worker.ts')`. */
  js(tsPath: string): string;
  cleanup(): void;
}

/** Transpile `src/**` and `test/dist/fixtures/**` (≈ 1 s). */
export async function buildForChildren(): Promise<Built> {
  const require = createRequire(import.meta.url);
  const esbuild = require('esbuild') as typeof import('esbuild');
  const dir = join(ROOT, 'node_modules', '.cache', 'mega-dist-test', `${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(dir, { recursive: true });
  const entryPoints = [...tsFiles(join(ROOT, 'src')), ...tsFiles(join(ROOT, 'test', 'dist', 'fixtures'))];
  await esbuild.build({ entryPoints, outdir: dir, outbase: ROOT, format: 'esm', platform: 'node', target: 'node20', bundle: false, logLevel: 'silent' });
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
  return {
    dir,
    js: (p) => join(dir, relative(ROOT, join(ROOT, p)).replace(/\.ts$/, '.js')),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A free loopback port (the launcher's helper). */
export { freePort } from '../../src/dist/launch.js';

/** Result of a finished process. */
export interface Proc {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A running process whose output is collected. */
export interface Running {
  child: ChildProcess;
  done: Promise<Proc>;
}

/** Spawn a process collecting its output (killed after `timeoutMs`, default 60 s). */
export function run(cmd: string, args: readonly string[], opts: { env?: Record<string, string | undefined>; timeoutMs?: number; cwd?: string } = {}): Running {
  const env: Record<string, string | undefined> = { ...process.env, MEGA_THREADS: '1', ...(opts.env ?? {}) };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  const child = spawn(cmd, args, { env: env as NodeJS.ProcessEnv, cwd: opts.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '',
    stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60000);
  const done = new Promise<Proc>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.on('error', (e) => {
      // the command could not start (e.g. not installed): no 'close' follows
      clearTimeout(timer);
      resolve({ code: null, signal: null, stdout, stderr: `${stderr}${cmd}: ${e.message}\n` });
    });
  });
  return { child, done };
}

/** Environment variables of rank `rank` of a torchrun-style job. */
export function torchrunEnv(rank: number, worldSize: number, port: number, extra: Record<string, string> = {}): Record<string, string> {
  return {
    RANK: String(rank),
    WORLD_SIZE: String(worldSize),
    LOCAL_RANK: String(rank),
    LOCAL_WORLD_SIZE: String(worldSize),
    GROUP_RANK: '0',
    ROLE_RANK: String(rank),
    ROLE_WORLD_SIZE: String(worldSize),
    ROLE_NAME: 'default',
    MASTER_ADDR: '127.0.0.1',
    MASTER_PORT: String(port),
    TORCHELASTIC_RESTART_COUNT: '0',
    TORCHELASTIC_MAX_RESTARTS: '0',
    TORCHELASTIC_RUN_ID: 'none',
    TORCHELASTIC_USE_AGENT_STORE: 'False',
    TORCHELASTIC_ERROR_FILE: '',
    ...extra,
  };
}
