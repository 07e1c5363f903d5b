/**
 * Data-parallel training with real processes over real loopback sockets (the tcp group): N ranks
 * on the split global batch end with the parameters of one process on the whole batch; replicas
 * stay bitwise equal; mismatched launches are rejected; lost and silent ranks are detected.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose } from '../../src/verify/compare.js';
import { buildForChildren, freePort, run, torchrunEnv, type Built, type Proc } from './helpers.js';

let built: Built;
let worker: string;
const tmp = mkdtempSync(join(tmpdir(), 'mega-ddp-'));

beforeAll(async () => {
  built = await buildForChildren();
  worker = built.js('test/dist/fixtures/ddp-worker.ts');
}, 60000);
afterAll(() => {
  built?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

interface Out {
  rank: number;
  worldSize: number;
  backend: string;
  buckets: number;
  overlap: boolean;
  params: Record<string, number[]>;
  losses: number[];
}

const BASE = { dtype: 'f64', updates: 3, updateFreq: 2, batch: 7, L: 5, din: 6, hidden: 8, classes: 3, norm: 'syncbatchnorm', seed: 3 };
let outN = 0;

function cfg(extra: Record<string, unknown> = {}): { json: string; out: string } {
  const out = join(tmp, `run${outN++}`);
  return { json: JSON.stringify({ ...BASE, out, ...extra }), out };
}

function read(out: string, rank: number): Out {
  return JSON.parse(readFileSync(`${out}.rank${rank}.json`, 'utf8')) as Out;
}

/** The single-process reference on the whole batch. */
async function single(extra: Record<string, unknown> = {}): Promise<Out> {
  const c = cfg(extra);
  const p = await run('node', [worker, c.json]).done;
  expect(p.code, p.stderr).toBe(0);
  return read(c.out, 0);
}

/** N ranks with torchrun's variables; resolves to the processes' results. */
async function job(
  n: number,
  extra: Record<string, unknown> | ((r: number) => Record<string, unknown>) = {},
  env: (r: number, port: number) => Record<string, string> = (r, port) => torchrunEnv(r, n, port),
): Promise<{ procs: Proc[]; out: string }> {
  const port = await freePort();
  const out = join(tmp, `job${outN++}`);
  const procs = await Promise.all(
    [...Array(n).keys()].map((r) => {
      const e = typeof extra === 'function' ? extra(r) : extra;
      return run('node', [worker, JSON.stringify({ ...BASE, out, ...e })], { env: env(r, port) }).done;
    }),
  );
  return { procs, out };
}

function expectSame(dist: Out, ref: Out, tol: number): void {
  for (const k of Object.keys(ref.params)) expectClose(dist.params[k]!, ref.params[k]!, { rtol: tol, what: k });
}

describe('tcp process group, loopback', () => {
  const refs: Record<string, Out> = {};
  beforeAll(async () => {
    refs.f64 = await single();
    refs.f32 = await single({ dtype: 'f32' });
  }, 60000);

  for (const n of [2, 3]) {
    it(`${n} ranks on the split batch = one process on the whole batch (f64 to 1e-12, with sync batch-norm and accumulation)`, async () => {
      const { procs, out } = await job(n, { bucketBytes: 256 });
      for (const p of procs) expect(p.code, p.stderr).toBe(0);
      const outs = [...Array(n).keys()].map((r) => read(out, r));
      expect(outs[0].backend).toBe('tcp');
      expect(outs[0].buckets).toBeGreaterThan(1);
      expectSame(outs[0], refs.f64, 1e-12);
      for (let r = 1; r < n; r++) expect(outs[r].params, `rank ${r} replica`).toEqual(outs[0].params); // bitwise
      expectClose(outs[0].losses, refs.f64.losses, { atol: 1e-12, what: 'losses' });
    }, 60000);
  }

  it('f32: equal to float rounding; layernorm with gradient buckets overlapping backward', async () => {
    const { procs, out } = await job(2, { dtype: 'f32' });
    for (const p of procs) expect(p.code, p.stderr).toBe(0);
    expectSame(read(out, 0), refs.f32, 2e-5);
    const ln = await single({ norm: 'layernorm', dtype: 'f64' });
    const j = await job(2, { norm: 'layernorm', dtype: 'f64', bucketBytes: 128 });
    for (const p of j.procs) expect(p.code, p.stderr).toBe(0);
    const o = read(j.out, 0);
    expect(o.overlap).toBe(true);
    expect(o.buckets).toBeGreaterThan(2);
    expectSame(o, ln, 1e-12);
    expect(read(j.out, 1).params).toEqual(o.params);
  }, 60000);

  it("torchrun's agent store holds MASTER_PORT: the job rendezvouses beside it and never binds it", async () => {
    const port = await freePort();
    // the "agent": a listener on MASTER_PORT that must see no connection
    let touched = 0;
    const agent = net.createServer((s) => {
      touched++;
      s.destroy();
    });
    await new Promise<void>((res) => agent.listen(port, '127.0.0.1', () => res()));
    try {
      const out = join(tmp, 'agent');
      const procs = await Promise.all(
        [0, 1].map(
          (r) =>
            run('node', [worker, JSON.stringify({ ...BASE, out })], {
              env: torchrunEnv(r, 2, port, { TORCHELASTIC_USE_AGENT_STORE: 'True', TORCHELASTIC_RUN_ID: 'test' }),
            }).done,
        ),
      );
      for (const p of procs) expect(p.code, p.stderr).toBe(0);
      expect(touched).toBe(0);
      expectSame(read(out, 0), refs.f64, 1e-12);
    } finally {
      agent.close();
    }
  }, 60000);

  it('rejects at start-up ranks with different models or world sizes (every rank exits, the message names the difference)', async () => {
    const a = await job(2, (r) => ({ hidden: r === 0 ? 8 : 12 }));
    for (const p of a.procs) {
      expect(p.code).toBe(2);
      expect(p.stderr).toMatch(/rank 1's model or configuration differs from rank 0's: settings.hidden = 12 on rank 1, 8 on rank 0/);
    }
    const b = await job(2, {}, (r, port) => torchrunEnv(r, r === 0 ? 2 : 3, port));
    for (const p of b.procs) {
      expect(p.code).not.toBe(0);
      expect(p.stderr).toMatch(/world size mismatch: rank 1 was started with a world size of 3, rank 0 with 2/);
    }
  }, 60000);

  it('a killed rank: the others stop within the timeout, naming the lost rank, with a non-zero exit', async () => {
    const { procs, out } = await job(3, { updates: 40, sleepMs: 20, fault: 'kill:2@3', timeoutS: 5 });
    expect(procs[2].signal).toBe('SIGKILL');
    for (const r of [0, 1]) {
      expect(procs[r].code, procs[r].stderr).toBe(1);
      expect(procs[r].stderr).toMatch(/lost rank 2/);
    }
    // they stopped before the 40 updates were done (a hang fails by the test's own timeout)
    expect(existsSync(`${out}.rank0.json`)).toBe(false);
  }, 60000);

  it('a rank that stops answering (SIGSTOP) is detected within --dist-timeout, no hang', async () => {
    const port = await freePort();
    const out = join(tmp, 'stop');
    const ps = [0, 1].map((r) =>
      run('node', [worker, JSON.stringify({ ...BASE, out, updates: 40, sleepMs: 20, fault: 'stop:1@2', timeoutS: 2 })], { env: torchrunEnv(r, 2, port) }),
    );
    const r0 = await ps[0].done;
    ps[1].child.kill('SIGKILL'); // the stopped process (the launcher's job)
    await ps[1].done;
    expect(r0.code).toBe(1);
    expect(r0.stderr).toMatch(/rank 1 stopped answering|made no progress for .* waiting for rank 1/);
    expect(existsSync(`${out}.rank0.json`)).toBe(false);
  }, 60000);
});
