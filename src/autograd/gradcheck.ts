/**
 * Numerical gradient check in f64 by central differences: for every input that requires a
 * gradient, every element is perturbed by ±h and the change of `sum(fn(inputs) · w)` (w a fixed
 * random weighting, so that every output element matters) is compared with the analytic
 * gradient from `backward`.
 */
import { DTypeError, TensorError } from '../tensor/errors.js';
import { Generator, randNormal } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';
import { backward, noGrad } from './engine.js';
import { mul } from './ops/arith.js';
import { sum } from './ops/reduce.js';

/** Result of a gradient check. */
export interface GradcheckResult {
  /** Every element within `atol + rtol·|numeric|`. */
  ok: boolean;
  /** Largest `|analytic − numeric|` over all elements. */
  maxError: number;
  /** The element most out of its tolerance (a failing one whenever `ok` is false), with both values. */
  where: string;
}

/** Checks d sum(fn(...inputs)·w)/d input against central differences (f64 inputs only). */
export function gradcheck(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], { h = 1e-6, atol = 1e-7, rtol = 1e-5, seed = 1 } = {}): GradcheckResult {
  for (const x of inputs) if (x.requiresGrad && x.dtype !== 'f64') throw new DTypeError(`gradcheck: inputs must be f64, got ${x.dtype}`);
  const out0 = fn(...inputs);
  const w = randNormal(out0.shape, 0, 1, 'f64', new Generator(seed));
  const objective = (): number => noGrad(() => sum(mul(fn(...inputs), w)).item());
  for (const x of inputs) x.grad = null;
  backward(sum(mul(out0, w)));
  let maxError = 0,
    worstExcess = -Infinity,
    where = '';
  inputs.forEach((x, i) => {
    if (!x.requiresGrad) return;
    const analytic = x.grad ? x.grad.toArray() : new Array<number>(x.size).fill(0);
    // perturb through the storage positions of a contiguous leaf
    if (!x.isContiguous()) throw new TensorError('gradcheck: inputs must be contiguous leaves (views are made inside fn)');
    const s = x.storage;
    for (let e = 0; e < x.size; e++) {
      const p = x.offset + e;
      const orig = s[p];
      s[p] = orig + h;
      const fp = objective();
      s[p] = orig - h;
      const fm = objective();
      s[p] = orig;
      const numeric = (fp - fm) / (2 * h);
      const err = Math.abs(numeric - analytic[e]);
      const tol = atol + rtol * Math.abs(numeric);
      maxError = Math.max(maxError, err);
      const excess = Number.isNaN(err) ? Infinity : err - tol; // a NaN gradient fails
      if (excess > worstExcess) {
        worstExcess = excess;
        where = `input ${i} element ${e}: analytic ${analytic[e]}, numeric ${numeric}`;
      }
    }
  });
  return { ok: worstExcess <= 0, maxError, where };
}
