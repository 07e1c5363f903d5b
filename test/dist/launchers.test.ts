/**
 * The launchers clusters already run, for real: Open MPI's `mpirun` with the `mpi` group (koffi →
 * libmpi), torchrun (its elastic agent holds MASTER_PORT), and two "hosts" — network namespaces
 * joined by a veth pair, each with its own address — running a 2-host × 1-worker job over tcp.
 * Each job must end with the single-process parameters (f64, 1e-12 relative). Without `CI`, a test
 * whose launcher is missing is skipped (test/system.ts); with `CI` set (.ci/run installs
 * openmpi-bin, libopenmpi-dev, python3-torch, iproute2, runs as root, has koffi) it fails.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose } from '../../src/verify/compare.js';
import { mpiAvailable } from '../../src/dist/mpi.js';
import { canNetns, have, skipWithout } from '../system.js';
import { buildForChildren, freePort, run, type Built } from './helpers.js';

const BASE = { dtype: 'f64', updates: 3, updateFreq: 2, batch: 7, L: 5, din: 6, hidden: 8, classes: 3, norm: 'syncbatchnorm', seed: 3 };
const tmp = mkdtempSync(join(tmpdir(), 'mega-launchers-'));
let built: Built;
let worker: string;
let ref: Record<string, number[]>;

const skipMpi = skipWithout({ mpirun: have('mpirun'), libmpi: mpiAvailable() });
const skipTorchrun = skipWithout({ torchrun: have('torchrun') });
const skipNetns = skipWithout({ netns: canNetns() });

function params(out: string, rank: number): { backend: string; params: Record<string, number[]> } {
  return JSON.parse(readFileSync(`${out}.rank${rank}.json`, 'utf8')) as { backend: string; params: Record<string, number[]> };
}

function expectRef(out: string, n: number): void {
  const p0 = params(out, 0).params;
  for (const k of Object.keys(ref)) expectClose(p0[k]!, ref[k]!, { rtol: 1e-12, what: k });
  for (let r = 1; r < n; r++) expect(params(out, r).params).toEqual(p0);
}

beforeAll(async () => {
  built = await buildForChildren();
  worker = built.js('test/dist/fixtures/ddp-worker.ts');
  const out = join(tmp, 'single');
  const p = await run('node', [worker, JSON.stringify({ ...BASE, out })]).done;
  expect(p.code, p.stderr).toBe(0);
  ref = params(out, 0).params;
}, 60000);
afterAll(() => {
  built?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

describe.concurrent('launchers', () => {
  it.skipIf(skipMpi)(
    'mpirun -np 2 with the mpi group (MPI_Allreduce through koffi)',
    async () => {
      const out = join(tmp, 'mpi');
      // vader's single-copy mechanism (CMA) needs ptrace rights containers often lack: plain copies
      const p = await run('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', '2', 'node', worker, JSON.stringify({ ...BASE, out, backend: 'mpi' })], {
        timeoutMs: 60000,
        env: { OMPI_MCA_btl_vader_single_copy_mechanism: 'none' },
      }).done;
      expect(p.code, p.stderr + p.stdout).toBe(0);
      expect(params(out, 0).backend).toBe('mpi');
      expectRef(out, 2);
    },
    60000,
  );

  it.skipIf(skipTorchrun)(
    'torchrun --nproc_per_node 2 (the agent store holds MASTER_PORT)',
    async () => {
      const out = join(tmp, 'torchrun');
      const port = await freePort();
      // --redirects 1 --tee 1: Debian's torch 1.13 on Python 3.11 cannot parse the default "0"
      const p = await run(
        'torchrun',
        [
          '--nnodes',
          '1',
          '--nproc_per_node',
          '2',
          '--master_addr',
          '127.0.0.1',
          '--master_port',
          String(port),
          '--redirects',
          '1',
          '--tee',
          '1',
          '--log_dir',
          join(tmp, 'torchrun-logs'),
          '--no_python',
          'node',
          worker,
          JSON.stringify({ ...BASE, out }),
        ],
        { timeoutMs: 90000 },
      ).done;
      expect(p.code, p.stderr + p.stdout).toBe(0);
      expect(params(out, 0).backend).toBe('tcp');
      expectRef(out, 2);
    },
    90000,
  );

  it.skipIf(skipNetns)(
    'two hosts (network namespaces joined by veth, 10.77.0.1 and 10.77.0.2), one worker each',
    async () => {
      const id = process.pid % 100000;
      const ns = [`megaA${id}`, `megaB${id}`],
        veth = [`mgA${id}`, `mgB${id}`],
        addr = ['10.77.0.1', '10.77.0.2'];
      const ip = (...a: string[]): void => {
        const r = spawnSync('ip', a, { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`ip ${a.join(' ')}: ${r.stderr}`);
      };
      try {
        for (const n of ns) ip('netns', 'add', n);
        ip('link', 'add', veth[0], 'type', 'veth', 'peer', 'name', veth[1]);
        for (let i = 0; i < 2; i++) {
          ip('link', 'set', veth[i], 'netns', ns[i]);
          ip('-n', ns[i], 'addr', 'add', `${addr[i]}/24`, 'dev', veth[i]);
          ip('-n', ns[i], 'link', 'set', veth[i], 'up');
          ip('-n', ns[i], 'link', 'set', 'lo', 'up');
        }
        const out = join(tmp, 'netns');
        const procs = await Promise.all(
          [0, 1].map(
            (r) =>
              run('ip', ['netns', 'exec', ns[r], 'node', worker, JSON.stringify({ ...BASE, out })], {
                env: {
                  RANK: String(r),
                  WORLD_SIZE: '2',
                  LOCAL_RANK: '0',
                  LOCAL_WORLD_SIZE: '1',
                  GROUP_RANK: String(r),
                  MASTER_ADDR: addr[0],
                  MASTER_PORT: '29500',
                },
                timeoutMs: 60000,
              }).done,
          ),
        );
        for (const p of procs) expect(p.code, p.stderr).toBe(0);
        expectRef(out, 2);
      } finally {
        for (const n of ns) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
      }
    },
    60000,
  );
});
