/**
 * Mega layer benchmark: one `mega_lra_imdb`-sized `MovingAverageGatedAttention` (D 128, Z 64,
 * H 256, N 16, bidirectional EMA, softmax attention, scalenorm, post-norm, simple relative
 * bias, no dropout), input `L × B × D` f32, forward + backward (cotangent on the output, input
 * and all parameters require gradients). Reports tokens/s = B·L / median time.
 *
 * - `mega/<impl>/f32/<L>x<B>x<C>` with C = −1 (full attention) and C = 128 (chunked), L 1024, B 4;
 *   impl `mega-ts-cpu` (the SIMD kernels), `mega-ts-cpu-sysmalloc` (same, glibc malloc defaults,
 *   compared with `pytorch-sysmalloc`),
 *   `mega-ts-ts` (plain-TS reference kernels, `MEGA_SIMD=0`), and `pytorch` (bench/torch_mega.py
 *   with Debian's python3-torch; with OpenBLAS when `MEGA_OPENBLAS_DIR` or the system's
 *   openblas-pthread folder holds it; on n > 1 threads the faster of its two thread configurations
 *   per case, bench/torch-threads.ts). mega-ts rows carry `ratio` = mega-ts / PyTorch tokens/s.
 *   Every measurement runs in its own process, with the malloc settings of {@link mallocEnv}.
 * - `mega-enc/<impl>/f32/<L>x<B>x<C>`, impl `mega-ts-cpu` / `pytorch`, C = −1 and 128: the whole
 *   `MegaSentenceEncoderLayer` of issue 13's first figure (the layer above, then the post-norm
 *   NFFN with FFN 256), tokens/s with `ratio` = mega-ts / PyTorch, and `mega-enc-mem` rows (peak
 *   RSS of that process, MiB; mega-ts `ratio` = mega-ts / PyTorch, ≤ 1 = mega-ts smaller). One
 *   process per side and case; the sides alternate for `MEGA_BENCH_LAYER_REPS` rounds
 *   (default 1), figures are medians, ratios the median of the per-round ratios.
 *   `mega-enc-bound` rows: the tokens/s mega-ts would reach if the layer's matrix products (GFLOP
 *   counted in one step) ran at the WebAssembly SIMD multiply-add ceiling measured in the same
 *   run (bench/ceiling.ts, same thread count) and nothing else took any time; the ratio to
 *   PyTorch's tokens/s is the most any WebAssembly kernel work can give on this machine (below
 *   1.5, figure 1's target is out of reach of every implementation that only has those instructions).
 * - `mega-scale/mega-ts-cpu/f32/<L>x<B>x128` for L = 1k, 4k, 16k (B 4; env `MEGA_BENCH_SCALE_B`
 *   changes B): one child process per length, so each row's peak RSS is its own. Reports ms per
 *   step, the growth factor per 4× length (`ratio`, ≈ 4 means linear), and peak memory
 *   (`mega-mem` rows, MiB of max RSS, with the same growth `ratio`).
 */
import { residentScope } from '../src/tensor/backends/cpu/resident.js';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as F from '../src/autograd/index.js';
import { MovingAverageGatedAttention } from '../src/mega/attention.js';
import { MegaSentenceEncoderLayer } from '../src/mega/layers.js';
import { matmulStats } from '../src/tensor/backends/cpu/matmul.js';
import { getNumThreads } from '../src/tensor/backends/cpu/pool.js';
import type { FloatDType } from '../src/tensor/dtype.js';
import { Generator, randNormal } from '../src/tensor/random.js';
import { caseId, note, report, selected, type BenchOptions, type BenchResult } from './report.js';
import { ceilingGflops } from './ceiling.js';
import { mallocEnv, openblasDir } from './env.js';
import { torchEnv, torchThreadConfigs, torchThreadsLabel } from './torch-threads.js';
import { median, timeMedian } from './timing.js';

/** The layer configuration (mega_lra_imdb sizes; F = the NFFN width of the encoder layer). */
export const MEGA_CFG = { D: 128, Z: 64, H: 256, N: 16, F: 256 } as const;

/** What is timed: the Mega layer alone, or the whole `MegaSentenceEncoderLayer` (Mega + NFFN). */
export type LayerKind = 'attention' | 'encoder';

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * The benchmarked encoder layer (issue 13's first figure): MegaSentenceEncoderLayer with the
 * sizes of {@link MEGA_CFG}, softmax, scalenorm post-norm, simple relative bias, no dropout.
 * Also what test/bench/torch-encoder.test.ts compares with the PyTorch baseline.
 */
export function encoderLayer(L: number, C: number, dtype: FloatDType, gen: Generator): MegaSentenceEncoderLayer {
  const { D, Z, H, N, F: FFN } = MEGA_CFG;
  return new MegaSentenceEncoderLayer({ embeddingDim: D, zDim: Z, hiddenDim: H, nDim: N, ffnHiddenDim: FFN, ...layerOptions(L, C, dtype, gen) });
}

/** The options the two benchmarked layers share. */
function layerOptions(L: number, C: number, dtype: FloatDType, gen: Generator) {
  return {
    attentionActivation: 'softmax',
    normType: 'scalenorm',
    prenorm: false,
    chunkSize: C,
    maxPositions: Math.max(L, 1),
    relPosBias: 'simple',
    dtype,
    gen,
  } as const;
}

/** A fresh layer and input; `step()` runs forward + backward once (in a resident scope, as `mega train`). */
export function makeStep(
  L: number,
  B: number,
  C: number,
  seed = 1,
  kind: LayerKind = 'attention',
): { step: () => void; layer: MovingAverageGatedAttention | MegaSentenceEncoderLayer } {
  const gen = new Generator(seed);
  const { D, Z, H, N } = MEGA_CFG;
  const layer =
    kind === 'encoder'
      ? encoderLayer(L, C, 'f32', gen)
      : new MovingAverageGatedAttention({ embedDim: D, zdim: Z, hdim: H, ndim: N, bidirectional: true, ...layerOptions(L, C, 'f32', gen) });
  const x = randNormal([L, B, D], 0, 1, 'f32', gen);
  x.requiresGrad = true;
  const g = randNormal([L, B, D], 0, 1, 'f32', gen);
  const params = layer.parameters();
  const body = () => {
    for (const p of params) p.grad = null;
    x.grad = null;
    const out = layer instanceof MegaSentenceEncoderLayer ? layer.forward(x) : layer.forward(x).out; // L × B × D
    F.backward(out, g);
  };
  // as in training: the step's tensors in the wasm memory, reused from step to step
  const owner = {};
  const step = () => residentScope(owner, body, () => [...params, ...params.map((p) => p.grad), x.grad]);
  return { step, layer };
}

/**
 * Median ms of one forward + backward, and (`countFlops`: one more step) the GFLOP of its matrix
 * products, else 0.
 */
function timeStep(L: number, B: number, C: number, maxMs: number, kind: LayerKind, countFlops: boolean): { ms: number; gflop: number } {
  const { step } = makeStep(L, B, C, 1, kind);
  const ms = timeMedian(step, { warmup: 2, warmupMs: 500, minReps: 3, maxReps: 11, maxMs });
  if (!countFlops) return { ms, gflop: 0 };
  const f0 = matmulStats().flops;
  step();
  return { ms, gflop: (matmulStats().flops - f0) / 1e9 };
}

/** One PyTorch measurement: tokens/s and the peak RSS of its process (MiB). */
interface TorchMeasured {
  tokensPerS: number;
  maxRssMiB: number;
}

/** Runs the PyTorch baseline; returns its figures per case key `L,B,C`, or undefined (noted). */
function torchBaseline(
  cases: [number, number, number][],
  threads: number,
  malloc: NodeJS.ProcessEnv,
  kind: LayerKind = 'attention',
  quiet = false,
): Map<string, TorchMeasured> | undefined {
  const py = process.env.MEGA_PYTHON ?? '/usr/bin/python3';
  const script = path.join(here, '..', '..', 'bench', 'torch_mega.py');
  const src = existsSync(script) ? script : path.join(here, 'torch_mega.py');
  if (!existsSync(src)) {
    note(`pytorch baseline skipped: ${src} not found`);
    return undefined;
  }
  const blas = openblasDir();
  const arg = cases.map((c) => c.join(',')).join(';');
  // one process per thread configuration (bench/torch-threads.ts); per case the fastest
  const out = new Map<string, TorchMeasured>();
  const seen: string[] = [];
  for (const t of torchThreadConfigs(threads)) {
    const env = torchEnv({ ...process.env, ...malloc }, t);
    if (blas) env.LD_LIBRARY_PATH = [blas, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':');
    const r = spawnSync(py, [src, '--cases', arg, '--threads', String(t.omp), '--layer', kind], { env, encoding: 'utf8', timeout: 15 * 60_000 });
    if (r.status !== 0) {
      note(`pytorch baseline unavailable (${py}): ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-2).join(' ')}`);
      return undefined;
    }
    for (const line of r.stdout.split('\n')) {
      if (!line.startsWith('{')) continue;
      const o = JSON.parse(line) as { L: number; B: number; C: number; tokens_per_s: number; max_rss_mib: number };
      const key = `${o.L},${o.B},${o.C}`;
      seen.push(`${key} ${torchThreadsLabel(t)} ${Math.round(o.tokens_per_s)}`);
      const prev = out.get(key);
      if (!prev || o.tokens_per_s > prev.tokensPerS) out.set(key, { tokensPerS: o.tokens_per_s, maxRssMiB: o.max_rss_mib });
    }
  }
  if (!quiet)
    note(
      blas
        ? `pytorch: ${py}, OpenBLAS from ${blas}, ${threads} thread(s)${Object.keys(malloc).length ? '' : ', system malloc'}`
        : 'pytorch ran WITHOUT OpenBLAS (reference BLAS, ~30x slower); see docs/BACKENDS.md / MEGA_OPENBLAS_DIR',
    );
  if (seen.length > cases.length) note(`pytorch tokens/s per thread configuration (the fastest per case is the baseline): ${seen.join('; ')}`);
  return out;
}

/** What one child process measured: ms per step, its peak RSS, GFLOP of matrix products per step (encoder cases; else 0). */
interface ChildMeasured {
  ms: number;
  maxRssMiB: number;
  gflop: number;
}

/** Child-process entry: `--mega-child L,B,C[,encoder]` prints a {@link ChildMeasured}. */
export function megaChild(spec: string): void {
  const [L, B, C] = spec.split(',').slice(0, 3).map(Number);
  const kind: LayerKind = spec.endsWith(',encoder') ? 'encoder' : 'attention';
  const { ms, gflop } = timeStep(L, B, C, Number(process.env.MEGA_BENCH_MAX_MS ?? 6000), kind, kind === 'encoder');
  const maxRssMiB = process.resourceUsage().maxRSS / 1024;
  const out: ChildMeasured = { ms, maxRssMiB, gflop };
  process.stdout.write(JSON.stringify(out) + '\n');
}

/** Runs one case in a fresh process; undefined (noted) on failure. */
function child(L: number, B: number, C: number, env: NodeJS.ProcessEnv, kind: LayerKind = 'attention'): ChildMeasured | undefined {
  const entry = fileURLToPath(import.meta.url).replace(/mega\.js$/, 'run.js');
  const spec = kind === 'encoder' ? `${L},${B},${C},encoder` : `${L},${B},${C}`;
  const r = spawnSync(process.execPath, ['--expose-gc', entry, '--mega-child', spec], {
    encoding: 'utf8',
    env: { ...process.env, MEGA_THREADS: String(getNumThreads()), ...env },
    timeout: 30 * 60_000,
    maxBuffer: 1 << 20,
  });
  const line = r.stdout?.split('\n').find((x) => x.startsWith('{'));
  if (r.status !== 0 || !line) {
    note(`mega L=${L} B=${B} C=${C}: child failed: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-3).join(' ')}`);
    return undefined;
  }
  return JSON.parse(line) as ChildMeasured;
}

/** Run the Mega layer benchmarks (every measurement in its own process). */
export async function runMegaBench(opts: BenchOptions): Promise<void> {
  const B = 4,
    L = 1024;
  const headline: [number, number, number][] = [
    [L, B, -1],
    [L, B, 128],
  ];
  const shape = (l: number, b: number, c: number) => [l, b, c];
  const IMPLS: [string, NodeJS.ProcessEnv][] = [
    ['mega-ts-cpu', { ...mallocEnv() }],
    ['mega-ts-cpu-sysmalloc', {}],
    ['mega-ts-ts', { ...mallocEnv(), MEGA_SIMD: '0', MEGA_BENCH_MAX_MS: '3000' }],
  ];
  const wantAny = headline.some(([l, b, c]) =>
    [...IMPLS.map((i) => i[0]), 'pytorch', 'pytorch-sysmalloc'].some((i) => selected(opts, caseId('mega', i, 'f32', shape(l, b, c)))),
  );
  const threads = getNumThreads();
  if (wantAny) {
    note(
      `mega layer: D ${MEGA_CFG.D}, Z ${MEGA_CFG.Z}, H ${MEGA_CFG.H}, N ${MEGA_CFG.N}, bidirectional, ` +
        `softmax, scalenorm, f32, forward + backward, ${threads} thread(s); tokens/s = B·L / median step`,
    );
    note(
      `mega: mega-ts-cpu = SIMD kernels, mega-ts-ts = plain-TS reference kernels, both ` +
        `${mallocEnv().MALLOC_MMAP_THRESHOLD_ ? 'with MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ set (as pytorch)' : 'with system malloc'}; ` +
        `-sysmalloc = system malloc defaults`,
    );
    const torchCases = headline.filter(([l, b, c]) => selected(opts, caseId('mega', 'pytorch', 'f32', shape(l, b, c))));
    const torch = torchCases.length > 0 ? torchBaseline(torchCases, threads, mallocEnv()) : undefined;
    const sysCases = headline.filter(([l, b, c]) => selected(opts, caseId('mega', 'pytorch-sysmalloc', 'f32', shape(l, b, c))));
    const torchSys = sysCases.length > 0 ? torchBaseline(sysCases, threads, {}) : undefined;
    for (const [l, b, c] of headline) {
      const row = (impl: string, value: number): BenchResult => ({ bench: 'mega', impl, dtype: 'f32', shape: shape(l, b, c), value, unit: 'tokens/s' });
      const base = torch?.get(`${l},${b},${c}`)?.tokensPerS;
      const baseRow = base !== undefined ? row('pytorch', base) : undefined;
      if (baseRow) report(baseRow);
      const sys = torchSys?.get(`${l},${b},${c}`)?.tokensPerS;
      const sysRow = sys !== undefined ? row('pytorch-sysmalloc', sys) : undefined;
      if (sysRow) report(sysRow);
      for (const [impl, env] of IMPLS) {
        if (!selected(opts, caseId('mega', impl, 'f32', shape(l, b, c)))) continue;
        const res = child(l, b, c, env);
        if (!res) continue;
        const r = row(impl, (l * b) / (res.ms / 1000));
        // same malloc settings compared: tuned with pytorch, system defaults with pytorch-sysmalloc
        const ref = impl.endsWith('-sysmalloc') ? sysRow : baseRow;
        report(ref ? { ...r, ratio: r.value / ref.value, baseline: ref.impl } : r);
      }
    }
  }

  runEncoderBench(opts, headline, threads);

  // scaling: one child process per length (clean peak RSS)
  const sb = Number(process.env.MEGA_BENCH_SCALE_B ?? 4);
  const lengths = [1024, 4096, 16384];
  const scaleCases = lengths.filter((l) => selected(opts, caseId('mega-scale', 'mega-ts-cpu', 'f32', shape(l, sb, 128))));
  if (scaleCases.length === 0) return;
  note(`mega layer scaling, chunk 128, batch ${sb}: ms per forward + backward; ratio = growth per 4x length (4 = linear); mega-mem = peak RSS of that process`);
  let prev: { l: number; ms: number; maxRssMiB: number } | undefined;
  for (const l of scaleCases) {
    const res = child(l, sb, 128, mallocEnv());
    if (!res) continue;
    const r: BenchResult = { bench: 'mega-scale', impl: 'mega-ts-cpu', dtype: 'f32', shape: shape(l, sb, 128), value: res.ms, unit: 'ms' };
    const m: BenchResult = { bench: 'mega-mem', impl: 'mega-ts-cpu', dtype: 'f32', shape: shape(l, sb, 128), value: res.maxRssMiB, unit: 'MiB' };
    const grew = prev !== undefined && l === prev.l * 4;
    report(grew ? { ...r, ratio: res.ms / prev!.ms, baseline: `L=${prev!.l}` } : r);
    report(grew ? { ...m, ratio: res.maxRssMiB / prev!.maxRssMiB, baseline: `L=${prev!.l}` } : m);
    prev = { l, ...res };
  }
}

/**
 * The `mega-enc` cases: the whole MegaSentenceEncoderLayer, mega-ts vs PyTorch, each side and
 * case in its own process (clean peak RSS), alternating for `MEGA_BENCH_LAYER_REPS` rounds.
 */
function runEncoderBench(opts: BenchOptions, cases: [number, number, number][], threads: number): void {
  const reps = Number(process.env.MEGA_BENCH_LAYER_REPS ?? 1);
  const want = (impl: string, c: [number, number, number]) => selected(opts, caseId('mega-enc', impl, 'f32', c));
  const todo = cases.filter((c) => want('mega-ts-cpu', c) || want('pytorch', c));
  if (todo.length === 0) return;
  note(
    `mega-enc: MegaSentenceEncoderLayer (Mega layer as above + post-norm NFFN, FFN ${MEGA_CFG.F}), f32, forward + backward, ` +
      `${threads} thread(s), both sides with the tuned malloc settings; ${reps} alternating round(s) of one process per side; ` +
      `mega-enc-mem = peak RSS of that process (runtime included), ratio mega-ts / PyTorch`,
  );
  let ceiling: number | undefined;
  for (const c of todo) {
    const [l, b] = c;
    const mega: { tokensPerS: number; maxRssMiB: number; gflop: number }[] = [];
    const torch: TorchMeasured[] = [];
    for (let i = 0; i < reps; i++) {
      const t = want('pytorch', c) ? torchBaseline([c], threads, mallocEnv(), 'encoder', i > 0 || c !== todo[0])?.get(c.join(',')) : undefined;
      if (t) torch.push(t);
      const m = want('mega-ts-cpu', c) ? child(...c, mallocEnv(), 'encoder') : undefined;
      if (m) mega.push({ tokensPerS: (l * b) / (m.ms / 1000), maxRssMiB: m.maxRssMiB, gflop: m.gflop });
    }
    const row = (bench: string, impl: string, value: number, unit: string): BenchResult => ({ bench, impl, dtype: 'f32', shape: c, value, unit });
    if (torch.length > 0) {
      report(row('mega-enc', 'pytorch', median(torch.map((x) => x.tokensPerS)), 'tokens/s'));
      report(row('mega-enc-mem', 'pytorch', median(torch.map((x) => x.maxRssMiB)), 'MiB'));
    }
    if (mega.length === 0) continue;
    const pairs = Math.min(mega.length, torch.length);
    const perRound = (f: (i: number) => number) => (pairs > 0 ? { ratio: median(Array.from({ length: pairs }, (_, i) => f(i))), baseline: 'pytorch' } : {});
    report({
      ...row('mega-enc', 'mega-ts-cpu', median(mega.map((x) => x.tokensPerS)), 'tokens/s'),
      ...perRound((i) => mega[i].tokensPerS / torch[i].tokensPerS),
    });
    report({ ...row('mega-enc-mem', 'mega-ts-cpu', median(mega.map((x) => x.maxRssMiB)), 'MiB'), ...perRound((i) => mega[i].maxRssMiB / torch[i].maxRssMiB) });
    const gflop = median(mega.map((x) => x.gflop));
    if (torch.length > 0 && gflop > 0 && selected(opts, caseId('mega-enc-bound', 'mega-ts-cpu', 'f32', c))) {
      // every product at the SIMD ceiling and nothing else taking any time
      ceiling ??= ceilingGflops(threads);
      const tokensPerS = (l * b) / (gflop / ceiling);
      note(`mega-enc-bound ${c.join('x')}: ${gflop.toFixed(2)} GFLOP of products per step, SIMD ceiling ${ceiling.toFixed(1)} GFLOP/s, ${threads} thread(s)`);
      const ratio = tokensPerS / median(torch.map((x) => x.tokensPerS));
      report({ ...row('mega-enc-bound', 'mega-ts-cpu', tokensPerS, 'tokens/s'), ratio, baseline: 'pytorch' });
    }
  }
}
