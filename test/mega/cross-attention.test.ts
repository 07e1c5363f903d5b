import { describe, expect, it } from 'vitest';
import * as F from '../../src/autograd/index.js';
import { gradcheck } from '../../src/autograd/gradcheck.js';
import { setFusedGates, type AttentionActivation } from '../../src/mega/attention.js';
import { GatedCrossAttention, type GCAOptions } from '../../src/mega/cross-attention.js';
import { IncrementalState } from '../../src/mega/incremental.js';
import type { Module } from '../../src/nn/module.js';
import { fromArray } from '../../src/tensor/create.js';
import { ShapeError } from '../../src/tensor/errors.js';
import { Generator, randNormal } from '../../src/tensor/random.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { expectClose } from '../../src/verify/compare.js';

const gen = new Generator(11);

function perturb(m: Module, std = 0.3): void {
  for (const p of m.parameters()) {
    const n = randNormal(p.shape, 0, std, 'f64', gen).storage;
    for (let i = 0; i < p.size; i++) p.storage[p.offset + i] += n[i];
  }
}

function gca(o: Partial<GCAOptions>): GatedCrossAttention {
  const m = new GatedCrossAttention({ embedDim: 8, zdim: 4, maxPositions: 16, dtype: 'f64', gen, ...o });
  perturb(m);
  return m;
}

function rightPad(lengths: number[], L: number): Tensor {
  const d = new Uint8Array(lengths.length * L);
  lengths.forEach((n, b) => d.fill(1, b * L + n, (b + 1) * L));
  return fromArray(d, [lengths.length, L]);
}

describe('GatedCrossAttention incremental (static key/value)', () => {
  for (const [act, rel] of [
    ['softmax', 'simple'],
    ['laplace', 'rotary'],
    ['relu2', 'simple'],
  ] as [AttentionActivation, 'simple' | 'rotary'][]) {
    it(`step-by-step equals the full forward (${act}, ${rel})`, () => {
      const m = gca({ attentionActivation: act, relPosBias: rel }).eval();
      const L2 = 7,
        L1 = 5,
        B = 2;
      const query = randNormal([L2, B, 8], 0, 1, 'f64', gen);
      const key = randNormal([L1, B, 8], 0, 1, 'f64', gen);
      const keyPaddingMask = rightPad([5, 3], L1);
      const full = m.forward(query, key, { keyPaddingMask, needWeights: true });
      const state = new IncrementalState();
      const outs: Tensor[] = [],
        ws: Tensor[] = [];
      for (let t = 0; t < L2; t++) {
        // after the first step the encoder output is not needed any more
        const r = m.forward(F.narrow(query, 0, t, 1), t === 0 ? key : null, { keyPaddingMask: t === 0 ? keyPaddingMask : null, state, needWeights: true });
        outs.push(r.out);
        ws.push(r.attnWeights!);
        const rec = state.get(m, 'attn_state')!;
        expect(rec.prev_num_steps).toBe(t);
        expect((rec.prev_key as Tensor).shape).toEqual([B, L1, 4]);
        expect(rec.prev_key_padding_mask).toBe(keyPaddingMask);
      }
      expectClose(F.concat(outs, 0), full.out, { atol: 1e-12, what: 'output' });
      expectClose(F.concat(ws, 1), full.attnWeights!, { atol: 1e-12, what: 'attention weights' });
    });
  }

  it('rejects multi-token incremental queries and a missing key on the first call', () => {
    const m = gca({}).eval();
    const key = randNormal([4, 1, 8], 0, 1, 'f64', gen);
    expect(() => m.forward(randNormal([2, 1, 8], 0, 1, 'f64', gen), key, { state: new IncrementalState() })).toThrow(ShapeError);
    expect(() => m.forward(randNormal([1, 1, 8], 0, 1, 'f64', gen), null, { state: new IncrementalState() })).toThrow(/key/);
  });
});

describe('GatedCrossAttention weights', () => {
  it('softmax rows sum to 1 with zeros at padded keys; query longer than key is fine', () => {
    const m = gca({ attentionActivation: 'softmax' });
    const mask = rightPad([4, 2], 4);
    const P = m.forward(randNormal([6, 2, 8], 0, 1, 'f64', gen), randNormal([4, 2, 8], 0, 1, 'f64', gen), {
      keyPaddingMask: mask,
      needWeights: true,
    }).attnWeights!;
    expect(P.shape).toEqual([2, 6, 4]);
    for (let b = 0; b < 2; b++)
      for (let i = 0; i < 6; i++) {
        let s = 0;
        for (let j = 0; j < 4; j++) {
          s += P.at(b, i, j);
          if (mask.at(b, j)) expect(P.at(b, i, j)).toBe(0);
        }
        expect(Math.abs(s - 1)).toBeLessThan(1e-12);
      }
  });
});

describe('GatedCrossAttention gradients (f64 central differences)', () => {
  for (const act of ['softmax', 'laplace'] as const) {
    it(act, () => {
      const m = new GatedCrossAttention({
        embedDim: 4,
        zdim: 2,
        attentionActivation: act,
        prenorm: act === 'softmax',
        normType: 'scalenorm',
        maxPositions: 8,
        dtype: 'f64',
        gen,
      });
      perturb(m);
      const q = F.requiresGrad(randNormal([3, 2, 4], 0, 1, 'f64', gen));
      const k = F.requiresGrad(randNormal([4, 2, 4], 0, 1, 'f64', gen));
      const mask = rightPad([4, 3], 4);
      const r = gradcheck((qq, kk) => m.forward(qq, kk, { keyPaddingMask: mask }).out, [q, k, ...m.parameters()]);
      expect(r.ok, r.where).toBe(true);
    });
  }
});

describe('GatedCrossAttention fused gates (siluMul, gateOut) vs the unfused composition', () => {
  const configs: [string, Partial<GCAOptions>][] = [
    ['softmax, silu, dropout 0.3', { attentionActivation: 'softmax', dropout: 0.3 }],
    ['laplace, relu, feature dropout, post-norm', { attentionActivation: 'laplace', activation: 'relu', dropout: 0.2, featureDropout: true, prenorm: false }],
    ['relu2, linear activation, eval', { attentionActivation: 'relu2', activation: 'linear', dropout: 0.2 }],
  ];
  for (const dt of ['f64', 'f32'] as const) {
    for (const [name, o] of configs) {
      it(`${name} (${dt}): output and every gradient within the ${dt} golden rule`, () => {
        const dropGen = new Generator(99);
        const m = new GatedCrossAttention({ embedDim: 8, zdim: 4, maxPositions: 16, dtype: dt, gen: dropGen, ...o });
        perturb(m);
        if (name.endsWith('eval')) m.eval();
        const L2 = 6,
          L1 = 5,
          B = 2;
        const query = F.requiresGrad(randNormal([L2, B, 8], 0, 1, dt, gen));
        const key = F.requiresGrad(randNormal([L1, B, 8], 0, 1, dt, gen));
        const g = randNormal([L2, B, 8], 0, 1, dt, gen);
        const keyPaddingMask = rightPad([5, 3], L1);
        const run = (fused: boolean): Tensor[] => {
          const prev = setFusedGates(fused);
          try {
            dropGen.seed(5); // the same dropout masks on both paths
            for (const p of m.parameters()) p.grad = null;
            query.grad = key.grad = null;
            const { out } = m.forward(query, key, { keyPaddingMask });
            F.backward(out, g);
            return [out, query.grad!, key.grad!, ...m.parameters().map((p) => p.grad!)];
          } finally {
            setFusedGates(prev);
          }
        };
        const fused = run(true),
          plain = run(false);
        const names = ['out', 'query', 'key', ...m.namedParameters().map(([n]) => n)];
        fused.forEach((t, i) => expectClose(t, plain[i], { precision: dt, what: names[i] }));
        if (dt === 'f32') expect(fused.some((t, i) => t.storage.some((v, j) => v !== plain[i].storage[j]))).toBe(true);
      });
    }
  }
});
