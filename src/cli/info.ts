/** `mega info [--arch NAME] [--json]`: version, backend, threads, and an arch's parameter count. */
import { availableParallelism } from 'node:os';
import { getBackend, registeredBackends } from '../tensor/backend.js';
import { getNumThreads } from '../tensor/backends/cpu/pool.js';
import { parseFlags } from '../train/flags.js';
import { UsageError } from './errors.js';
import { version } from './main.js';

export const INFO_HELP = `Usage: mega info [--arch NAME] [--json]

Prints the mega-ts version, Node.js version, the active compute backend and the registered
ones, the CPU thread count, and with --arch the parameter count of that architecture preset.`;

/** Runs the command; returns the exit code. */
export async function infoCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values: v, positionals } = parseFlags(
    argv,
    {
      arch: { type: 'string', help: 'architecture preset', group: 'main' },
      json: { type: 'boolean', help: 'one JSON line', group: 'main' },
    },
    'info',
  );
  const values = v as { help?: boolean; arch?: string; json?: boolean };
  if (positionals.length && !values.help) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])} (see mega info --help)`);
  if (values.help) {
    out(INFO_HELP);
    return 0;
  }
  const info: Record<string, unknown> = {
    version: version(),
    node: process.version,
    backend: getBackend(),
    backends: registeredBackends(),
    threads: getNumThreads(),
    cores: availableParallelism(),
  };
  if (getBackend() !== 'cpu') {
    const { backendInfo } = await import('../tensor/backends/gpujs/index.js');
    Object.assign(info, backendInfo());
  }
  if (values.arch) {
    const { buildArch } = await import('../train/arch.js');
    const model = buildArch(values.arch);
    info.arch = values.arch;
    info.parameters = model.numParameters();
  }
  if (values.json) out(JSON.stringify(info));
  else
    for (const [k, v] of Object.entries(info))
      out(`${k.padEnd(11)} ${Array.isArray(v) ? v.join(', ') : v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  return 0;
}
