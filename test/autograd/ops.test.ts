import { describe, expect, it } from 'vitest';
import * as F from '../../src/autograd/index.js';
import { tensor } from '../../src/tensor/create.js';
import { Generator as G, randNormal } from '../../src/tensor/random.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { expectGrad, leaf } from './helpers.js';

// Each differentiable op: plain shapes, broadcasting, and non-contiguous (transposed / sliced) inputs.
const T = (x: Tensor) => F.transpose(x, 0, 1);
const S = (x: Tensor) => F.narrow(x, -1, 1, x.shape[x.ndim - 1] - 1);

describe('binary arithmetic', () => {
  for (const [name, op] of [
    ['add', F.add],
    ['sub', F.sub],
    ['mul', F.mul],
    ['div', F.div],
  ] as const) {
    it(`${name}: same shape, broadcast, transposed, sliced`, () => {
      const pos = (x: Tensor) => (name === 'div' ? F.add(F.square(x), 1) : x);
      expectGrad((a, b) => op(a, pos(b)), [leaf([3, 4]), leaf([3, 4])]);
      expectGrad((a, b) => op(a, pos(b)), [leaf([2, 3, 4]), leaf([3, 1])]);
      expectGrad((a, b) => op(T(a), pos(b)), [leaf([4, 3]), leaf([4])]);
      expectGrad((a, b) => op(S(a), pos(S(b))), [leaf([2, 5]), leaf([1, 5])]);
      expectGrad((a) => op(a, 2.5), [leaf([3])]);
    });
  }
  it('pow with scalar and tensor exponents', () => {
    expectGrad((a) => F.pow(F.add(F.square(a), 1), 1.7), [leaf([3, 2])]);
    expectGrad((a, e) => F.pow(F.add(F.square(a), 1), e), [leaf([3, 2]), leaf([2])]);
  });
  it('maximum and where / maskedFill', () => {
    expectGrad((a, b) => F.maximum(a, b), [leaf([4, 3]), leaf([3])]);
    const mask = tensor([1, 0, 1, 0], [4], 'bool');
    expectGrad((a, b) => F.where(F.reshape(mask, [4, 1]), a, T(b)), [leaf([4, 3]), leaf([3, 4])]);
    expectGrad((a) => F.maskedFill(a, F.reshape(mask, [1, 4]), -3), [leaf([2, 4])]);
  });
});

describe('unary ops', () => {
  const cases: [string, (x: Tensor) => Tensor, number][] = [
    ['neg', F.neg, 0],
    ['square', F.square, 0],
    ['sqrt', F.sqrt, 3],
    ['rsqrt', F.rsqrt, 3],
    ['exp', F.exp, 0],
    ['log', F.log, 4],
    ['abs', F.abs, 0],
    ['sigmoid', F.sigmoid, 0],
    ['tanh', F.tanh, 0],
    ['silu', F.silu, 0],
    ['relu', F.relu, 0],
    ['relu2', F.relu2, 0],
    ['gelu', F.gelu, 0],
    ['geluTanh', F.geluTanh, 0],
    ['laplace', F.laplace, 0.7],
    ['erf', F.erf, 0],
  ];
  for (const [name, fn, shift] of cases) {
    it(`${name} on contiguous, transposed and sliced inputs`, () => {
      expectGrad(fn, [leaf([5], shift)]);
      expectGrad((a) => fn(T(a)), [leaf([3, 4], shift)]);
      expectGrad((a) => fn(S(a)), [leaf([2, 3, 4], shift)]);
    });
  }
});

describe('reductions and softmax', () => {
  it('sum / mean over axes, keepdims', () => {
    expectGrad((a) => F.sum(a), [leaf([3, 4])]);
    expectGrad((a) => F.sum(T(a), 1, true), [leaf([3, 4])]);
    expectGrad((a) => F.mean(a, [0, 2]), [leaf([2, 3, 4])]);
  });
  it('max, variance', () => {
    expectGrad((a) => F.max(a, 1), [leaf([3, 5])]);
    expectGrad((a) => F.max(T(a), -1, true), [leaf([4, 2])]);
    expectGrad((a) => F.variance(a, -1), [leaf([3, 5])]);
    expectGrad((a) => F.variance(S(a), [0, 1], false, true), [leaf([3, 5])]);
  });
  it('softmax and log-softmax along any axis', () => {
    expectGrad((a) => F.softmax(a, -1), [leaf([3, 5])]);
    expectGrad((a) => F.softmax(T(a), 0), [leaf([3, 5])]);
    expectGrad((a) => F.logSoftmax(a, 1), [leaf([2, 4, 3])]);
  });
  it('softmax is numerically stable for large logits', () => {
    const x = tensor([1000, 1001, 1002], [3], 'f64');
    const p = F.softmax(x).toArray();
    expect(p.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 14);
    expect(F.logSoftmax(x).toArray().every(Number.isFinite)).toBe(true);
  });
});

describe('movement ops', () => {
  it('reshape, permute, expand, squeeze/unsqueeze, flip', () => {
    expectGrad((a) => F.reshape(T(a), [2, 6]), [leaf([3, 4])]);
    expectGrad((a) => F.permute(a, [2, 0, 1]), [leaf([2, 3, 4])]);
    expectGrad((a) => F.expand(a, [2, 3, 4]), [leaf([3, 1])]);
    expectGrad((a) => F.unsqueeze(F.squeeze(a, 1), 0), [leaf([3, 1, 2])]);
    expectGrad((a) => F.mul(F.flip(a, [0, 1]), a), [leaf([3, 4])]);
  });
  it('concat, split, chunk, pad, narrow, stack', () => {
    expectGrad((a, b) => F.concat([a, T(b)], 1), [leaf([3, 2]), leaf([4, 3])]);
    expectGrad(
      (a) => {
        const [x, y] = F.split(a, [1, 3], 1);
        return F.mul(F.sum(x), y);
      },
      [leaf([2, 4])],
    );
    expectGrad((a) => F.concat(F.chunk(a, 2, 0).reverse(), 0), [leaf([5, 2])]);
    expectGrad(
      (a) =>
        F.pad(
          a,
          [
            [1, 2],
            [-1, 1],
          ],
          0.5,
        ),
      [leaf([3, 4])],
    );
    expectGrad((a, b) => F.stack([a, b], 1), [leaf([2, 3]), leaf([2, 3])]);
  });
  it('split backward (one concat, zeros for unused pieces) equals the narrow composition bitwise', () => {
    const gen = new G(5);
    for (const dt of ['f64', 'f32'] as const) {
      const x = F.requiresGrad(randNormal([3, 4, 9], 0, 1, dt, gen));
      const w = randNormal([3, 4, 2], 0, 1, dt, gen);
      // pieces 0 and 2 used (piece 2 twice, transposed), piece 1 unused, piece 3 used
      const loss = (ps: Tensor[]) =>
        F.add(F.add(F.sum(F.mul(ps[0], w)), F.sum(F.mul(F.transpose(ps[2], 0, 1), F.transpose(ps[2], 0, 1)))), F.sum(F.exp(ps[3])));
      const sizes = [2, 3, 2, 2];
      const byNarrow = () => {
        let at = 0;
        return sizes.map((s) => F.narrow(x, 2, (at += s) - s, s));
      };
      F.backward(loss(byNarrow()));
      const want = Array.from(x.grad!.storage);
      x.grad = null;
      const out = loss(F.split(x, sizes, -1));
      F.backward(out);
      expect(Array.from(x.grad!.storage)).toEqual(want);
      // the same graph differentiated again (nothing left parked): the gradient doubles exactly
      F.backward(out);
      expect(Array.from(x.grad!.storage)).toEqual(want.map((v) => (dt === 'f32' ? Math.fround(2 * v) : 2 * v)));
      // a piece as the root
      x.grad = null;
      const c = randNormal([3, 4, 3], 0, 1, dt, gen);
      F.backward(F.split(x, sizes, 2)[1], c);
      const expected = Array.from({ length: 3 * 4 * 9 }, (_, i) => (i % 9 >= 2 && i % 9 < 5 ? c.storage[Math.floor(i / 9) * 3 + (i % 9) - 2] : 0));
      expect(Array.from(x.grad!.storage)).toEqual(expected);
    }
  });
});

describe('matmul, linear, embedding, gather, fftConv', () => {
  it('matmul with batch broadcasting and transposed operands', () => {
    expectGrad((a, b) => F.matmul(a, b), [leaf([3, 4]), leaf([4, 2])]);
    expectGrad((a, b) => F.matmul(a, b), [leaf([2, 3, 4]), leaf([4, 5])]);
    expectGrad((a, b) => F.matmul(F.transpose(a, -1, -2), b), [leaf([2, 1, 4, 3]), leaf([3, 4, 2])]);
  });
  it('linear with and without bias', () => {
    expectGrad((x, w, b) => F.linear(x, w, b), [leaf([2, 3, 4]), leaf([5, 4]), leaf([5])]);
    expectGrad((x, w) => F.linear(T(x), w), [leaf([3, 2, 4]), leaf([5, 4])]);
  });
  it('embedding accumulates repeated ids', () => {
    const ids = tensor(
      [
        [0, 2, 2],
        [1, 0, 3],
      ],
      'i32',
    );
    expectGrad((w) => F.embedding(w, ids), [leaf([4, 3])]);
  });
  it('gather / cross-entropy with label smoothing and ignore index', () => {
    const idx = tensor([[1], [0], [2]], 'i32');
    expectGrad((a) => F.gather(a, 1, idx), [leaf([3, 4])]);
    const tgt = tensor([1, 3, 0, 2], [4], 'i32');
    expectGrad((a) => F.crossEntropy(a, tgt, { ignoreIndex: 0, labelSmoothing: 0.1 }).loss, [leaf([4, 5])]);
  });
  it('fftConv causal, bidirectional window, broadcast kernel', () => {
    expectGrad((x, k) => F.fftConv(x, k, 0, 6), [leaf([2, 3, 6]), leaf([3, 6])]);
    expectGrad((x, k) => F.fftConv(x, k, 2, 5), [leaf([2, 5]), leaf([2, 5])]);
    expectGrad((x, k) => F.fftConv(T(x), k, 1, 4), [leaf([7, 3]), leaf([3, 2])]);
  });
});

describe('dropout, contiguous, indexSelect', () => {
  it('dropout: the same seeded mask every call, survivors scaled by 1/(1-p)', () => {
    expectGrad((a) => F.dropout(a, 0.3, true, new G(7)), [leaf([4, 5])]);
    const x = tensor([1, 1, 1, 1, 1, 1, 1, 1], [8], 'f64');
    const y = F.dropout(x, 0.5, true, new G(3)).toArray();
    expect(y.every((v) => v === 0 || v === 2)).toBe(true);
    expect(F.dropout(x, 0.5, false, new G(3)).toArray()).toEqual(x.toArray());
  });
  it('contiguous and indexSelect on transposed inputs', () => {
    expectGrad((a) => F.contiguous(T(a)), [leaf([3, 4])]);
    const idx = tensor([2, 0, 2], [3], 'i32');
    expectGrad((a) => F.indexSelect(T(a), 1, idx), [leaf([3, 4])]);
  });
});
