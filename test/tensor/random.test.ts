/** The bulk paths of the generator: fillUniforms and dropoutMask (TypeScript and WebAssembly) against the one-draw-at-a-time definitions. */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { keepThreshold } from '../../src/tensor/backends/cpu/random-simd.js';
import { isResident, residentScope } from '../../src/tensor/backends/cpu/resident.js';
import { setSimd, simdStatus, wasmRuntime } from '../../src/tensor/backends/cpu/wasm/runtime.js';
import { dropoutMask, Generator } from '../../src/tensor/random.js';

describe('Generator.fillUniforms', () => {
  it('gives the values of repeated uniform() calls and leaves the same state', () => {
    const a = new Generator(1234),
      b = new Generator(1234);
    const one = Array.from({ length: 1000 }, () => a.uniform());
    const bulk = new Float64Array(1200).fill(-1);
    b.fillUniforms(bulk, 1000);
    expect(Array.from(bulk.subarray(0, 1000))).toEqual(one);
    expect(bulk[1000]).toBe(-1);
    expect(b.getState()).toEqual(a.getState());
    expect(b.uniform()).toBe(a.uniform());
  });
});

describe('dropoutMask', () => {
  it.each([
    ['f32', 0.1],
    ['f32', 0.3],
    ['f64', 0.1],
  ] as const)('%s p=%s: u rounded to the dtype ≥ p → 1/(1−p) in the dtype, else 0, one draw per element', (dtype, p) => {
    const g = new Generator(7),
      ref = new Generator(7);
    const m = dropoutMask([40, 110], p, dtype, g); // more than one 4096-draw chunk
    const r = dtype === 'f32' ? Math.fround : (v: number) => v;
    const scale = r(1 / (1 - p));
    const expected = Array.from({ length: 4400 }, () => (r(ref.uniform()) >= r(p) ? scale : 0));
    expect(Array.from(m.storage)).toEqual(expected);
    expect(m.shape).toEqual([40, 110]);
    expect(m.dtype).toBe(dtype);
    expect(g.getState()).toEqual(ref.getState());
    const kept = expected.filter((v) => v !== 0).length / 4400;
    expect(Math.abs(kept - (1 - p))).toBeLessThan(0.05);
  });
});

describe('dropoutMask: the WebAssembly kernel against the TypeScript loop', () => {
  const paths = () => {
    const rt = wasmRuntime();
    if (!rt) throw new Error('the wasm kernels are unavailable here');
    return rt;
  };
  // the kernels on for these cases (also under MEGA_SIMD=0), the setting restored after them
  const initialSimd = simdStatus().enabled;
  beforeAll(() => setSimd(true));
  afterAll(() => setSimd(initialSimd));
  afterEach(() => setSimd(true));

  /** The mask and the generator state after it, drawn with the wasm kernels on or off (optionally resident). */
  function draw(simd: boolean, resident: boolean, shape: number[], p: number, dtype: 'f32' | 'f64', seed: number) {
    setSimd(simd);
    const g = new Generator(seed);
    g.uniform(); // a state that is not fresh from seeding
    let values: number[] = [];
    let wasResident = false;
    const run = () => {
      const m = dropoutMask(shape, p, dtype, g);
      wasResident = isResident(m.storage);
      values = Array.from(m.storage);
    };
    if (resident) residentScope({}, run, () => []);
    else run();
    const next = g.nextU32();
    setSimd(true);
    return { values, state: g.getState(), next, wasResident };
  }

  it.each([
    ['f32', 0.1, [3, 1000], 11],
    ['f32', 0.5, [7], 12],
    ['f32', 0.999, [2, 5000], 13],
    ['f32', 0, [64], 14],
    ['f64', 0.1, [3, 1000], 15],
    ['f64', 0.75, [1, 9999], 16],
  ] as const)('%s p=%s shape %j: bitwise the same values and generator state, ordinary and resident output', (dtype, p, shape, seed) => {
    paths();
    const ref = draw(false, false, [...shape], p, dtype, seed);
    const plain = draw(true, false, [...shape], p, dtype, seed);
    const res = draw(true, true, [...shape], p, dtype, seed);
    expect(res.wasResident).toBe(true);
    expect(plain.wasResident).toBe(false);
    for (const got of [plain, res]) {
      expect(got.values).toEqual(ref.values);
      expect(got.state).toEqual(ref.state);
      expect(got.next).toBe(ref.next);
    }
    // the reference itself: one uniform per element, rounded to the dtype, compared with p
    const g = new Generator(seed);
    g.uniform();
    const r = dtype === 'f32' ? Math.fround : (v: number) => v;
    const n = shape.reduce((a, b) => a * b, 1);
    const expected = Array.from({ length: n }, () => (r(g.uniform()) >= r(p) ? r(1 / (1 - p)) : 0));
    expect(plain.values).toEqual(expected);
  });
});

describe('keepThreshold', () => {
  it.each([0, 0.1, 0.3, 0.5, 0.999, 1 - 2 ** -26, 1, 2 ** -40])('p=%s: the smallest draw the TypeScript test keeps (f32 and f64)', (p) => {
    for (const f32 of [true, false]) {
      const pp = f32 ? Math.fround(p) : p;
      const keeps = (r: number) => (f32 ? Math.fround(r / 2 ** 32) : r / 2 ** 32) >= pp;
      const r0 = keepThreshold(pp, f32);
      if (r0 < 2 ** 32) expect(keeps(r0)).toBe(true);
      else expect(keeps(2 ** 32 - 1)).toBe(false);
      if (r0 > 0) expect(keeps(r0 - 1)).toBe(false);
      // the test is monotone: a few draws on each side
      for (const d of [1, 2, 1000, 2 ** 20]) {
        if (r0 + d < 2 ** 32) expect(keeps(r0 + d)).toBe(true);
        if (r0 - d - 1 >= 0) expect(keeps(r0 - d - 1)).toBe(false);
      }
    }
    expect(keepThreshold(Math.fround(1 - 2 ** -26), true)).toBeLessThan(2 ** 32); // rounds up to 1.0 in f32: the top draws keep
    expect(keepThreshold(1, false)).toBe(2 ** 32);
  });
});
