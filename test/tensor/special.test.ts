/** erf against reference values (Abramowitz & Stegun table 7.1 / high-precision values), to a few ulp; erf32 against erf. */
import { describe, expect, it } from 'vitest';
import { erf, erf32, erfSeries } from '../../src/tensor/special.js';
import { fromArray } from '../../src/tensor/create.js';
import * as K from '../../src/tensor/kernels.js';

// values written as the nearest double (the shortest literal that reads back to it)
const REF: [number, number][] = [
  [0.1, 0.1124629160182849],
  [0.5, 0.5204998778130465],
  [1, 0.8427007929497149],
  [1.5, 0.9661051464753108],
  [2, 0.9953222650189527],
  [2.5, 0.999593047982555],
  [3, 0.9999779095030014],
  [4, 0.9999999845827421],
  [0.7, 0.6778011938374184],
  [1.3, 0.9340079449406524],
  [1.8, 0.9890905016357306],
  [2.39, 0.9992750636704192],
  [2.45, 0.999469419887749],
  [3.3, 0.9999969422902036],
];

describe('erf', () => {
  it('matches reference values to ≤ 5 ulp, odd, saturating, NaN-propagating', () => {
    for (const [x, e] of REF) {
      expect(Math.abs(erf(x) - e) / e, `erf(${x})`).toBeLessThanOrEqual(1e-15);
      expect(erf(-x)).toBe(-erf(x));
    }
    expect(erf(0)).toBe(0);
    expect(erf(7)).toBe(1);
    expect(erf(-Infinity)).toBe(-1);
    expect(erf(NaN)).toBeNaN();
  });
});

describe('erf (Taylor table) against its series reference', () => {
  it("agrees within both evaluations' few-ulp errors over [-7, 7] (relatively near 0)", () => {
    let worst = 0;
    for (let j = 0; j <= 200000; j++) {
      const x = -7 + (14 * j) / 200000 + 1e-7 * Math.sin(j);
      const a = erf(x),
        b = erfSeries(x);
      worst = Math.max(worst, Math.abs(a - b) / Math.max(Math.abs(b) < 0.5 ? Math.abs(b) : 1, 1e-300));
    }
    expect(worst).toBeLessThanOrEqual(2.5e-15);
    for (const x of [1e-300, 1e-12, 3e-5]) expect(Math.abs(erf(x) - erfSeries(x)) / erfSeries(x)).toBeLessThanOrEqual(2.3e-16);
  });
});

describe('erf32 (float32 arithmetic)', () => {
  const f32 = new Float32Array(1),
    u32 = new Uint32Array(f32.buffer);
  /** Spacing of the float32 values at |v| (the ulp of a float32 v). */
  const ulp = (v: number): number => {
    f32[0] = Math.abs(v);
    const a = f32[0];
    u32[0] += 1;
    return f32[0] - a;
  };

  it('is within 1.5 ulp of erf rounded to float32 over [0, 4.5] (every 211th float32), and odd', () => {
    f32[0] = 4.5;
    const end = u32[0];
    let worst = 0;
    for (let b = 0; b <= end; b += 211) {
      u32[0] = b;
      const x = f32[0];
      const ref = erf(x);
      worst = Math.max(worst, Math.abs(erf32(x) - ref) / ulp(Math.fround(ref) || 1e-45));
      expect(erf32(-x)).toBe(-erf32(x));
    }
    expect(worst).toBeLessThanOrEqual(1.5);
    expect(worst).toBeGreaterThan(0.5); // not correctly rounded everywhere: a float32 evaluation, not erf rounded
  });

  it('keeps ±0 and NaN, saturates at ±1, returns float32 values', () => {
    expect(Object.is(erf32(0), 0)).toBe(true);
    expect(Object.is(erf32(-0), -0)).toBe(true);
    expect(erf32(NaN)).toBeNaN();
    expect([erf32(Infinity), erf32(-Infinity), erf32(3.93), erf32(40)]).toEqual([1, -1, 1, 1]);
    expect(erf32(-1e-30)).toBe(Math.fround(-1e-30 - 1e-30 * 0.12837917));
    for (const x of [0.1, 0.875, 0.9, 1.5, 2, 2.5, 3.9]) expect(Math.fround(erf32(Math.fround(x)))).toBe(erf32(Math.fround(x)));
  });

  it('is what the f32 erf kernel computes (f64 keeps erf)', () => {
    const xs = [-5, -2.5, -0.3, 0, 0.2, 0.875, 1.1, 2.1, 3.5, 4];
    expect(Array.from(K.unary(fromArray(Float32Array.from(xs), [xs.length]), 'erf').storage)).toEqual(xs.map((x) => erf32(Math.fround(x))));
    expect(Array.from(K.unary(fromArray(Float64Array.from(xs), [xs.length]), 'erf').storage)).toEqual(xs.map((x) => erf(x)));
  });
});
