/**
 * Benchmark entry point: `npm run bench -- [--json] [--filter <substring>] [--threads <n>]`
 * (that is `node --expose-gc dist/bench/run.js` after `npm run build`).
 *
 * `--json` prints one JSON object per result line (see report.ts); `--filter` keeps only cases
 * whose id `bench/impl/dtype/shape` contains the substring, e.g. `--filter matmul/mega-ts`
 * or `--filter 1024`. `--threads` sets the CPU kernels' thread count (default: env MEGA_THREADS,
 * else every available core).
 *
 * At the end, issue 13's figures computed from the rows of this run (summary.ts): one JSON line
 * each with `--json` (`{"figure": ..., "ratio": ..., "target": ..., "met": ...}`), else a table.
 */
import os from 'node:os';
import { runGpuBench } from './gpu.js';
import { megaChild, runMegaBench } from './mega.js';
import { runMatmulBench } from './matmul.js';
import { runCeilingBench } from './ceiling.js';
import { runMatmulShapesBench } from './matmul-shapes.js';
import { runAllreduceBench } from './allreduce.js';
import { runFftconvBench } from './fftconv.js';
import { runCopiesBench } from './copies.js';
import { runTrainBench, trainChild } from './train.js';
import { runMainJobBench } from './mainjob.js';
import { note, reportedRows, setReportFormat, type BenchOptions } from './report.js';
import { computeFigures, summaryLines } from './summary.js';
import { setNumThreads } from '../src/tensor/backends/cpu/pool.js';

/**
 * Every benchmark module: register new ones here. `name` (and `also`: further bench names of its
 * rows) is matched by `--filter` too.
 */
const BENCHES: { name: string; also?: string[]; run: (opts: BenchOptions) => Promise<void> }[] = [
  { name: 'matmul', run: runMatmulBench },
  { name: 'matmul-ceiling', also: ['matmul-openblas'], run: runCeilingBench }, // gemm vs the SIMD peak and OpenBLAS (bench/ceiling.ts)
  { name: 'matmul-shapes', run: runMatmulShapesBench }, // training-step shapes vs torch.matmul, 1 thread (bench/matmul-shapes.ts)
  { name: 'allreduce', run: runAllreduceBench }, // also the dp-train cases (bench/allreduce.ts)
  { name: 'mega', run: runMegaBench },
  { name: 'gpu', run: runGpuBench },
  { name: 'fftconv', run: runFftconvBench },
  { name: 'copies', run: runCopiesBench }, // the layer's strided copies, concat, pad: wasm vs the JS loops (bench/copies.ts)
  { name: 'train', run: runTrainBench }, // whole training steps vs PyTorch (bench/train.ts)
  { name: 'main-job', run: runMainJobBench }, // `mega train` with no options, as a process (bench/mainjob.ts)
];

function parseArgs(argv: string[]): BenchOptions {
  const opts: BenchOptions = { json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') opts.json = true;
    else if (a === '--threads' || a.startsWith('--threads=')) {
      const v = a === '--threads' ? argv[++i] : a.slice('--threads='.length);
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new Error(`--threads needs a positive integer, got ${v}`);
      setNumThreads(n);
    } else if (a === '--filter') {
      const v = argv[++i];
      if (v === undefined) throw new Error('--filter needs a value');
      opts.filter = v;
    } else if (a.startsWith('--filter=')) opts.filter = a.slice('--filter='.length);
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: node --expose-gc dist/bench/run.js [--json] [--filter <substring>] [--threads <n>]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return opts;
}

/**
 * Whether bench `b` runs under `--filter f` (cases inside are filtered by id): unless `f` names
 * another bench — the longest bench name `f` starts with decides (`matmul-ceiling` is not
 * `matmul`) — or `f` is the start of one of `b`'s names (`matmul` runs `matmul-ceiling` too).
 */
function benchSelected(b: (typeof BENCHES)[number], f: string): boolean {
  const named = namedBench(f);
  return named === undefined || named === b || [b.name, ...(b.also ?? [])].some((n) => n.startsWith(f));
}

/** The bench whose name (or `also` name) is the longest prefix of `filter`, if any. */
function namedBench(filter: string): (typeof BENCHES)[number] | undefined {
  let best: { b: (typeof BENCHES)[number]; len: number } | undefined;
  for (const b of BENCHES) {
    for (const name of [b.name, ...(b.also ?? [])]) if (filter.startsWith(name) && (!best || name.length > best.len)) best = { b, len: name.length };
  }
  return best?.b;
}

async function main(): Promise<void> {
  // internal: one Mega scaling case in a fresh process (bench/mega.ts)
  const child = process.argv.indexOf('--mega-child');
  if (child >= 0) return megaChild(process.argv[child + 1]);
  // internal: one training-step measurement in a fresh process (bench/train.ts)
  const tchild = process.argv.indexOf('--train-child');
  if (tchild >= 0) return trainChild(process.argv[tchild + 1]);
  const opts = parseArgs(process.argv.slice(2));
  setReportFormat(opts);
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  note(`node ${process.version}, ${os.availableParallelism()} cores (${cpu})`);
  for (const b of BENCHES) {
    if (opts.filter !== undefined && !benchSelected(b, opts.filter)) continue;
    await b.run(opts);
  }
  const summary = summaryLines(computeFigures(reportedRows()), opts.json);
  if (summary.length > 0 && !opts.json) note('issue 13 figures (ratios of the rows above, this run):');
  for (const line of summary) process.stdout.write(line + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
