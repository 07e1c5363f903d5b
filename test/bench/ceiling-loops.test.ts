/**
 * The matmul ceiling's loops (bench/ceiling-loops.ts) do the multiply-adds they are credited
 * with: each loop's result, run for a few iterations, equals the same arithmetic recomputed here
 * in plain TypeScript from the loop's declared shape and flop count (f32 rounding per step; fused
 * for relaxed SIMD on a CPU with FMA) — a loop that skipped or repeated work, or a wrong
 * `flopsPerIter`, gives another number.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildCeilingModule, CEILING_LAYOUT, fillOperands, type CeilingLoop } from '../../bench/ceiling-loops.js';
import { relaxedSimd } from '../../src/tensor/backends/cpu/wasm/features.js';
import { fusedMulAdd, mulAdd } from '../tensor/backends/cpu/gemm-emulate.js';

const fma = process.platform === 'linux' && process.arch === 'x64' && /^flags\s*:.*\bfma\b/m.test(readFileSync('/proc/cpuinfo', 'utf8'));

/** Lane 0 of `loop(iters)`, recomputed. */
function emulate(loop: CeilingLoop, mem: Float32Array, iters: number): number {
  const f = Math.fround;
  const accs = Array.from({ length: loop.R * loop.V }, (_, i) => f(0.25 + i / 64));
  const steps = loop.flopsPerIter / (8 * accs.length); // per iteration, per accumulator
  const kernelStep = loop.isa === 'relaxed' && fma ? fusedMulAdd : mulAdd; // acc + a·b
  for (let it = 0; it < iters; it++) {
    for (let k = 0; k < steps; k++) {
      if (loop.kind === 'chain') {
        const [s, t] = [mem[CEILING_LAYOUT.CHAIN_ST / 4], mem[CEILING_LAYOUT.CHAIN_ST / 4 + 1]];
        for (let i = 0; i < accs.length; i++) accs[i] = loop.isa === 'relaxed' && fma ? fusedMulAdd(accs[i], s, t) : f(f(accs[i] * s) + t);
      } else {
        for (let r = 0; r < loop.R; r++) {
          const a = mem[CEILING_LAYOUT.PANEL_A / 4 + k * loop.R + r];
          for (let v = 0; v < loop.V; v++) {
            const b = mem[CEILING_LAYOUT.PANEL_B / 4 + (k * loop.V + v) * 4]; // lane 0 of vector v of step k
            accs[r * loop.V + v] = kernelStep(a, b, accs[r * loop.V + v]);
          }
        }
      }
    }
  }
  return accs.reduce((s, x) => f(s + x));
}

describe('matmul ceiling loops', () => {
  const { bytes, loops } = buildCeilingModule(relaxedSimd());
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1 });
  fillOperands(memory);
  const ex = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { mem: memory } }).exports as Record<string, (n: number) => number>;
  const mem = new Float32Array(memory.buffer);

  it('cover both instruction sets and both kinds', () => {
    expect(relaxedSimd()).toBe(true);
    for (const isa of ['simd128', 'relaxed']) for (const kind of ['chain', 'outer']) expect(loops.some((l) => l.isa === isa && l.kind === kind)).toBe(true);
  });

  for (const loop of loops) {
    it(`${loop.name}: 3 iterations = ${loop.flopsPerIter * 3} flops of the declared arithmetic`, () => {
      expect(ex[loop.name](3)).toBe(emulate(loop, mem, 3));
      expect(ex[loop.name](0)).toBe(emulate(loop, mem, 0));
    });
  }
});
