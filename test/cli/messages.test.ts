/**
 * Messages and exit codes the README promises (real `mega` processes): a user's mistake is one
 * line on stderr naming the value and what was expected, exit code 2.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildForChildren, run, type Built } from '../dist/helpers.js';

let built: Built;
let cli: string;
const tmp = mkdtempSync(join(tmpdir(), 'mega-messages-'));
beforeAll(async () => {
  built = await buildForChildren();
  cli = built.js('src/cli/main.ts');
}, 60000);
afterAll(() => {
  built?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

function mega(args: string[], env: Record<string, string> = {}) {
  return run('node', [cli, ...args], { env, timeoutMs: 90000 }).done;
}

/** One line on stderr, exit 2, the line matching `re`. */
function userError(r: { code: number | null; stderr: string }, re: RegExp): void {
  expect(r.code, r.stderr).toBe(2);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(re);
}

describe('backend selection', () => {
  it('--backend bogus, MEGA_BACKEND=bogus and --gpu -1 are user errors', async () => {
    const [a, b, c] = await Promise.all([
      mega(['info', '--backend', 'bogus']),
      mega(['info'], { MEGA_BACKEND: 'bogus' }),
      mega(['info', '--gpu', '-1']),
    ]);
    userError(a, /unknown backend 'bogus' \(expected cpu, gpujs or auto\)/);
    userError(b, /MEGA_BACKEND=bogus: unknown backend 'bogus' \(expected cpu, gpujs or auto\)/);
    userError(c, /--gpu -1: invalid GPU adapter index/);
  }, 60000);
});
