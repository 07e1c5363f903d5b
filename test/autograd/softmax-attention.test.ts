/**
 * `softmaxAttention` is one tape node over the kernels of softmax attention's composition (scaled
 * product, bias, attention mask, masked fill, softmax): the same probabilities and gradients bit
 * for bit, and inside a resident scope the scores and their sums do not stay allocated.
 */
import { describe, expect, it } from 'vitest';
import * as F from '../../src/autograd/index.js';
import { causalMask } from '../../src/mega/attention.js';
import { fromStorage } from '../../src/tensor/tensor.js';
import { residentBytes, residentScope } from '../../src/tensor/backends/cpu/resident.js';
import type { FloatDType } from '../../src/tensor/dtype.js';
import { Generator, randNormal } from '../../src/tensor/random.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import * as V from '../../src/tensor/view.js';

const gen = new Generator(13);
const B = 2,
  H = 3,
  C = 24,
  Z = 8;

type Attention = (q: Tensor, kT: Tensor, bias: Tensor, causal: boolean, attnMask: Tensor | null, fill: Tensor | null) => Tensor;

/** The composition the layers used before the single node. */
const composed: Attention = (q, kT, bias, causal, attnMask, fill) => {
  const qs = F.mul(q, 0.35);
  let x = F.add(causal ? F.causalScores(qs, kT) : F.matmul(qs, kT), bias);
  if (attnMask) x = F.add(x, attnMask);
  if (fill) x = F.maskedFill(x, fill, -Infinity);
  return F.softmax(x, -1);
};
const fused: Attention = (q, kT, bias, causal, attnMask, fill) => F.softmaxAttention(q, kT, 0.35, bias, causal, attnMask, fill);

/** Key padding `[B, H, 1, C]`: the last keys of the first sequence. */
function padding(): Tensor {
  const m = new Uint8Array(B * H * C);
  for (let h = 0; h < H; h++) for (let j = C - 5; j < C; j++) m[h * C + j] = 1;
  return V.unsqueeze(fromStorage(m, [B, H, C]), 2);
}

/** Probabilities and the gradients of q, kT, bias (copies, taken before backward frees anything). */
function run(f: Attention, ins: Tensor[], causal: boolean, attnMask: Tensor | null, fill: Tensor | null, g: Tensor): number[][] {
  const [q, kT, bias] = ins;
  const copy = (t: Tensor) => Array.from(F.contiguous(t).storage, (v) => v + 0);
  for (const t of ins) t.grad = null;
  const p = f(q, kT, bias, causal, attnMask, fill);
  const values = copy(p);
  F.backward(p, g);
  return [values, ...ins.map((t) => copy(t.grad!))];
}

describe('softmaxAttention', () => {
  for (const dt of ['f32', 'f64'] as FloatDType[])
    for (const [name, causal, masked, padded] of [
      ['full', false, false, false],
      ['full, key padding', false, false, true],
      ['causal products under a causal mask', true, true, false],
      ['causal mask, full products, key padding', false, true, true],
      ['causal products, key padding', true, true, true],
    ] as const)
      it(`${name} (${dt}): probabilities and gradients bit for bit the composition's, in and out of a resident scope`, () => {
        const ins = [randNormal([B, H, C, Z], 0, 1, dt, gen), randNormal([B, H, Z, C], 0, 1, dt, gen), randNormal([C, C], 0, 0.5, dt, gen)].map((t) =>
          F.requiresGrad(t),
        );
        const attnMask = masked ? causalMask(C, 'softmax', dt) : null;
        const fill = padded ? padding() : null;
        const g = randNormal([B, H, C, C], 0, 1, dt, gen);
        const want = run(composed, ins, causal, attnMask, fill, g);
        expect(run(fused, ins, causal, attnMask, fill, g), 'outside a scope').toEqual(want);
        expect(
          residentScope(
            {},
            () => run(fused, ins, causal, attnMask, fill, g),
            () => [...ins, ...ins.map((t) => t.grad)],
          ),
          'in a resident scope',
        ).toEqual(want);
      });

  it('keeps only the scaled queries and the probabilities in a resident scope', () => {
    const q = F.requiresGrad(randNormal([B, H, C, Z], 0, 1, 'f32', gen));
    const kT = F.requiresGrad(randNormal([B, H, Z, C], 0, 1, 'f32', gen));
    const bias = F.requiresGrad(randNormal([C, C], 0, 0.5, 'f32', gen));
    const block = (n: number) => Math.ceil((n * 4) / 64) * 64;
    const grew = residentScope(
      {},
      () => {
        const before = residentBytes();
        F.softmaxAttention(q, kT, 0.35, bias, true, causalMask(C, 'softmax', 'f32'), padding());
        return residentBytes() - before;
      },
      () => [q, kT, bias],
    );
    // the composition kept the scores, scores + bias, + mask and the filled scores too
    expect(grew).toBe(block(B * H * C * Z) + block(B * H * C * C));
  });
});
