/**
 * Matmul ceiling benchmark: how close the f32 gemm at 1024³ comes to the multiply-add peak of the
 * WebAssembly SIMD instructions it may use, measured in the same run, and how it compares with
 * OpenBLAS.
 *
 * The ceiling: the loops of bench/ceiling-loops.ts (register-only accumulator chains, and the
 * micro-kernel's tile loop over L1-resident panels for several tile shapes), in plain SIMD128
 * (f32x4.mul + f32x4.add) and, where relaxed SIMD can be enabled (Node 20: V8's
 * `--experimental-wasm-relaxed-simd`, switched on at run time as the library does), with
 * `f32x4.relaxed_madd`. The fastest loop of each instruction set (picked on one thread) is then
 * timed on 1 thread and on all `--threads` threads at once (the calling thread plus workers, as
 * the gemm's pool runs), alternating with the gemm so that both see the same machine.
 *
 * Rows (shape of a ceiling row = [threads]):
 * - `matmul-ceiling/simd128-mul-add/f32/<t>`, `matmul-ceiling/relaxed-madd/f32/<t>`: GFLOP/s.
 * - `matmul-ceiling/mega-ts-1024-vs-ceiling/f32/1024x1024x1024`: the gemm's GFLOP/s on all
 *   threads, `ratio` = gemm ÷ the higher ceiling (same threads, same run: the median over the
 *   rounds of the gemm ÷ the ceiling timed just before it); `-1t` = on 1 thread.
 *   `-cpu` rows: the same with flops per CPU-second of this process instead of per wall-clock
 *   second — on a machine shared with other jobs, time slices taken by others do not count
 *   (what the threads do in their slices still does, and an idle pool thread costs nothing).
 * - `matmul-openblas/openblas/f32/1024x1024x1024`: PyTorch `torch.mm` with Debian's OpenBLAS
 *   (bench/torch_matmul.py, environment as in bench/mega.ts), same thread count, and
 *   `matmul-openblas/mega-ts-1024-vs-openblas/...`: the gemm's GFLOP/s, `ratio` = gemm ÷ OpenBLAS.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { gemm } from '../src/tensor/backends/cpu/gemm.js';
import { getNumThreads, setNumThreads } from '../src/tensor/backends/cpu/pool.js';
import { relaxedSimdValidates } from '../src/tensor/backends/cpu/wasm/features.js';
import { GEMM_SHAPES } from '../src/tensor/backends/cpu/wasm/gemm.js';
import { platform } from '../src/tensor/platform/node.js';
import { buildCeilingModule, fillOperands, type CeilingLoop, type Isa } from './ceiling-loops.js';
import { mallocEnv, openblasDir } from './env.js';
import { caseId, note, report, selected, type BenchOptions, type BenchResult } from './report.js';
import { fill } from './tfjs.js';

const N = 1024;
const SHAPE = [N, N, N];
const IMPL: Record<Isa, string> = { simd128: 'simd128-mul-add', relaxed: 'relaxed-madd' };
const VS_CEILING = 'mega-ts-1024-vs-ceiling';
const VS_OPENBLAS = 'mega-ts-1024-vs-openblas';
/** Alternating rounds (ceiling loops, gemm) per thread count. */
const ROUNDS = 9;

const here = path.dirname(fileURLToPath(import.meta.url));

/** Worker: instantiates the ceiling module and runs loop `ctrl[LOOP]` for `ctrl[ITERS]` iterations per go. */
const WORKER_SRC = `"use strict";
const { workerData } = require('node:worker_threads');
const { module, operands, names, ctrl: sab } = workerData;
const mem = new WebAssembly.Memory({ initial: 1, maximum: 1 });
new Uint8Array(mem.buffer).set(operands);
const ex = new WebAssembly.Instance(module, { env: { mem } }).exports;
const fns = names.map((n) => ex[n]);
const ctrl = new Int32Array(sab);
let seq = 0;
for (;;) {
  Atomics.wait(ctrl, 0, seq);
  seq = Atomics.load(ctrl, 0);
  if (ctrl[3] === 1) break;
  fns[ctrl[1]](ctrl[2]);
  if (Atomics.add(ctrl, 4, 1) + 1 === ctrl[5]) Atomics.notify(ctrl, 4);
}
`;

/** The ceiling loops, on the calling thread and `threads − 1` workers that run them at the same time. */
class CeilingGang {
  private readonly ex: Record<string, (iters: number) => number>;
  private readonly names: string[];
  private readonly ctrl = new Int32Array(new SharedArrayBuffer(32));
  private readonly workers: Worker[] = [];

  constructor(
    readonly loops: CeilingLoop[],
    bytes: Uint8Array<ArrayBuffer>,
    threads: number,
  ) {
    const module = new WebAssembly.Module(bytes);
    const mem = new WebAssembly.Memory({ initial: 1, maximum: 1 });
    fillOperands(mem);
    this.ex = new WebAssembly.Instance(module, { env: { mem } }).exports as typeof this.ex;
    this.names = loops.map((l) => l.name);
    const operands = new Uint8Array(mem.buffer).slice();
    for (let i = 1; i < threads; i++) {
      this.workers.push(new Worker(WORKER_SRC, { eval: true, workerData: { module, operands, names: this.names, ctrl: this.ctrl.buffer } }));
    }
  }

  /** Runs `loop` for `iters` iterations on `threads` threads (1 or all of the gang's); returns the wall time in ms. */
  run(loop: CeilingLoop, iters: number, threads: number): number {
    const c = this.ctrl;
    const helpers = threads - 1;
    const t0 = performance.now();
    if (helpers > 0) {
      c[1] = this.names.indexOf(loop.name);
      c[2] = iters;
      c[4] = 0;
      c[5] = helpers;
      Atomics.add(c, 0, 1);
      Atomics.notify(c, 0);
    }
    this.ex[loop.name](iters);
    if (helpers > 0) {
      for (let d = Atomics.load(c, 4); d < helpers; d = Atomics.load(c, 4)) Atomics.wait(c, 4, d);
    }
    return performance.now() - t0;
  }

  close(): void {
    this.ctrl[3] = 1;
    Atomics.add(this.ctrl, 0, 1);
    Atomics.notify(this.ctrl, 0);
    for (const w of this.workers) void w.terminate();
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Iterations of `loop` that do about as many flops as one 1024³ product. */
const itersFor = (loop: CeilingLoop): number => Math.max(1, Math.round((2 * N ** 3) / loop.flopsPerIter));

/** Per instruction set, the loop with the highest single-thread median, per CPU-second (after warm-up to Turbofan code). */
function pickLoops(gang: CeilingGang): Map<Isa, CeilingLoop> {
  const best = new Map<Isa, { loop: CeilingLoop; gflops: number }>();
  for (const loop of gang.loops) {
    const small = Math.max(1, itersFor(loop) >> 3);
    const w0 = performance.now();
    while (performance.now() - w0 < 150) gang.run(loop, small >> 1, 1); // Liftoff → Turbofan tier-up
    // per CPU-second: time slices that other processes take do not decide the pick
    const gflops = median([0, 1, 2, 3, 4].map(() => timed(small * loop.flopsPerIter, () => gang.run(loop, small, 1)).cpu));
    const cur = best.get(loop.isa);
    if (!cur || gflops > cur.gflops) best.set(loop.isa, { loop, gflops });
  }
  return new Map([...best].map(([isa, b]) => [isa, b.loop]));
}

/** GFLOP/s by wall-clock time and per CPU-second (all threads of this process) of one run of `fn`. */
function timed(flops: number, fn: () => void): { wall: number; cpu: number } {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  fn();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wall: flops / (wall * 1e6), cpu: flops / ((c.user + c.system) * 1e3) };
}

/** Medians of {@link timed} figures. */
interface Figures {
  wall: number;
  cpu: number;
}

/** Median figures of the chosen loops and of the gemm, alternating, on `threads` threads. */
interface Measured {
  ceiling: Map<Isa, Figures>;
  gemm: Figures;
  /** median over rounds of gemm ÷ that round's best ceiling, and which instruction set that was most often */
  ratio: Figures;
  top: { wall: Isa; cpu: Isa };
}

/**
 * Times the chosen loops and the 1024³ gemm in {@link ROUNDS} alternating rounds on `threads`
 * threads. Each round's ratio compares the gemm with the ceiling measured just before it (the
 * machine's other load then weighs on both alike); the figures are the medians.
 */
function measure(gang: CeilingGang, loops: Map<Isa, CeilingLoop>, threads: number): Measured {
  const before = getNumThreads();
  setNumThreads(threads);
  const a = fill(new Float32Array(N * N), 1);
  const b = fill(new Float32Array(N * N), 2);
  const c = new Float32Array(N * N);
  const product = () => gemm(a, b, c, 1, N, N, N, false, false, 0, 0);
  const w0 = performance.now();
  while (performance.now() - w0 < 300) product();
  for (const loop of loops.values()) gang.run(loop, itersFor(loop) >> 2, threads);
  const ceil = new Map<Isa, Figures[]>([...loops.keys()].map((k) => [k, []]));
  const gem: Figures[] = [];
  const ratios: Figures[] = [];
  const tops: { wall: Isa; cpu: Isa }[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (const [isa, loop] of loops) {
      const it = itersFor(loop);
      ceil.get(isa)!.push(timed(threads * it * loop.flopsPerIter, () => gang.run(loop, it, threads)));
    }
    const g = timed(2 * N ** 3, product);
    gem.push(g);
    const best = (kind: keyof Figures): Isa => [...ceil.keys()].reduce((x, y) => (ceil.get(y)![r][kind] > ceil.get(x)![r][kind] ? y : x));
    const top = { wall: best('wall'), cpu: best('cpu') };
    tops.push(top);
    ratios.push({ wall: g.wall / ceil.get(top.wall)![r].wall, cpu: g.cpu / ceil.get(top.cpu)![r].cpu });
  }
  setNumThreads(before);
  const med = (xs: Figures[]): Figures => ({ wall: median(xs.map((x) => x.wall)), cpu: median(xs.map((x) => x.cpu)) });
  const mode = (xs: Isa[]): Isa => (xs.filter((x) => x === 'relaxed').length * 2 > xs.length ? 'relaxed' : 'simd128');
  return {
    ceiling: new Map([...ceil].map(([k, v]) => [k, med(v)])),
    gemm: med(gem),
    ratio: med(ratios),
    top: { wall: mode(tops.map((t) => t.wall)), cpu: mode(tops.map((t) => t.cpu)) },
  };
}

/** torch.mm 1024³ f32 GFLOP/s with OpenBLAS on `threads` threads, or undefined (noted). */
function openblasGflops(threads: number): number | undefined {
  const py = process.env.MEGA_PYTHON ?? '/usr/bin/python3';
  const script = path.join(here, '..', '..', 'bench', 'torch_matmul.py');
  const src = existsSync(script) ? script : path.join(here, 'torch_matmul.py');
  const blas = openblasDir();
  if (!blas) {
    note('matmul-openblas skipped: no OpenBLAS found (MEGA_OPENBLAS_DIR or the system openblas-pthread folder)');
    return undefined;
  }
  const env: NodeJS.ProcessEnv = { ...process.env, ...mallocEnv(), OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) };
  env.LD_LIBRARY_PATH = [blas, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':');
  const r = spawnSync(py, [src, '--n', String(N), '--threads', String(threads)], { env, encoding: 'utf8', timeout: 120_000 });
  const line = r.status === 0 ? r.stdout.split('\n').find((l) => l.startsWith('{')) : undefined;
  if (!line) {
    note(`matmul-openblas skipped: ${py} ${src} failed: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-2).join(' ')}`);
    return undefined;
  }
  return (JSON.parse(line) as { gflops: number }).gflops;
}

/**
 * The WebAssembly SIMD multiply-add ceiling of this machine on `threads` threads, GFLOP/s: the
 * fastest ceiling loop (relaxed SIMD where this Node can enable it), median of 5 timings. The
 * training-step benchmark's lower bound on a step's time (`train-bound` rows).
 */
export function ceilingGflops(threads: number): number {
  if (!relaxedSimdValidates()) platform.enableRelaxedSimd?.();
  const { bytes, loops } = buildCeilingModule(relaxedSimdValidates());
  const gang = new CeilingGang(loops, bytes, threads);
  try {
    let best = 0;
    for (const loop of pickLoops(gang).values()) {
      const it = itersFor(loop);
      gang.run(loop, it >> 2, threads);
      const g = median([0, 1, 2, 3, 4].map(() => timed(threads * it * loop.flopsPerIter, () => gang.run(loop, it, threads)).wall));
      best = Math.max(best, g);
    }
    return best;
  } finally {
    gang.close();
  }
}

/** Run the ceiling benchmark and report every selected case. */
export async function runCeilingBench(opts: BenchOptions): Promise<void> {
  const threads = getNumThreads();
  const counts = threads > 1 ? [1, threads] : [1];
  const ids = [
    ...counts.flatMap((t) => Object.values(IMPL).map((impl) => caseId('matmul-ceiling', impl, 'f32', [t]))),
    ...['', '-1t', '-cpu', '-1t-cpu'].map((x) => caseId('matmul-ceiling', VS_CEILING + x, 'f32', SHAPE)),
    caseId('matmul-openblas', 'openblas', 'f32', SHAPE),
    caseId('matmul-openblas', VS_OPENBLAS, 'f32', SHAPE),
  ];
  if (!ids.some((id) => selected(opts, id))) return;

  // the ceiling counts relaxed SIMD whenever this Node can enable it, whether or not the kernels use it
  if (!relaxedSimdValidates()) platform.enableRelaxedSimd?.();
  const relaxed = relaxedSimdValidates();
  const { bytes, loops } = buildCeilingModule(relaxed);
  const gang = new CeilingGang(loops, bytes, threads);
  try {
    const chosen = pickLoops(gang);
    const s = GEMM_SHAPES.f32;
    note(
      `matmul-ceiling: relaxed SIMD ${relaxed ? 'available' : 'unavailable'}; gemm kernel ${s.MR}x${s.NR} ` +
        `${s.fma ? 'relaxed_madd' : 'mul+add'}; ceiling loops ${[...chosen.values()].map((l) => l.name).join(', ')}; ` +
        `${ROUNDS} alternating rounds, medians`,
    );
    const row = (bench: string, impl: string, shape: number[], value: number, extra: Partial<BenchResult> = {}): void => {
      if (selected(opts, caseId(bench, impl, 'f32', shape))) report({ bench, impl, dtype: 'f32', shape, value, unit: 'GFLOP/s', ...extra });
    };
    const gemmAt = new Map<number, number>();
    for (const t of counts) {
      const m = measure(gang, chosen, t);
      gemmAt.set(t, m.gemm.wall);
      for (const [isa, g] of m.ceiling) row('matmul-ceiling', IMPL[isa], [t], g.wall);
      const suffix = t === threads ? '' : '-1t';
      for (const kind of ['wall', 'cpu'] as const) {
        const impl = `${VS_CEILING}${suffix}${kind === 'cpu' ? '-cpu' : ''}`;
        row('matmul-ceiling', impl, SHAPE, m.gemm[kind], { ratio: m.ratio[kind], baseline: IMPL[m.top[kind]] });
      }
    }
    if (selected(opts, caseId('matmul-openblas', 'openblas', 'f32', SHAPE)) || selected(opts, caseId('matmul-openblas', VS_OPENBLAS, 'f32', SHAPE))) {
      const ob = openblasGflops(threads);
      if (ob !== undefined) {
        row('matmul-openblas', 'openblas', SHAPE, ob);
        const g = gemmAt.get(threads)!;
        row('matmul-openblas', VS_OPENBLAS, SHAPE, g, { ratio: g / ob, baseline: 'openblas' });
      }
    }
  } finally {
    gang.close();
  }
}
