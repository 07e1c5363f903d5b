/** The SIMD elementwise maps write exactly their range [s, e): no lane past the end. */
import { expect, it } from 'vitest';
import { wasmRuntime } from '../../../../src/tensor/backends/cpu/wasm/runtime.js';

it('unary maps stop at the end of their range (f32 and f64, every remainder)', () => {
  const rt = wasmRuntime();
  expect(rt, 'the SIMD runtime must load').not.toBeNull();
  const mem = rt!.memory.buffer as SharedArrayBuffer;
  for (const [dt, E, Arr] of [
    ['f32', 4, Float32Array],
    ['f64', 8, Float64Array],
  ] as const) {
    const fn = rt!.main.ex[`un_neg_${dt}`];
    expect(typeof fn).toBe('function');
    const base = 1 << 16; // well inside the first pages; the arena is not used by this test
    for (let n = 1; n <= 9; n++) {
      const x = new Arr(mem, base, 16);
      const out = new Arr(mem, base + 16 * E, 16);
      for (let i = 0; i < 16; i++) x[i] = i + 1;
      out.fill(123);
      fn(0, n, base, base + 16 * E);
      for (let i = 0; i < 16; i++) expect(out[i], `${dt} n=${n} i=${i}`).toBe(i < n ? -(i + 1) : 123);
    }
  }
});
