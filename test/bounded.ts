/**
 * Runs a snippet of TypeScript in a child Node process under a heap limit and a wall-clock limit,
 * so that a test of "bounded time and memory" fails (instead of exhausting the test runner) when
 * the code under test is not bounded. The snippet's last expression value is not used: it must
 * print with `report(...)`, which writes the caught error's class, kind and message together with
 * the peak resident set size of the child.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** What the child reported. */
export interface BoundedResult {
  /** `null` when the call returned without throwing. */
  error: { name: string; kind?: string; message: string; isMega: boolean } | null;
  /** Peak resident set size of the child, MB. */
  peakMB: number;
  /** The child's exit status (null when killed by the time limit). */
  status: number | null;
  /** Raw stdout + stderr (for failure messages). */
  output: string;
}

/**
 * Runs `body` (statements that may `await`; `src(path)` resolves a module under src/) in a child;
 * `body` sets the variable `run` to a function whose thrown error is reported.
 * @param timeoutMs wall-clock limit of the child
 * @param heapMB V8 old-space limit of the child
 */
export function runBounded(imports: string, body: string, { timeoutMs = 60_000, heapMB = 512 } = {}): BoundedResult {
  const dir = mkdtempSync(join(tmpdir(), 'mega-bounded-'));
  const script = join(dir, 'child.ts');
  const src = (p: string) => JSON.stringify(join(root, 'src', p));
  writeFileSync(
    script,
    `${imports.replace(/@src\/([\w/.-]+)/g, (_, p: string) => src(p).slice(1, -1))}
import { MegaError } from ${src('errors.ts')};
let run: () => unknown = () => undefined;
${body}
let error = null;
try { await run(); } catch (e) {
  const err = e as Error & { kind?: string };
  error = { name: err.name, kind: err.kind, message: String(err.message).split('\\n')[0], isMega: e instanceof MegaError };
}
process.stdout.write('RESULT ' + JSON.stringify({ error, peakMB: process.resourceUsage().maxRSS / 1024 }) + '\\n');
`,
  );
  try {
    const r = spawnSync(process.execPath, [join(root, 'node_modules', 'vite-node', 'vite-node.mjs'), script], {
      cwd: root,
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      encoding: 'utf8',
      maxBuffer: 16 << 20,
      env: { ...process.env, NODE_OPTIONS: `--max-old-space-size=${heapMB}` },
    });
    const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('RESULT '));
    if (!line)
      return {
        error: { name: 'NoResult', message: `child ended (status ${r.status}, signal ${r.signal}) without a result: ${output.slice(-2000)}`, isMega: false },
        peakMB: NaN,
        status: r.status,
        output,
      };
    const res = JSON.parse(line.slice(7)) as { error: BoundedResult['error']; peakMB: number };
    return { ...res, status: r.status, output };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
