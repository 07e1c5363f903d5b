import { expect } from 'vitest';
import { gradcheck } from '../../src/autograd/gradcheck.js';
import { requiresGrad } from '../../src/autograd/engine.js';
import { Generator, randNormal } from '../../src/tensor/random.js';
import type { Tensor } from '../../src/tensor/tensor.js';

const gen = new Generator(1234);

/** An f64 leaf with N(0,1) entries (shifted by `shift`) that requires grad. */
export function leaf(shape: number[], shift = 0): Tensor {
  const t = randNormal(shape, shift, 1, 'f64', gen);
  return requiresGrad(t);
}

/** Asserts that `fn`'s analytic gradients match central differences. */
export function expectGrad(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: { atol?: number; rtol?: number } = {}): void {
  const r = gradcheck(fn, inputs, opts);
  expect(r.ok, r.where).toBe(true);
}
