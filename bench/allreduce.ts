/**
 * Distributed benchmarks (src/dist), each in real processes on this host:
 *
 * - `allreduce`: bus bandwidth of the tcp group's ring all-reduce over loopback, 2 ranks, f32
 *   buffers of 1, 10 and 100 MB: busbw = 2(N−1)/N · bytes / time (NCCL's definition: the data each
 *   rank sends and receives, so figures are comparable across N), median of several runs.
 * - `dp-train`: training throughput (samples/s) of `mega train` (the main job's arch on generated
 *   ListOps, global batch 256) with 1 and 2 workers (`--workers`), the CPU backend pinned to one
 *   thread per worker (MEGA_THREADS=1): the batch over the median update time after warm-up (from
 *   `metrics.jsonl`), best of 2 alternating rounds; the 2-worker row carries `ratio` = its
 *   speed-up over 1 worker. `cpu-ceiling` is the machine's own limit for it: the throughput of two
 *   independent CPU-bound processes over one alone (2.0 on two idle cores).
 *
 * Ranks run this file with `--allreduce-child` (rank/world from torchrun-style variables).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../src/dist/launch.js';
import { initProcessGroup } from '../src/dist/training.js';
import { caseId, note, report, selected, type BenchOptions } from './report.js';

const SIZES_MB = [1, 10, 100];
const WORLD = 2;

interface ChildResult {
  mb: number;
  ms: number;
}

/** One rank: time the all-reduces of every size; rank 0 prints one JSON line per size. */
function child(sizes: number[]): void {
  const g = initProcessGroup({ timeoutS: 120 });
  for (const mb of sizes) {
    const n = Math.round((mb * 1e6) / 4);
    const x = g.alloc('f32', n);
    for (let i = 0; i < n; i++) x[i] = (i % 7) - 3;
    g.allReduce(x); // warm-up
    const reps = mb >= 100 ? 3 : mb >= 10 ? 5 : 15;
    const times: number[] = [];
    for (let r = 0; r < reps; r++) {
      g.barrier();
      const t = performance.now();
      g.allReduce(x);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    if (g.rank === 0) process.stdout.write(`${JSON.stringify({ mb, ms: times[times.length >> 1] } satisfies ChildResult)}\n`);
  }
  g.close();
}

function runProc(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '',
      err = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.on('close', (code) => resolve({ code, out, err }));
  });
}

async function allReduceBandwidth(opts: BenchOptions): Promise<void> {
  const sizes = SIZES_MB.filter((mb) => selected(opts, caseId('allreduce', 'tcp-ring', 'f32', [mb, WORLD])));
  if (!sizes.length) return;
  const port = await freePort();
  const self = fileURLToPath(import.meta.url);
  const procs = [...Array(WORLD).keys()].map((r) =>
    runProc(process.execPath, [self, '--allreduce-child', JSON.stringify(sizes)], {
      ...process.env,
      RANK: String(r),
      WORLD_SIZE: String(WORLD),
      LOCAL_RANK: String(r),
      LOCAL_WORLD_SIZE: String(WORLD),
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: String(port),
      MEGA_THREADS: '1',
    }),
  );
  const res = await Promise.all(procs);
  const bad = res.find((r) => r.code !== 0);
  if (bad) {
    note(`allreduce: a rank failed: ${bad.err.trim().split('\n').pop() ?? ''}`);
    return;
  }
  for (const line of res[0].out.trim().split('\n')) {
    const { mb, ms } = JSON.parse(line) as ChildResult;
    const bus = (((2 * (WORLD - 1)) / WORLD) * mb * 1e6) / (ms / 1000) / 1e9;
    report({ bench: 'allreduce', impl: 'tcp-ring', dtype: 'f32', shape: [mb, WORLD], value: bus, unit: 'GB/s' });
  }
}

/**
 * Steady-state samples/s of a `mega train` run from its metrics log (one record per update):
 * the batch over the median time of one update after `warm` updates (robust to other load).
 */
function samplesPerSecond(metrics: string, batch: number, warm: number): number {
  const wall = readFileSync(metrics, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; update: number; wall_s: number })
    .filter((r) => r.type === 'train' && r.update >= warm)
    .map((r) => r.wall_s);
  const d = wall
    .slice(1)
    .map((w, i) => w - wall[i]!)
    .sort((a, b) => a - b);
  return batch / d[d.length >> 1]!;
}

async function trainingThroughput(opts: BenchOptions): Promise<void> {
  const batch = 256,
    updates = 24,
    warm = 6,
    rounds = 2;
  const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
  const dir = mkdtempSync(join(os.tmpdir(), 'mega-bench-dp-'));
  const best = new Map<number, number>();
  try {
    // alternate 1 and 2 workers, best of `rounds`: the figures share the machine's load
    for (let round = 0; round < rounds; round++) {
      for (const w of [1, 2]) {
        if (!selected(opts, caseId('dp-train', `workers-${w}`, 'f32', [batch]))) continue;
        const save = join(dir, `w${w}-${round}`);
        const r = await runProc(
          process.execPath,
          [
            cli,
            'train',
            '--workers',
            String(w),
            '--batch-size',
            String(batch),
            '--max-update',
            String(updates),
            '--log-interval',
            '1',
            '--validate-interval-updates',
            '0',
            '--listops-train',
            '8000',
            '--listops-valid',
            '32',
            '--listops-test',
            '0',
            '--quiet',
            '--save-dir',
            save,
          ],
          { ...process.env, MEGA_THREADS: '1' },
        );
        if (r.code !== 0) {
          note(`dp-train workers-${w}: mega train failed: ${r.err.trim().split('\n').pop() ?? ''}`);
          continue;
        }
        best.set(w, Math.max(best.get(w) ?? 0, samplesPerSecond(join(save, 'metrics.jsonl'), batch, warm)));
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const base = best.get(1);
  for (const [w, sps] of [...best].sort((a, b) => a[0] - b[0])) {
    report({
      bench: 'dp-train',
      impl: `workers-${w}`,
      dtype: 'f32',
      shape: [batch],
      value: sps,
      unit: 'samples/s',
      ...(w > 1 && base ? { ratio: sps / base, baseline: 'workers-1' } : {}),
    });
  }
}

/** A fixed amount of pure JS arithmetic (the ceiling probe's work unit); prints its ms. */
function spin(): void {
  const t = performance.now();
  let x = 0;
  for (let i = 0; i < 2e8; i++) x += Math.sqrt(i) * 1e-9;
  process.stdout.write(`${JSON.stringify({ ms: performance.now() - t, x: x > 0 })}\n`);
}

/**
 * The machine's own 2-process ceiling: throughput of two independent CPU-bound processes over
 * one alone (2 on two idle cores). Data parallelism on 2 workers cannot scale beyond it.
 */
async function cpuCeiling(opts: BenchOptions): Promise<number | undefined> {
  if (!selected(opts, caseId('dp-train', 'cpu-ceiling', 'f64', [2]))) return undefined;
  const self = fileURLToPath(import.meta.url);
  const once = async (): Promise<number> => {
    const r = await runProc(process.execPath, [self, '--spin-child'], process.env);
    return (JSON.parse(r.out) as { ms: number }).ms;
  };
  const alone = await once();
  const pair = await Promise.all([once(), once()]);
  const alone2 = await once();
  const ratio = (2 * Math.min(alone, alone2)) / Math.max(...pair);
  report({ bench: 'dp-train', impl: 'cpu-ceiling', dtype: 'f64', shape: [2], value: ratio, unit: 'x' });
  return ratio;
}

/** The distributed benchmarks (registered in run.ts as `allreduce`). */
export async function runAllreduceBench(opts: BenchOptions): Promise<void> {
  const load = (): string =>
    os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ');
  note(`allreduce / dp-train: ${os.availableParallelism()} cores, load average ${load()}; loopback tcp; MEGA_THREADS=1 per worker`);
  await allReduceBandwidth(opts);
  await cpuCeiling(opts);
  await trainingThroughput(opts);
  note(`allreduce / dp-train: done, load average ${load()} (other processes on the machine lower the 2-worker figures)`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === '--allreduce-child') child(JSON.parse(process.argv[3]!) as number[]);
  else if (process.argv[2] === '--spin-child') spin();
}
