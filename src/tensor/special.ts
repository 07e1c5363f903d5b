/**
 * Special functions JavaScript lacks.
 *
 * `erf` is accurate to a few ulp of double precision. The reference evaluation {@link erfSeries}:
 * |x| ≤ 2.5 uses the everywhere-positive series erf(x) = 2/√π · e^(−x²) · Σ (2x²)^n x / (1·3·…·(2n+1))
 * (no cancellation), larger |x| the continued fraction
 * erfc(x) = e^(−x²)/√π · 1/(x + ½/(x + 1/(x + (3/2)/(x + …)))) evaluated bottom-up at a fixed depth.
 * It takes ~40 dependent terms near |x| ≈ 2, so `erf` (what the kernels call, e.g. for the laplace
 * attention function over every attention score) evaluates instead a degree-9 Taylor polynomial
 * around the nearest point x₀ of a grid of step 1/64 on [0, 6]: erf(x₀) from the series, the
 * derivatives erf⁽ᵏ⁾(x₀) = 2/√π · (−1)^(k−1) · H_(k−1)(x₀) · e^(−x₀²) (Hermite polynomials), built
 * once. With |x − x₀| ≤ 1/128 the truncation error is below 1e−21; no exp per call.
 */

const TWO_OVER_SQRT_PI = 1.1283791670955126;
const ONE_OVER_SQRT_PI = 0.5641895835477563;

/** Complementary error function for x > 2.5 (continued fraction, 80 levels). */
function erfcLarge(x: number): number {
  let f = x;
  for (let k = 80; k >= 1; k--) f = x + (k * 0.5) / f;
  return (Math.exp(-x * x) * ONE_OVER_SQRT_PI) / f;
}

/** The error function by its series / continued fraction (the reference of {@link erf}). */
export function erfSeries(x: number): number {
  if (x !== x) return NaN;
  const ax = Math.abs(x);
  if (ax > 2.5) {
    if (ax > 6) return x > 0 ? 1 : -1;
    const r = 1 - erfcLarge(ax);
    return x > 0 ? r : -r;
  }
  const x2 = 2 * x * x;
  let term = x,
    sum = x;
  for (let n = 1; n < 200; n++) {
    term *= x2 / (2 * n + 1);
    sum += term;
    if (Math.abs(term) <= 1e-17 * Math.abs(sum)) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x * x) * sum;
}

/**
 * The Taylor table of {@link erf}: for grid point i (x₀ = i/64, i ≤ 384), 10 doubles
 * `[erf(x₀), erf'(x₀)/1!, …, erf⁽⁹⁾(x₀)/9!]`.
 */
function buildErfTable(): Float64Array {
  const K = 10,
    n = 6 * 64 + 1;
  const t = new Float64Array(n * K);
  for (let i = 0; i < n; i++) {
    const x0 = i / 64;
    const e = TWO_OVER_SQRT_PI * Math.exp(-x0 * x0);
    t[i * K] = erfSeries(x0);
    // Hermite recurrence H₀ = 1, H₁ = 2x, H_(m+1) = 2x·H_m − 2m·H_(m−1); h = H_(k−1), hPrev = H_(k−2)
    let hPrev = 0,
      h = 1,
      fact = 1;
    for (let k = 1; k < K; k++) {
      fact *= k;
      t[i * K + k] = ((k % 2 === 1 ? 1 : -1) * h * e) / fact;
      const next = 2 * x0 * h - 2 * (k - 1) * hPrev;
      hPrev = h;
      h = next;
    }
  }
  return t;
}

/** The Taylor table of {@link erf} (built once; the wasm laplace kernel reads a copy). */
export const ERF_TABLE = buildErfTable();

/** The error function erf(x) = 2/√π ∫₀ˣ e^(−t²) dt (Taylor table; see the file comment). */
export function erf(x: number): number {
  if (x !== x) return NaN;
  const ax = Math.abs(x);
  if (ax >= 6) return x > 0 ? 1 : -1;
  const i = Math.round(ax * 64);
  const t = ax - i / 64;
  const b = i * 10,
    T = ERF_TABLE;
  const r =
    T[b] + t * (T[b + 1] + t * (T[b + 2] + t * (T[b + 3] + t * (T[b + 4] + t * (T[b + 5] + t * (T[b + 6] + t * (T[b + 7] + t * (T[b + 8] + t * T[b + 9]))))))));
  return x > 0 ? r : x < 0 ? -r : x;
}

/**
 * The float32 error function's pieces (coefficients lowest degree first, each a float32 value),
 * fitted for this library by least squares on Chebyshev nodes (docs/KERNELS.md, "erf in float32"):
 * |x| ≤ `a1`: erf = |x| + |x|·P1(x²); `a1` < |x| ≤ `a2`: P2(|x| − `m2`); `a2` < |x| ≤ `a3`:
 * P3(|x| − `m3`); beyond, 1 (erf rounds to 1 in float32 from 3.93 on); the sign of x restored.
 */
export const ERF32 = {
  a1: 0.875,
  a2: 2,
  a3: Math.fround(3.93),
  m2: 1.4375,
  m3: 2.96875,
  p1: [0.12837917, -0.37612638, 0.11283744, -0.026862144, 0.0052080755, -8.2258735e-4, 8.737628e-5].map(Math.fround),
  p2: [0.9579406, 0.14289802, -0.2054159, 0.14922485, -0.03878314, -0.022477785, 0.021110171, -0.0032417614, -0.0033460988, 0.0014575607, 1.4828015e-4].map(
    Math.fround,
  ),
  p3: [
    0.9999731, 1.677297e-4, -4.9812504e-4, 9.317201e-4, -0.001215106, 0.0011529658, -8.243663e-4, 4.5018268e-4, -1.4381821e-4, -1.9821986e-5, 2.5562938e-5,
  ].map(Math.fround),
};

/**
 * The error function of a float32 `x` in float32 arithmetic (every operation rounded to float32,
 * as the WebAssembly kernels compute it four lanes at a time, wasm/laplace.ts): within 1.5 ulp of
 * erf(x) rounded to float32 (measured over every float32 in [0, 4.5] sampled, test/tensor/
 * special.test.ts). What the f32 `erf` and `laplace` kernels compute; f64 uses {@link erf}.
 */
export function erf32(x: number): number {
  const f = Math.fround,
    E = ERF32;
  const ax = Math.abs(x);
  const horner = (c: number[], t: number): number => {
    let acc = c[c.length - 1];
    for (let k = c.length - 2; k >= 0; k--) acc = f(f(acc * t) + c[k]);
    return acc;
  };
  let r: number;
  if (ax <= E.a1) r = f(ax + f(ax * horner(E.p1, f(ax * ax))));
  else if (ax <= E.a2) r = horner(E.p2, f(ax - E.m2));
  else if (ax <= E.a3) r = horner(E.p3, f(ax - E.m3));
  else if (ax > E.a3) r = 1;
  else return x; // NaN
  r = Math.min(r, 1);
  return x < 0 ? -r : x > 0 ? r : x;
}

/** Source text of `erf32` for generated kernels. */
export const ERF32_SOURCE = [`const ERF32 = ${JSON.stringify(ERF32)};`, erf32.toString()].join('\n');

/** Source text of `erf` for generated kernels (they run in their own scope, e.g. worker threads). */
export const ERF_SOURCE = [
  `const TWO_OVER_SQRT_PI = ${TWO_OVER_SQRT_PI}, ONE_OVER_SQRT_PI = ${ONE_OVER_SQRT_PI};`,
  erfcLarge.toString(),
  erfSeries.toString(),
  buildErfTable.toString(),
  'const ERF_TABLE = buildErfTable();',
  erf.toString(),
].join('\n');
