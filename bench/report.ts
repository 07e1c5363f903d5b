/**
 * Benchmark result reporting, shared by every bench module.
 *
 * One result = one line: a fixed-width human table line by default, or (after
 * `setReportFormat({ json: true })`) one JSON object per line on stdout, e.g.
 * `{"bench":"matmul","impl":"mega-ts-cpu","dtype":"f32","shape":[1024,1024,1024],"value":7.9,"unit":"GFLOP/s"}`.
 * In JSON mode stdout carries nothing else; use {@link note} for commentary (stderr).
 */

/** One measured figure. */
export interface BenchResult {
  /** benchmark family, e.g. `matmul` */
  bench: string;
  /** implementation, e.g. `mega-ts-cpu`, `tfjs-wasm` */
  impl: string;
  /** element type, e.g. `f32` */
  dtype: string;
  /** problem shape (meaning defined by the bench; matmul: [M, N, K]) */
  shape: number[];
  /** the figure */
  value: number;
  /** its unit, e.g. `GFLOP/s`, `ms` */
  unit: string;
  /** `value` divided by the value of `baseline` for the same bench, dtype and shape */
  ratio?: number;
  /** the impl that `ratio` compares against */
  baseline?: string;
}

/** Options every bench module receives from `run.ts`. */
export interface BenchOptions {
  /** print one JSON object per line instead of a table */
  json: boolean;
  /** only run cases whose id (see {@link caseId}) contains this substring */
  filter?: string;
}

let json = false;
let headerPrinted = false;
/** Every row reported so far (full precision), for the run's summary (summary.ts). */
const reported: BenchResult[] = [];

/** The rows reported so far in this process, in order. */
export function reportedRows(): readonly BenchResult[] {
  return reported;
}

/** Choose the output format for all later {@link report} calls. */
export function setReportFormat(opts: { json: boolean }): void {
  json = opts.json;
}

/** Round to 4 significant digits (JSON stays short, nothing meaningful is lost). */
function round(x: number): number {
  return Number.isFinite(x) && x !== 0 ? Number(x.toPrecision(4)) : x;
}

/** Print one result line in the current format. */
export function report(r: BenchResult): void {
  reported.push(r);
  if (json) {
    const out: BenchResult = { bench: r.bench, impl: r.impl, dtype: r.dtype, shape: r.shape, value: round(r.value), unit: r.unit };
    if (r.ratio !== undefined) out.ratio = round(r.ratio);
    if (r.baseline !== undefined) out.baseline = r.baseline;
    process.stdout.write(JSON.stringify(out) + '\n');
    return;
  }
  if (!headerPrinted) {
    headerPrinted = true;
    process.stdout.write(`${'bench'.padEnd(16)}${'impl'.padEnd(33)}${'dtype'.padEnd(6)}${'shape'.padEnd(18)}${'value'.padStart(10)} unit\n`);
  }
  const ratio = r.ratio !== undefined ? `   ${r.ratio.toFixed(2)}x ${r.baseline ?? ''}` : '';
  const value = Math.abs(r.value) >= 100 ? r.value.toFixed(1) : r.value.toFixed(2);
  process.stdout.write(`${r.bench.padEnd(16)}${r.impl.padEnd(33)}${r.dtype.padEnd(6)}${r.shape.join('x').padEnd(18)}${value.padStart(10)} ${r.unit}${ratio}\n`);
}

/** Commentary that is not a result: stderr in JSON mode, a `#` line on stdout otherwise. */
export function note(msg: string): void {
  if (json) process.stderr.write(msg + '\n');
  else process.stdout.write(`# ${msg}\n`);
}

/** The id `--filter` matches against: `bench/impl/dtype/shape`, e.g. `matmul/tfjs-wasm/f32/512x512x512`. */
export function caseId(bench: string, impl: string, dtype: string, shape: number[]): string {
  return `${bench}/${impl}/${dtype}/${shape.join('x')}`;
}

/** Whether the case passes `opts.filter`. */
export function selected(opts: BenchOptions, id: string): boolean {
  return opts.filter === undefined || id.includes(opts.filter);
}
