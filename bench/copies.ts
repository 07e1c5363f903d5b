/**
 * Data-movement benchmark: milliseconds per call of the copies a Mega layer step makes (L 1024,
 * B 4, D 128, f32), inside a resident scope as in training — sources resident, outputs resident
 * blocks (released after each call):
 *
 * - `transpose`: the `[B, D, L]` view of a time-major `[L, B, D]` tensor made contiguous (the EMA's
 *   operands when a kernel stages them); `flip-transpose`: the same with time reversed (the
 *   flipped gradient of the EMA kernel's convolution);
 * - `concat`: four pieces `[L, B, 128 | 64 | 256 | 128]` along the last axis (the backward of
 *   `split` of the layer's `mx_proj` output);
 * - `pad`: the EMA kernel `[D, L]` padded on the left to `2L − 1`; `pad-flip`: flipped, padded on
 *   the right (the bidirectional kernel).
 *
 * Impls: `mega-ts-cpu` — the kernels as registered (the WebAssembly copies, copy-simd.ts, on the
 * wasm pool) — and `mega-ts-js`, the plain-JS kernels they replace (copy-fast.ts, indexing.ts,
 * indexing-fast.ts), called directly; mega-ts-cpu rows carry `ratio` = js ms / wasm ms.
 */
import { copyStrided } from '../src/tensor/backends/cpu/copy-fast.js';
import { concatCpu, padCpu } from '../src/tensor/backends/cpu/indexing.js';
import { padFast } from '../src/tensor/backends/cpu/indexing-fast.js';
import { residentRelease, residentScope, scopeBlock } from '../src/tensor/backends/cpu/resident.js';
import { simdStatus } from '../src/tensor/backends/cpu/wasm/runtime.js';
import * as K from '../src/tensor/kernels.js';
import { fromStorage, type Tensor } from '../src/tensor/tensor.js';
import * as V from '../src/tensor/view.js';
import { caseId, note, report, selected, type BenchOptions, type BenchResult } from './report.js';
import { fill } from './tfjs.js';
import { timeMedian } from './timing.js';

const [L, B, D] = [1024, 4, 128];
const WASM = 'mega-ts-cpu';
const JS = 'mega-ts-js';

/** One case: its source shape and the two implementations of the call. */
interface Case {
  name: string;
  shape: number[];
  run: Record<typeof WASM | typeof JS, () => Tensor>;
}

/** The cases, over resident sources made in the open scope. */
function cases(): Case[] {
  const resident = (shape: number[], seed: number) => K.copy(fromStorage(fill(new Float32Array(shape.reduce((a, b) => a * b, 1)), seed), shape));
  const x = resident([L, B, D], 1);
  const xt = V.permute(x, [1, 2, 0]); // B × D × L
  const xf = V.flip(xt, [2]);
  const pieces = [D, 64, 256, D].map((w, i) => resident([L, B, w], 2 + i));
  const k = resident([D, L], 7);
  const left: [number, number][] = [
    [0, 0],
    [L - 1, 0],
  ];
  const right: [number, number][] = [
    [0, 0],
    [0, L - 1],
  ];
  return [
    { name: 'transpose', shape: [B, D, L], run: { [WASM]: () => K.copy(xt), [JS]: () => copyStrided(xt)! } },
    { name: 'flip-transpose', shape: [B, D, L], run: { [WASM]: () => K.copy(xf), [JS]: () => copyStrided(xf)! } },
    { name: 'concat', shape: [L, B, 576], run: { [WASM]: () => K.concat(pieces, 2), [JS]: () => concatCpu(pieces, 2) } },
    { name: 'pad', shape: [D, L], run: { [WASM]: () => K.pad(k, left, 0), [JS]: () => padFast(k, left, 0) ?? padCpu(k, left, 0) } },
    { name: 'pad-flip', shape: [D, L], run: { [WASM]: () => K.pad(V.flip(k, [1]), right, 0), [JS]: () => padCpu(V.flip(k, [1]), right, 0) } },
  ];
}

/** Run the data-movement benchmark. */
export async function runCopiesBench(opts: BenchOptions): Promise<void> {
  if (!simdStatus().enabled) {
    note(`copies: WebAssembly SIMD is off (${simdStatus().reason}); nothing to compare`);
    return;
  }
  const id = (c: { name: string; shape: number[] }, impl: string) => caseId('copies', `${impl}/${c.name}`, 'f32', c.shape);
  residentScope(
    {},
    () => {
      for (const c of cases()) {
        if (!selected(opts, id(c, WASM)) && !selected(opts, id(c, JS))) continue;
        const ms: Record<string, number> = {};
        for (const impl of [JS, WASM] as const) {
          ms[impl] = timeMedian(() => residentRelease(scopeBlock(c.run[impl]())), { warmup: 3, minReps: 9, maxReps: 41, maxMs: 1000 });
        }
        const row = (impl: string): BenchResult => ({ bench: 'copies', impl: `${impl}/${c.name}`, dtype: 'f32', shape: c.shape, value: ms[impl], unit: 'ms' });
        report(row(JS));
        report({ ...row(WASM), ratio: ms[JS] / ms[WASM], baseline: `${JS}/${c.name}` });
      }
    },
    () => [],
  );
}
