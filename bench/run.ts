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
import { runAllreduceBench } from './allreduce.js';
import { runFftconvBench } from './fftconv.js';
import { runTrainBench, trainChild } from './train.js';
import { runMainJobBench } from './mainjob.js';
import { note, reportedRows, setReportFormat, type BenchOptions } from './report.js';
import { computeFigures, summaryLines } from './summary.js';
import { setNumThreads } from '../src/tensor/backends/cpu/pool.js';

/** Every benchmark module: register new ones here. `name` is matched by `--filter` too. */
const BENCHES: { name: string; run: (opts: BenchOptions) => Promise<void> }[] = [
  { name: 'matmul', run: runMatmulBench },
  { name: 'allreduce', run: runAllreduceBench }, // also the dp-train cases (bench/allreduce.ts)
  { name: 'mega', run: runMegaBench },
  { name: 'gpu', run: runGpuBench },
  { name: 'fftconv', run: runFftconvBench },
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
    // A bench runs unless the filter names another bench; cases inside are filtered by id.
    const other = opts.filter !== undefined && BENCHES.some((o) => o !== b && opts.filter!.startsWith(o.name));
    if (other) continue;
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
