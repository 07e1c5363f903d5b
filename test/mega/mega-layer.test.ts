import { describe, expect, it } from 'vitest';
import * as F from '../../src/autograd/index.js';
import { gradcheck } from '../../src/autograd/gradcheck.js';
import {
  causalMask,
  chunkLayout,
  MovingAverageGatedAttention,
  setCausalProducts,
  setFusedGates,
  type AttentionActivation,
  type MegaOptions,
} from '../../src/mega/attention.js';
import { IncrementalState } from '../../src/mega/incremental.js';
import { NormalizedFeedForwardNetwork } from '../../src/mega/nffn.js';
import type { Module } from '../../src/nn/module.js';
import { ShapeError } from '../../src/tensor/errors.js';
import { fromArray } from '../../src/tensor/create.js';
import { Generator, randNormal } from '../../src/tensor/random.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { expectClose } from '../../src/verify/compare.js';
import { matmulStats } from '../../src/tensor/backends/cpu/matmul.js';
import { simdTuning } from '../../src/tensor/backends/cpu/wasm/runtime.js';

const gen = new Generator(7);

/** Moves every parameter away from its (near-degenerate) init, as the golden generator does. */
function perturb(m: Module, std = 0.3): void {
  for (const p of m.parameters()) {
    const n = randNormal(p.shape, 0, std, 'f64', gen).storage;
    for (let i = 0; i < p.size; i++) p.storage[p.offset + i] += n[i];
  }
}

function layer(o: Partial<MegaOptions>): MovingAverageGatedAttention {
  const m = new MovingAverageGatedAttention({ embedDim: 8, zdim: 4, hdim: 12, ndim: 3, maxPositions: 16, dtype: 'f64', gen, ...o });
  perturb(m);
  return m;
}

/** Concatenation of `L × B × D` pieces along time. */
const cat = (xs: Tensor[]) => F.concat(xs, 0);

/** B × L bool mask from per-batch lengths (right padding). */
function rightPad(lengths: number[], L: number): Tensor {
  const d = new Uint8Array(lengths.length * L);
  lengths.forEach((n, b) => d.fill(1, b * L + n, (b + 1) * L));
  return fromArray(d, [lengths.length, L]);
}

describe('MovingAverageGatedAttention incremental decoding', () => {
  const cases: [AttentionActivation, number][] = [
    ['softmax', -1],
    ['softmax', 4],
    ['laplace', -1],
    ['laplace', 3],
    ['relu2', 4],
  ];
  for (const [act, C] of cases) {
    it(`token-by-token equals the causal full forward (${act}, chunk ${C})`, () => {
      const m = layer({ attentionActivation: act, chunkSize: C, relPosBias: C > 0 ? 'rotary' : 'simple', prenorm: C > 0 }).eval();
      const L = 12,
        B = 2;
      const x = randNormal([L, B, 8], 0, 1, 'f64', gen);
      const n = C > 0 ? C : L;
      const full = m.forward(x, { attnMask: causalMask(n, act, 'f64') }).out;
      const state = new IncrementalState();
      const outs: Tensor[] = [];
      for (let t = 0; t < L; t++) {
        outs.push(m.forward(F.narrow(x, 0, t, 1), { state }).out);
        const rec = state.get(m, 'attn_state');
        if (C > 0 && (t + 1) % C === 0) expect(rec?.prev_key).toBeUndefined();
        else expect((rec?.prev_key as Tensor).shape).toEqual([B, C > 0 ? (t + 1) % C : t + 1, 4]);
      }
      expectClose(cat(outs), full, { atol: 1e-12 });
    });
  }

  it('chunk-sized blocks with carried EMA state equal the full forward', () => {
    const C = 4,
      L = 12;
    const m = layer({ attentionActivation: 'softmax', chunkSize: C }).eval();
    const x = randNormal([L, 2, 8], 0, 1, 'f64', gen);
    const mask = causalMask(C, 'softmax', 'f64');
    const full = m.forward(x, { attnMask: mask }).out;
    const state = new IncrementalState();
    const outs = [0, 4, 8].map((s) => m.forward(F.narrow(x, 0, s, C), { state, attnMask: mask }).out);
    expectClose(cat(outs), full, { atol: 1e-12 });
  });
});

describe('MovingAverageGatedAttention attention weights', () => {
  it('softmax rows sum to 1 and padded keys get 0 on chunks that are not fully padded', () => {
    const m = layer({ attentionActivation: 'softmax', chunkSize: 4, bidirectional: true });
    const L = 12;
    const mask = rightPad([12, 6, 3], L); // batch 2: chunks 1 and 2 fully padded
    const x = randNormal([L, 3, 8], 0, 1, 'f64', gen);
    const P = m.forward(x, { paddingMask: mask, needWeights: true }).attnWeights!;
    expect(P.shape).toEqual([3, 3, 4, 4]);
    for (let b = 0; b < 3; b++) {
      for (let c = 0; c < 3; c++) {
        const padded = [0, 1, 2, 3].map((j) => mask.at(b, c * 4 + j) === 1);
        const allPad = padded.every(Boolean);
        for (let i = 0; i < 4; i++) {
          let s = 0;
          for (let j = 0; j < 4; j++) {
            const w = P.at(b, c, i, j);
            s += w;
            if (padded[j] && !allPad) expect(w).toBe(0);
            if (allPad) expect(w).toBeGreaterThan(0); // the reference attends over an all-padding chunk
          }
          expect(Math.abs(s - 1)).toBeLessThan(1e-12);
        }
      }
    }
  });

  it('element attention weights vanish at padded keys and under the causal mask', () => {
    const m = layer({ attentionActivation: 'laplace' });
    const mask = rightPad([5, 3], 5);
    const P = m.forward(randNormal([5, 2, 8], 0, 1, 'f64', gen), {
      paddingMask: mask,
      attnMask: causalMask(5, 'laplace', 'f64'),
      needWeights: true,
    }).attnWeights!;
    expect(P.shape).toEqual([2, 1, 5, 5]);
    for (let i = 0; i < 5; i++)
      for (let j = 0; j < 5; j++) {
        if (j > i || j >= 3) expect(P.at(1, 0, i, j)).toBe(0);
        else expect(P.at(1, 0, i, j)).toBeGreaterThan(0);
      }
  });
});

describe('MovingAverageGatedAttention chunk lengths', () => {
  it('rejects L >= C with L not a multiple of C, with a clear message', () => {
    const m = layer({ chunkSize: 4, bidirectional: true });
    expect(() => m.forward(randNormal([6, 1, 8], 0, 1, 'f64', gen))).toThrow(ShapeError);
    expect(() => m.forward(randNormal([6, 1, 8], 0, 1, 'f64', gen))).toThrow(/length 6 is not a multiple of chunk_size 4/);
    expect(() => chunkLayout(9, 4)).toThrow(/pad the input to 12/);
  });
  it('treats L < C as one short chunk and accepts multiples', () => {
    const m = layer({ chunkSize: 4, bidirectional: true });
    expect(m.forward(randNormal([3, 2, 8], 0, 1, 'f64', gen), { needWeights: true }).attnWeights!.shape).toEqual([2, 1, 3, 3]);
    expect(m.forward(randNormal([8, 2, 8], 0, 1, 'f64', gen), { needWeights: true }).attnWeights!.shape).toEqual([2, 2, 4, 4]);
  });
  it('rejects a zero chunk size', () => {
    expect(() => layer({ chunkSize: 0 })).toThrow(/chunk_size/);
  });
});

describe('gradients (f64 central differences)', () => {
  for (const [act, C, prenorm] of [
    ['softmax', 2, true],
    ['laplace', -1, false],
  ] as const) {
    it(`MovingAverageGatedAttention (${act}, chunk ${C}, ${prenorm ? 'pre' : 'post'}norm, padding)`, () => {
      const m = new MovingAverageGatedAttention({
        embedDim: 4,
        zdim: 2,
        hdim: 4,
        ndim: 2,
        chunkSize: C,
        attentionActivation: act,
        prenorm,
        bidirectional: act === 'softmax',
        maxPositions: 8,
        dtype: 'f64',
        gen,
      });
      perturb(m);
      const x = F.requiresGrad(randNormal([4, 2, 4], 0, 1, 'f64', gen));
      const mask = rightPad([4, 3], 4);
      const params = m.parameters();
      const r = gradcheck((xx) => m.forward(xx, { paddingMask: mask }).out, [x, ...params]);
      expect(r.ok, r.where).toBe(true);
    });
  }
  it('NormalizedFeedForwardNetwork', () => {
    const m = new NormalizedFeedForwardNetwork({ embedDim: 4, ffnHiddenDim: 6, normType: 'rmsnorm', activation: 'gelu', dtype: 'f64', gen });
    perturb(m);
    const x = F.requiresGrad(randNormal([3, 2, 4], 0, 1, 'f64', gen));
    const r = gradcheck((xx) => m.forward(xx), [x, ...m.parameters()]);
    expect(r.ok, r.where).toBe(true);
  });
});

describe('fused gates (gateQK, siluMul, gateOut) equal the unfused composition', () => {
  const configs: [string, Partial<MegaOptions>][] = [
    [
      'softmax, dropout 0.2, silu, prenorm, padding',
      { attentionActivation: 'softmax', dropout: 0.2, hiddenDropout: 0.1, attentionDropout: 0.1, bidirectional: true },
    ],
    [
      'laplace, chunk 3, feature dropout 0.3, relu, post-norm',
      { attentionActivation: 'laplace', chunkSize: 3, dropout: 0.3, featureDropout: true, activation: 'relu', prenorm: false },
    ],
    ['relu2, linear activation, eval', { attentionActivation: 'relu2', activation: 'linear', dropout: 0.2 }],
  ];
  for (const dt of ['f64', 'f32'] as const) {
    for (const [name, o] of configs) {
      it(`${name} (${dt}): outputs and every gradient within the ${dt} golden rule`, () => {
        const dropGen = new Generator(99);
        const m = layer({ ...o, gen: dropGen, dtype: dt });
        if (name.endsWith('eval')) m.eval();
        const L = 6,
          B = 2;
        const x = F.requiresGrad(randNormal([L, B, 8], 0, 1, dt, gen));
        const g = randNormal([L, B, 8], 0, 1, dt, gen);
        const mask = rightPad([6, 4], L);
        const run = (fused: boolean): Tensor[] => {
          const prev = setFusedGates(fused);
          try {
            dropGen.seed(5); // the same dropout masks on both paths
            for (const p of m.parameters()) p.grad = null;
            x.grad = null;
            const { out } = m.forward(x, { paddingMask: mask });
            F.backward(out, g);
            return [out, x.grad!, ...m.parameters().map((p) => p.grad!)];
          } finally {
            setFusedGates(prev);
          }
        };
        const fused = run(true),
          plain = run(false);
        const names = ['out', 'x', ...m.namedParameters().map(([n]) => n)];
        fused.forEach((t, i) => expectClose(t, plain[i], { precision: dt, what: names[i] }));
        // the fused path really is another computation (not the composition again)
        if (dt === 'f32') expect(fused.some((t, i) => t.storage.some((v, j) => v !== plain[i].storage[j]))).toBe(true);
      });
    }
  }
});

describe('causal products (causalScores, causalWeighted) equal the full products', () => {
  const configs: [string, Partial<MegaOptions>, number][] = [
    ['softmax, dropout, padding', { attentionActivation: 'softmax', dropout: 0.2, hiddenDropout: 0.1, attentionDropout: 0.1 }, -1],
    ['softmax, chunk 5, rotary, prenorm', { attentionActivation: 'softmax', chunkSize: 5, relPosBias: 'rotary', prenorm: true }, 5],
    ['laplace, chunk 4, padding', { attentionActivation: 'laplace', chunkSize: 4 }, 4],
    ['relu2, attention dropout', { attentionActivation: 'relu2', attentionDropout: 0.2 }, -1],
  ];
  const L = 20,
    B = 2;
  for (const dt of ['f64', 'f32'] as const)
    for (const force of [false, true])
      for (const [name, o, C] of configs) {
        it(`${name} (${dt}${force ? ', every product through the SIMD gemm' : ''}): outputs and every gradient bit for bit, with fewer multiply-adds`, () => {
          const dropGen = new Generator(3);
          const m = layer({ ...o, gen: dropGen, dtype: dt, maxPositions: L });
          const x = F.requiresGrad(randNormal([L, B, 8], 0, 1, dt, gen));
          const g = randNormal([L, B, 8], 0, 1, dt, gen);
          const act = o.attentionActivation!;
          const mask = causalMask(C > 0 ? C : L, act, dt);
          const paddingMask = name.includes('padding') ? rightPad([20, 17], L) : undefined;
          const run = (causal: boolean): { ts: Tensor[]; flops: number } => {
            const prev = setCausalProducts(causal);
            const prevForce = simdTuning.force;
            simdTuning.force = force;
            try {
              dropGen.seed(5); // the same dropout masks on both paths
              for (const p of m.parameters()) p.grad = null;
              x.grad = null;
              const f0 = matmulStats().flops;
              const { out } = m.forward(x, { attnMask: mask, paddingMask });
              F.backward(out, g);
              return { ts: [out, x.grad!, ...m.parameters().map((p) => p.grad!)], flops: matmulStats().flops - f0 };
            } finally {
              setCausalProducts(prev);
              simdTuning.force = prevForce;
            }
          };
          const skip = run(true),
            full = run(false);
          const names = ['out', 'x', ...m.namedParameters().map(([n]) => n)];
          skip.ts.forEach((t, i) =>
            expect(
              Array.from(t.storage, (v) => v + 0),
              names[i],
            ).toEqual(Array.from(full.ts[i].storage, (v) => v + 0)),
          );
          expect(skip.flops).toBeLessThan(full.flops);
        });
      }

  it('a caller-built causal mask takes the skipping path; one with an entry above the diagonal kept does not, also when changed in place', () => {
    const m = layer({ attentionActivation: 'softmax', maxPositions: L });
    const x = randNormal([L, B, 8], 0, 1, 'f64', gen);
    const flopsOf = (mask: Tensor): number => {
      const f0 = matmulStats().flops;
      m.forward(x, { attnMask: mask });
      return matmulStats().flops - f0;
    };
    const made = causalMask(L, 'softmax', 'f64');
    const own = fromArray(Float64Array.from(made.storage), [L, L]);
    const leaky = fromArray(Float64Array.from(made.storage), [L, L]);
    leaky.storage[3] = 0; // row 0 sees key 3
    expect(flopsOf(own)).toBe(flopsOf(made));
    expect(flopsOf(leaky)).toBeGreaterThan(flopsOf(made));
    // the caller's mask is read at every call: unmasked in place, the full products run
    own.storage[5] = 0;
    expect(flopsOf(own)).toBe(flopsOf(leaky));
    const prev = setCausalProducts(false);
    const want = m.forward(x, { attnMask: own }).out;
    setCausalProducts(prev);
    expect(Array.from(m.forward(x, { attnMask: own }).out.storage)).toEqual(Array.from(want.storage));
  });
});
