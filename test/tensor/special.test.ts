/** erf against reference values (Abramowitz & Stegun table 7.1 / high-precision values), to a few ulp. */
import { describe, expect, it } from 'vitest';
import { erf, erfSeries } from '../../src/tensor/special.js';

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
