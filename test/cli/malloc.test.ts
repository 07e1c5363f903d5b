/**
 * `mega train` / `mega eval` re-execute themselves once with the glibc malloc settings of
 * src/cli/malloc.ts when the user set neither variable (real `mega` processes; a preload module
 * passed in Node's own options prints the variable in every process it starts in).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MALLOC_ENV, mallocReexecEnv } from '../../src/cli/malloc.js';
import { buildForChildren, run, type Built } from '../dist/helpers.js';

let built: Built;
let cli: string;
beforeAll(async () => {
  built = await buildForChildren();
  cli = built.js('src/cli/main.ts');
}, 60000);
afterAll(() => built?.cleanup());

const PROBE = 'data:text/javascript,process.stderr.write("probe mmap=" + process.env.MALLOC_MMAP_THRESHOLD_ + "\\n")';
const UNSET = { MALLOC_MMAP_THRESHOLD_: undefined, MALLOC_TRIM_THRESHOLD_: undefined, MEGA_MALLOC: undefined };

function mega(args: string[], env: Record<string, string | undefined>) {
  return run('node', ['--import', PROBE, cli, ...args], { env, timeoutMs: 90000 }).done;
}

const probes = (stderr: string) =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('probe '))
    .map((l) => l.slice(6));

describe('malloc settings', () => {
  it('decides from the environment and the platform', () => {
    expect(mallocReexecEnv({ A: '1' }, 'linux', [])).toEqual({ A: '1', MALLOC_MMAP_THRESHOLD_: '4294967296', MALLOC_TRIM_THRESHOLD_: '68719476736' });
    expect(mallocReexecEnv({ MALLOC_TRIM_THRESHOLD_: '0' }, 'linux')).toBeNull();
    expect(mallocReexecEnv({ MALLOC_MMAP_THRESHOLD_: '0' }, 'linux')).toBeNull();
    expect(mallocReexecEnv({ MEGA_MALLOC: 'system' }, 'linux')).toBeNull();
    expect(mallocReexecEnv({}, 'darwin')).toBeNull();
    expect(mallocReexecEnv({}, 'linux', ['--inspect-brk=0'])).toBeNull();
    expect(mallocReexecEnv({ NODE_OPTIONS: '--max-old-space-size=100 --inspect' }, 'linux', [])).toBeNull();
    expect(mallocReexecEnv({}, 'linux', ['--expose-gc'])).not.toBeNull();
    expect(MALLOC_ENV.MALLOC_MMAP_THRESHOLD_).toBe('4294967296');
  });

  it('mega train restarts once with the settings and passes the exit code and messages through', async () => {
    const r = await mega(['train', '--no-such-flag'], UNSET);
    expect(r.code, r.stderr).toBe(2);
    expect(probes(r.stderr)).toEqual(['mmap=undefined', 'mmap=4294967296']);
    const msg = r.stderr.split('\n').filter((l) => l.startsWith('mega train:'));
    expect(msg).toHaveLength(1);
    expect(msg[0]).toMatch(/no-such-flag/);
  }, 90000);

  it('runs in place when the user set a variable, chose MEGA_MALLOC=system, or for other commands', async () => {
    const [own, sys, info] = await Promise.all([
      mega(['train', '--no-such-flag'], { ...UNSET, MALLOC_MMAP_THRESHOLD_: '65536' }),
      mega(['train', '--no-such-flag'], { ...UNSET, MEGA_MALLOC: 'system' }),
      mega(['--version'], UNSET),
    ]);
    expect(own.code, own.stderr).toBe(2);
    expect(probes(own.stderr)).toEqual(['mmap=65536']);
    expect(sys.code, sys.stderr).toBe(2);
    expect(probes(sys.stderr)).toEqual(['mmap=undefined']);
    expect(info.code, info.stderr).toBe(0);
    expect(probes(info.stderr)).toEqual(['mmap=undefined']);
  }, 90000);

  it('a SIGKILL of the mega the user started ends the re-executed run too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mega-malloc-'));
    try {
      const r = run('node', [cli, 'train', '--max-update', '100000', '--save-dir', dir, '--quiet'], { env: UNSET, timeoutMs: 90000 });
      const pid = r.child.pid!;
      const childrenOf = (p: number): number[] => {
        try {
          return readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
        } catch {
          return [];
        }
      };
      let kids: number[] = [];
      for (let i = 0; i < 300 && !kids.length; i++) {
        await new Promise((res) => setTimeout(res, 100));
        kids = childrenOf(pid);
      }
      expect(kids, 'the re-executed child').toHaveLength(1);
      const run2 = kids[0]!;
      // the run has started training: its lock names the pid the user started
      for (let i = 0; i < 300 && !existsSync(join(dir, '.mega-train.lock')); i++) await new Promise((res) => setTimeout(res, 100));
      expect(readFileSync(join(dir, '.mega-train.lock'), 'utf8').split('\n')[0]).toBe(String(pid));
      r.child.kill('SIGKILL');
      const p = await r.done;
      expect(p.signal).toBe('SIGKILL');
      let alive = true;
      for (let i = 0; i < 50 && alive; i++) {
        await new Promise((res) => setTimeout(res, 100));
        alive = existsSync(`/proc/${run2}`) && !readFileSync(`/proc/${run2}/stat`, 'utf8').includes(') Z ');
      }
      expect(alive, `pid ${run2} still running 5 s after its parent was killed`).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90000);
});
