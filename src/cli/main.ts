#!/usr/bin/env node
/**
 * The `mega` command. Thin: parses options and calls the floors below. Every error that is the
 * user's (bad option, bad file, bad data) is one line on stderr and exit code 2.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isUserError } from '../errors.js';
import { UsageError } from './errors.js';
import { dieWithParent, mallocReexecEnv, reexec } from './malloc.js';

type Command = (argv: string[], out: (s: string) => void) => number | Promise<number>;

/** The package version (package.json is two levels up from src/, three from dist/src/). */
export function version(): string {
  for (const rel of ['../../package.json', '../../../package.json']) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) {
      const pkg = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version: string };
      if (pkg.name === 'mega-ts') return pkg.version;
    }
  }
  return 'unknown';
}

const COMMANDS: Record<string, { run: () => Promise<Command>; summary: string }> = {
  train: { run: async () => (await import('./train.js')).trainCommand, summary: 'train a Mega model (no arguments: small Mega on generated ListOps)' },
  eval: { run: async () => (await import('./eval.js')).evalCommand, summary: 'evaluate a checkpoint on a data split' },
  generate: {
    run: async () => (await import('./generate.js')).generateCommand,
    summary: 'sample from an LM / beam-search an NMT model (incremental decoding)',
  },
  export: {
    run: async () => (await import('./export.js')).exportCommand,
    summary: 'write a model folder (config.json, model.safetensors, dict.txt) for loadModel',
  },
  'import-fairseq': {
    run: async () => (await import('./import-fairseq.js')).importCommand,
    summary: 'convert a fairseq Mega checkpoint (.pt) to mega-ts (safetensors)',
  },
  info: { run: async () => (await import('./info.js')).infoCommand, summary: 'version, backend, threads, parameter count of an arch' },
  verify: { run: async () => (await import('./verify.js')).verifyCommand, summary: 'check golden case files (mega-golden/1) against this implementation' },
};

/**
 * Removes the global options `--backend cpu|gpujs|auto` and `--gpu INDEX` from `argv` (they may
 * appear anywhere) and selects the compute backend (also from MEGA_BACKEND / MEGA_GPU).
 */
async function applyGlobalOptions(argv: string[]): Promise<string[]> {
  const rest: string[] = [];
  let backend: string | undefined; // flags; the environment is read by selectBackend (naming it in errors)
  let gpu: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = /^--(backend|gpu)(?:=(.*))?$/.exec(a);
    if (!m) {
      rest.push(a);
      continue;
    }
    const v = m[2] ?? argv[++i];
    if (v === undefined) throw new UsageError(`--${m[1]} needs a value`);
    if (m[1] === 'backend') backend = v;
    else gpu = v;
  }
  const envBackend = process.env.MEGA_BACKEND || undefined;
  const envGpu = process.env.MEGA_GPU || undefined;
  if (((backend ?? envBackend) && (backend ?? envBackend) !== 'cpu') || (gpu ?? envGpu) !== undefined) {
    const { selectBackend } = await import('../tensor/backends/gpujs/index.js');
    // data parallel: local rank r takes GPU r unless --gpu / MEGA_GPU names one
    const { detectLauncher } = await import('../dist/env.js');
    const local = (gpu ?? envGpu) === undefined ? detectLauncher() : null;
    const sel = selectBackend(
      backend ?? (envBackend ? undefined : 'gpujs'),
      gpu !== undefined ? { gpu } : local && local.localWorldSize > 1 ? { rank: local.localRank } : {},
    );
    if (sel.reason) process.stderr.write(`mega: ${sel.reason}\n`);
  }
  return rest;
}

function help(): string {
  return [
    `mega ${version()} — Mega (Moving Average Equipped Gated Attention) in TypeScript`,
    '',
    'Usage: mega <command> [options]   (mega <command> --help for details)',
    '',
    ...Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(15)} ${c.summary}`),
    '',
    'Global options: --backend cpu|gpujs|auto (or MEGA_BACKEND), --gpu ADAPTER_INDEX (or MEGA_GPU).',
  ].join('\n');
}

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const out = (s: string) => process.stdout.write(s + '\n');
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    out(help());
    return 0;
  }
  if (cmd === '--version' || cmd === '-v') {
    out(version());
    return 0;
  }
  const c = COMMANDS[cmd];
  if (!c) {
    process.stderr.write(`mega: unknown command '${cmd}' (see mega --help)\n`);
    return 2;
  }
  try {
    return await (
      await c.run()
    )(await applyGlobalOptions(rest), out);
  } catch (e) {
    const err = e as Error;
    const user = isUserError(err);
    process.stderr.write(`mega ${cmd}: ${err.message}\n`);
    if (!user && process.env.MEGA_DEBUG) process.stderr.write(`${err.stack}\n`);
    return user ? 2 : 1;
  }
}

/** Commands that run the model, and so re-execute with {@link MALLOC_ENV} (see malloc.ts). */
const COMPUTE_COMMANDS = new Set(['train', 'eval']);

const entry = process.argv[1] ? realpathSync(process.argv[1]) : '';
if (entry === fileURLToPath(import.meta.url)) {
  const parent = Number(process.env.MEGA_REEXEC_PID);
  if (parent > 0 && parent === process.ppid) dieWithParent(parent);
  // `--workers N` only launches: its workers get the settings from the launcher (src/dist/launch.ts)
  const args = process.argv.slice(3);
  const w = args.findIndex((a) => a === '--workers' || a.startsWith('--workers='));
  const launcher = w >= 0 && Number(args[w]!.includes('=') ? args[w]!.split('=')[1] : args[w + 1]) > 1;
  const env = COMPUTE_COMMANDS.has(process.argv[2] ?? '') && !launcher ? mallocReexecEnv(process.env) : null;
  (env ? reexec(env) : main(process.argv.slice(2))).then((code) => {
    process.exitCode = code;
  });
}
