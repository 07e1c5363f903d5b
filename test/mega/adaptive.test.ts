/**
 * Adaptive input / adaptive softmax against plain-loop re-computations from their weights (the
 * formulas of docs/MEGA.md), the reference's state-dict names and tying, the adaptive_loss pad
 * quirk, and a gradient check. The end-to-end match with the PyTorch release is the golden case
 * test/golden/lm_adaptive.msgpack.
 */
import { describe, expect, it } from 'vitest';
import { gradcheck, noGrad, reshape } from '../../src/autograd/index.js';
import { AdaptiveInput, AdaptiveSoftmax, parseCutoffs } from '../../src/mega/adaptive/index.js';
import { ConfigError } from '../../src/nn/errors.js';
import { tensor } from '../../src/tensor/create.js';
import { IndexError } from '../../src/tensor/errors.js';
import { Generator, randNormal } from '../../src/tensor/random.js';
import type { Tensor } from '../../src/tensor/tensor.js';

const V = 14,
  PAD = 1,
  D = 8;
const CUT = [5, 9, 14]; // bands [0,5) [5,9) [9,14)

/** Row-major matrix as a function (r, c) → value. */
function mat(t: Tensor): (r: number, c: number) => number {
  const a = t.toTypedArray(),
    n = t.shape[1];
  return (r, c) => a[r * n + c];
}

/** x · Wᵀ for one row x (W: [out, in]). */
function rowTimesWT(x: number[], W: Tensor): number[] {
  const w = mat(W);
  return Array.from({ length: W.shape[0] }, (_, o) => x.reduce((s, xi, i) => s + xi * w(o, i), 0));
}

/** x · W for one row x (W: [in, out]). */
function rowTimesW(x: number[], W: Tensor): number[] {
  const w = mat(W);
  return Array.from({ length: W.shape[1] }, (_, o) => x.reduce((s, xi, i) => s + xi * w(i, o), 0));
}

function logSoftmax(v: number[]): number[] {
  const m = Math.max(...v);
  const lse = m + Math.log(v.reduce((s, x) => s + Math.exp(x - m), 0));
  return v.map((x) => x - lse);
}

function build(seed: number, tieProj = true): { inp: AdaptiveInput; sm: AdaptiveSoftmax } {
  const gen = new Generator(seed);
  const inp = new AdaptiveInput(V, PAD, D, 2, D, CUT, { dtype: 'f64', gen });
  const sm = new AdaptiveSoftmax(V, D, CUT, { factor: 2, tiedTo: inp, tieProj, dtype: 'f64', gen });
  return { inp, sm };
}

/** Reference log-probs of one feature row (head over c₀ words + clusters, tails through Proj and Out). */
function refLogProbs(x: number[], sm: AdaptiveSoftmax): number[] {
  const sd = sm.stateDict();
  const head = logSoftmax([...rowTimesWT(x, sd['head.word_proj.weight']), ...rowTimesWT(x, sd['head.class_proj.weight'])]);
  const out = head.slice(0, CUT[0]);
  for (let i = 0; i < CUT.length - 1; i++) {
    const P = sd[`tail.${i}.0.weight`];
    const h = P.shape[0] === D ? rowTimesW(x, P) : rowTimesWT(x, P); // tied [D, dim] or untied [dim, D]
    const tail = logSoftmax(rowTimesWT(h, sd[`tail.${i}.2.weight`]));
    out.push(...tail.map((t) => t + head[CUT[0] + i]));
  }
  return out;
}

describe('parseCutoffs', () => {
  it('reads fairseq eval_str_list forms and appends V', () => {
    expect(parseCutoffs('20000,60000', 267744, 'c')).toEqual([20000, 60000, 267744]);
    expect(parseCutoffs('[8, 16]', 24, 'c')).toEqual([8, 16, 24]);
    expect(parseCutoffs('(8,16,24)', 24, 'c')).toEqual([8, 16, 24]);
    expect(parseCutoffs(8, 24, 'c')).toEqual([8, 24]);
    expect(parseCutoffs([8, 16], 24, 'c')).toEqual([8, 16, 24]);
  });
  it.each([
    ['8,x', /not a positive integer/],
    ['16,8', /must increase/],
    ['8,30', /larger than the vocabulary \(24 symbols\)/],
    ['', /at least one/],
    [null, /comma separated list/],
  ] as [unknown, RegExp][])('rejects %j', (v, re) => {
    expect(() => parseCutoffs(v, 24, 'adaptive_softmax_cutoff')).toThrow(ConfigError);
    expect(() => parseCutoffs(v, 24, 'adaptive_softmax_cutoff')).toThrow(re);
  });
});

describe('AdaptiveInput', () => {
  it('has the reference names and shapes, zeroes the pad row of every band, and embeds P_i·E_i[t − c_{i−1}]', () => {
    const { inp } = build(3);
    const sd = inp.stateDict();
    expect(Object.fromEntries(Object.entries(sd).map(([k, t]) => [k, t.shape]))).toEqual({
      'embeddings.0.0.weight': [5, 8],
      'embeddings.0.1.weight': [8, 8],
      'embeddings.1.0.weight': [4, 4],
      'embeddings.1.1.weight': [8, 4],
      'embeddings.2.0.weight': [5, 2],
      'embeddings.2.1.weight': [8, 2],
    });
    for (let b = 0; b < 3; b++) {
      const E = sd[`embeddings.${b}.0.weight`];
      const row = Array.from(E.toTypedArray().subarray(PAD * E.shape[1], (PAD + 1) * E.shape[1]));
      expect(
        row.every((v) => v === 0),
        `band ${b} pad row`,
      ).toBe(true);
    }
    const ids = [
      [0, 6, 13, 4],
      [9, 5, 2, 11],
    ];
    const y = noGrad(() => inp.forward(tensor(ids, 'i32')));
    expect(y.shape).toEqual([2, 4, D]);
    const got = y.toTypedArray();
    ids.flat().forEach((t, n) => {
      const b = t < 5 ? 0 : t < 9 ? 1 : 2;
      const start = [0, 5, 9][b];
      const E = sd[`embeddings.${b}.0.weight`],
        e = mat(E);
      const emb = Array.from({ length: E.shape[1] }, (_, j) => e(t - start, j));
      const want = rowTimesWT(emb, sd[`embeddings.${b}.1.weight`]);
      want.forEach((w, j) => expect(got[n * D + j]).toBeCloseTo(w, 13));
    });
  });

  it('rejects ids outside the vocabulary', () => {
    const { inp } = build(3);
    expect(() => inp.forward(tensor([[0, 14]], 'i32'))).toThrow(IndexError);
  });
});

describe('AdaptiveSoftmax', () => {
  it('ties head and tails to the adaptive input (one tensor under both names)', () => {
    const { inp, sm } = build(5);
    const a = inp.stateDict(),
      s = sm.stateDict();
    expect(Object.keys(s).sort()).toEqual([
      'head.class_proj.weight',
      'head.word_proj.weight',
      'tail.0.0.weight',
      'tail.0.2.weight',
      'tail.1.0.weight',
      'tail.1.2.weight',
    ]);
    expect(s['head.word_proj.weight']).toBe(a['embeddings.0.0.weight']);
    expect(s['tail.0.0.weight']).toBe(a['embeddings.1.1.weight']);
    expect(s['tail.0.2.weight']).toBe(a['embeddings.1.0.weight']);
    expect(s['tail.1.0.weight']).toBe(a['embeddings.2.1.weight']);
    expect(s['tail.1.2.weight']).toBe(a['embeddings.2.0.weight']);
    expect(s['head.class_proj.weight'].shape).toEqual([2, D]);
    // without --tie-adaptive-proj the projections are own [dim, D] matrices
    const u = build(5, false).sm.stateDict();
    expect(u['tail.0.0.weight'].shape).toEqual([4, D]);
    expect(u['tail.1.0.weight'].shape).toEqual([2, D]);
    // untied: one head matrix [c₀ + clusters, D] and own tail matrices
    const free = new AdaptiveSoftmax(V, D, CUT, { factor: 2, dtype: 'f64', gen: new Generator(1) }).stateDict();
    expect(Object.fromEntries(Object.entries(free).map(([k, t]) => [k, t.shape]))).toEqual({
      'head.weight': [7, 8],
      'tail.0.0.weight': [4, 8],
      'tail.0.2.weight': [4, 4],
      'tail.1.0.weight': [2, 8],
      'tail.1.2.weight': [5, 2],
    });
  });

  for (const tieProj of [true, false]) {
    it(`full log-probs = head log-softmax, tails shifted by their cluster's log-prob (tie_proj ${tieProj})`, () => {
      const { sm } = build(7, tieProj);
      sm.eval();
      const x = randNormal([3, D], 0, 1, 'f64', new Generator(11));
      const lp = noGrad(() => sm.logProbs(x));
      expect(lp.shape).toEqual([3, V]);
      const got = lp.toTypedArray();
      for (let r = 0; r < 3; r++) {
        const row = Array.from(x.toTypedArray().subarray(r * D, (r + 1) * D));
        const want = refLogProbs(row, sm);
        want.forEach((w, j) => expect(got[r * V + j]).toBeCloseTo(w, 12));
        expect(want.reduce((s, v) => s + Math.exp(v), 0)).toBeCloseTo(1, 12); // a distribution
      }
    });
  }

  it('adaptive_loss: head + tail cross-entropies; a tail target equal to pad (id c_i + 1) counts only in the head', () => {
    const { sm } = build(9);
    sm.eval();
    const x = randNormal([6, D], 0, 1, 'f64', new Generator(12));
    const target = [3, 1, 6, 10, 12, 7]; // head word, pad (ignored), cluster 0 word 6 = 5+1 (tail ignored), cluster 1, cluster 1, cluster 0
    const loss = noGrad(() => sm.loss(x, tensor(target, 'i32'), PAD)).item();
    const xs = x.toTypedArray();
    let want = 0;
    target.forEach((t, r) => {
      const row = Array.from(xs.subarray(r * D, (r + 1) * D));
      const lp = refLogProbs(row, sm);
      if (t === PAD) return;
      if (t < 5) {
        want -= lp[t];
        return;
      }
      const c = t < 9 ? 0 : 1;
      const start = [5, 9][c];
      const sd = sm.stateDict();
      const headLp = logSoftmax([...rowTimesWT(row, sd['head.word_proj.weight']), ...rowTimesWT(row, sd['head.class_proj.weight'])]);
      want -= headLp[5 + c];
      if (t - start !== PAD) want -= lp[t] - headLp[5 + c];
    });
    expect(loss).toBeCloseTo(want, 11);
    // without quirk tokens the adaptive loss is the NLL of the full log-probs
    const clean = [3, 0, 7, 11, 12, 8]; // no tail-local index equals pad
    const l2 = noGrad(() => sm.loss(x, tensor(clean, 'i32'), PAD)).item();
    const lp = noGrad(() => sm.logProbs(x)).toTypedArray();
    expect(l2).toBeCloseTo(-clean.reduce((s, t, r) => s + lp[r * V + t], 0), 11);
  });

  it("target log-probs (head + the target cluster's tail only, in row batches) = the full log-probs at the targets", () => {
    const { sm } = build(13);
    sm.eval();
    const x = randNormal([7, D], 0, 1, 'f64', new Generator(14));
    const target = [3, 1, 6, 10, 12, 7, 0]; // pad and the tail-pad ids are scored like any other word here
    const full = noGrad(() => sm.logProbs(x)).toTypedArray();
    for (const rowBatch of [1024, 3]) {
      const got = noGrad(() => sm.targetLogProbs(x, tensor(target, 'i32'), rowBatch));
      expect(got.shape).toEqual([7]);
      target.forEach((t, r) => expect(got.toTypedArray()[r]).toBeCloseTo(full[r * V + t], 12));
    }
    const headOnly = noGrad(() => sm.targetLogProbs(x, tensor([0, 1, 2, 3, 4, 0, 1], 'i32'))).toTypedArray();
    [0, 1, 2, 3, 4, 0, 1].forEach((t, r) => expect(headOnly[r]).toBeCloseTo(full[r * V + t], 12));
  });

  it('rejects out-of-vocabulary targets and mismatched tying', () => {
    const { sm, inp } = build(9);
    expect(() => sm.loss(randNormal([2, D], 0, 1, 'f64', new Generator(1)), tensor([0, 14], 'i32'), PAD)).toThrow(IndexError);
    expect(() => new AdaptiveSoftmax(V, D, [4, 9, 14], { factor: 2, tiedTo: inp, dtype: 'f64' })).toThrow(/cutoffs 5,9,14 but its own are 4,9,14/);
    expect(() => new AdaptiveSoftmax(V, D, CUT, { tieProj: true, dtype: 'f64' })).toThrow(/needs --tie-adaptive-weights/);
  });

  it('gradients of input → adaptive softmax loss match central differences (tied weights and projections)', () => {
    const { inp, sm } = build(21);
    const ids = tensor(
      [
        [0, 6, 13, 4, 9],
        [5, 2, 11, 8, 3],
      ],
      'i32',
    );
    const target = tensor([6, 13, 4, 9, 0, 2, 11, 8, 3, 10], 'i32');
    const params = [...inp.parameters(), ...sm.parameters().filter((p) => !inp.parameters().includes(p))];
    expect(params).toHaveLength(7); // 6 adaptive-input tensors + the cluster matrix
    const r = gradcheck(() => sm.loss(reshape(inp.forward(ids), [10, D]), target, PAD), params, { atol: 1e-8, rtol: 1e-6 });
    expect(r.ok, r.where).toBe(true);
  });

  it('gradients of the full log-probs (the cross_entropy path) match central differences (untied head and tails)', () => {
    const sm = new AdaptiveSoftmax(V, D, CUT, { factor: 2, dtype: 'f64', gen: new Generator(31) });
    const x = randNormal([3, D], 0, 1, 'f64', new Generator(32));
    x.requiresGrad = true;
    const r = gradcheck(() => sm.logProbs(x), [x, ...sm.parameters()], { atol: 1e-8, rtol: 1e-6 });
    expect(r.ok, r.where).toBe(true);
  });
});
