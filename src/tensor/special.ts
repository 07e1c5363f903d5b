/**
 * Special functions JavaScript lacks. `erf` is accurate to a few ulp of double precision:
 * |x| ≤ 2.5 uses the everywhere-positive series erf(x) = 2/√π · e^(−x²) · Σ (2x²)^n x / (1·3·…·(2n+1))
 * (no cancellation), larger |x| the continued fraction
 * erfc(x) = e^(−x²)/√π · 1/(x + ½/(x + 1/(x + (3/2)/(x + …)))) evaluated bottom-up at a fixed depth.
 */

const TWO_OVER_SQRT_PI = 1.1283791670955126;
const ONE_OVER_SQRT_PI = 0.5641895835477563;

/** Complementary error function for x > 2.5 (continued fraction, 80 levels). */
function erfcLarge(x: number): number {
  let f = x;
  for (let k = 80; k >= 1; k--) f = x + (k * 0.5) / f;
  return (Math.exp(-x * x) * ONE_OVER_SQRT_PI) / f;
}

/** The error function erf(x) = 2/√π ∫₀ˣ e^(−t²) dt. */
export function erf(x: number): number {
  if (x !== x) return NaN;
  const ax = Math.abs(x);
  if (ax > 2.5) {
    if (ax > 6) return x > 0 ? 1 : -1;
    const r = 1 - erfcLarge(ax);
    return x > 0 ? r : -r;
  }
  const x2 = 2 * x * x;
  let term = x, sum = x;
  for (let n = 1; n < 200; n++) {
    term *= x2 / (2 * n + 1);
    sum += term;
    if (Math.abs(term) <= 1e-17 * Math.abs(sum)) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x * x) * sum;
}

/** Source text of `erf` for generated kernels (they run in their own scope, e.g. worker threads). */
export const ERF_SOURCE = `${erfcLarge.toString()}\nconst TWO_OVER_SQRT_PI = ${TWO_OVER_SQRT_PI}, ONE_OVER_SQRT_PI = ${ONE_OVER_SQRT_PI};\n${erf.toString()}`;
