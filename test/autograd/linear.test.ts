/**
 * `linear` is one tape node over the kernels of its composition (reshape, matmul with the
 * transposed weight, add of the bias): the same values and gradients bit for bit, the weight's
 * gradient made in the weight's layout, and inside a resident scope the product before the bias
 * does not stay allocated.
 */
import { describe, expect, it } from 'vitest';
import * as F from '../../src/autograd/index.js';
import { residentBytes, residentScope } from '../../src/tensor/backends/cpu/resident.js';
import type { FloatDType } from '../../src/tensor/dtype.js';
import { Generator, randNormal } from '../../src/tensor/random.js';
import type { Tensor } from '../../src/tensor/tensor.js';

const gen = new Generator(11);

/** The composition `linear` was before it became one node. */
function composed(x: Tensor, w: Tensor, b: Tensor | null): Tensor {
  const x2 = F.reshape(x, [-1, x.shape[x.ndim - 1]]);
  let y = F.matmul(x2, F.transpose(w, 0, 1));
  if (b) y = F.add(y, b);
  return F.reshape(y, [...x.shape.slice(0, -1), w.shape[0]]);
}

/** Output and the gradients of x, w, b for cotangent g (copies: in a resident scope backward frees the output). */
function run(f: typeof composed, x: Tensor, w: Tensor, b: Tensor | null, g: Tensor): number[][] {
  const copy = (t: Tensor) => Array.from(F.contiguous(t).storage, (v) => v + 0);
  for (const t of [x, w, b]) if (t) t.grad = null;
  const out = f(x, w, b);
  const values = copy(out);
  F.backward(out, g);
  return [values, ...[x.grad!, w.grad!, ...(b ? [b.grad!] : [])].map(copy)];
}

describe('linear', () => {
  for (const dt of ['f32', 'f64'] as FloatDType[])
    for (const bias of [true, false])
      for (const lead of [[37], [6, 9]])
        it(`${dt}, ${bias ? 'bias' : 'no bias'}, x [${lead}, 24]: output and gradients bit for bit the composition's, in and out of a resident scope`, () => {
          const x = F.requiresGrad(randNormal([...lead, 24], 0, 1, dt, gen));
          const w = F.requiresGrad(randNormal([40, 24], 0, 0.3, dt, gen));
          const b = bias ? F.requiresGrad(randNormal([40], 0, 0.3, dt, gen)) : null;
          const g = randNormal([...lead, 40], 0, 1, dt, gen);
          const want = run(composed, x, w, b, g);
          expect(run(F.linear, x, w, b, g), 'outside a scope').toEqual(want);
          const roots = () => [x, w, b, x.grad, w.grad, b?.grad];
          expect(
            residentScope({}, () => run(F.linear, x, w, b, g), roots),
            'in a resident scope',
          ).toEqual(want);
        });

  it("the weight gradient comes out as the weight is laid out ([out, in], no copy), bit for bit the composition's at SIMD sizes", () => {
    const x = F.requiresGrad(randNormal([640, 64], 0, 1, 'f32', gen));
    const w = F.requiresGrad(randNormal([288, 64], 0, 0.1, 'f32', gen));
    const b = F.requiresGrad(randNormal([288], 0, 0.1, 'f32', gen));
    const g = randNormal([640, 288], 0, 1, 'f32', gen);
    const out = F.linear(x, w, b);
    const gw = out.gradFn!.backward(g)[1]!;
    expect(gw.shape).toEqual([288, 64]);
    expect(gw.isContiguous()).toBe(true); // (xᵀ·g)ᵀ was a strided view the engine copied
    expect(run(F.linear, x, w, b, g)).toEqual(run(composed, x, w, b, g));
  });

  it('keeps only its output in a resident scope: the product before the bias is freed at once', () => {
    const x = randNormal([300, 64], 0, 1, 'f32', gen);
    const w = F.requiresGrad(randNormal([96, 64], 0, 0.1, 'f32', gen));
    const b = F.requiresGrad(randNormal([96], 0, 0.1, 'f32', gen));
    const block = Math.ceil((300 * 96 * 4) / 64) * 64;
    const grew = residentScope(
      {},
      () => {
        const before = residentBytes();
        F.linear(x, w, b);
        return residentBytes() - before;
      },
      () => [w, b],
    );
    expect(grew).toBe(block); // the composition kept two blocks of this size
  });
});
