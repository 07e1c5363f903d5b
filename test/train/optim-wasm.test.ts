/**
 * The WebAssembly optimizer path (backends/cpu/optim-wasm.ts: scaling + norm + clip over all
 * gradients, Adam over all parameters, parameters and moments in the wasm memory) against the
 * TypeScript loops of optim.ts (the
 * kernels switched off), on the parameters and gradients of real models: bitwise the same
 * parameters, gradients, moments and norms after several updates.
 */
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { trainStepOf } from '../../bench/train.js';
import { fromArray } from '../../src/tensor/create.js';
import { isPersistent, persistentBytes, residentScope } from '../../src/tensor/backends/cpu/resident.js';
import { setSimd, simdStatus, simdTuning, wasmRuntime } from '../../src/tensor/backends/cpu/wasm/runtime.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { Adam, clipGradNorm } from '../../src/train/optim.js';

// the kernels on for this file (also under MEGA_SIMD=0), the setting restored after it
const initialSimd = simdStatus().enabled;
beforeAll(() => setSimd(true));
afterAll(() => setSimd(initialSimd));
afterEach(() => {
  setSimd(true);
  simdTuning.force = false;
});

/** Parameters and gradients of one step of a benchmark model (copies, in `dtype`). */
function realModel(name: string, dtype: 'f32' | 'f64'): { params: Float64Array[]; grads: Float64Array[]; shapes: number[][] } {
  const { step, params } = trainStepOf(name, { keepGrads: true });
  step();
  return {
    params: params.map((p) => Float64Array.from(p.storage as Float32Array)),
    grads: params.map((p) => Float64Array.from(p.grad!.toTypedArray() as Float32Array).map((g) => g * (dtype === 'f64' ? 1 + 1e-9 : 1))),
    shapes: params.map((p) => [...p.shape]),
  };
}

const bits = (t: Tensor) => Buffer.from((t.toTypedArray() as Float32Array).slice().buffer);

interface Opts {
  dtype: 'f32' | 'f64';
  decay: number;
  clip: number;
  scale: number;
  /** where the wasm side's updates run: 'plain' arrays, 'resident' scope, or 'alternate' (wasm / TS paths in turn) */
  where: 'plain' | 'resident' | 'alternate';
}

/** Three updates with the gradients `grads` (scaled ×(1 + k/10) at update k); wasm path on or off. */
function updates(m: ReturnType<typeof realModel>, o: Opts, wasm: boolean) {
  const make = (v: Float64Array, shape: number[]) => fromArray(o.dtype === 'f32' ? Float32Array.from(v) : Float64Array.from(v), shape);
  const ps = m.params.map((v, i) => make(v, m.shapes[i]));
  ps.forEach((p) => (p.requiresGrad = true));
  const opt = new Adam(ps, { lr: 1e-3, betas: [0.9, 0.98], eps: 1e-8, weightDecay: o.decay });
  const norms: number[] = [];
  for (let k = 0; k < 3; k++) {
    const on = wasm && !(o.where === 'alternate' && k === 1);
    setSimd(on);
    ps.forEach((p, i) => {
      p.grad = make(
        m.grads[i].map((g) => g * (1 + k / 10)),
        m.shapes[i],
      );
      if (i % 7 === 3) p.grad = null; // some parameters without a gradient
      if (i % 7 === 5 && k === 0) p.grad = null; // some a step behind the others (another step size)
    });
    const body = () => {
      norms.push(clipGradNorm(ps, o.clip, o.scale));
      opt.setLr(1e-3 * (k + 1));
      opt.step();
    };
    if (o.where === 'resident') residentScope({}, body, () => [...ps, ...ps.map((p) => p.grad)]);
    else body();
    setSimd(true);
  }
  return { ps, opt, norms };
}

describe('optimizer step: WebAssembly path = TypeScript loops, bitwise', () => {
  it.each([
    ['lm', { dtype: 'f32', decay: 0.01, clip: 0.1, scale: 1 / 37, where: 'plain' }],
    ['lm', { dtype: 'f32', decay: 0, clip: 1e9, scale: 1 / 37, where: 'resident' }],
    ['nmt', { dtype: 'f32', decay: 0.1, clip: 0, scale: 1 / 1234, where: 'resident' }],
    ['nmt', { dtype: 'f32', decay: 0, clip: 0.5, scale: 1, where: 'alternate' }],
    ['listops', { dtype: 'f64', decay: 0.01, clip: 0.1, scale: 1 / 3, where: 'plain' }],
    ['listops', { dtype: 'f64', decay: 0, clip: 1e9, scale: 1, where: 'resident' }],
  ] as [string, Opts][])('%s %j', (name, o) => {
    expect(wasmRuntime()).not.toBeNull();
    const m = realModel(name, o.dtype);
    const ref = updates(m, o, false);
    const got = updates(m, o, true);
    expect(got.norms).toEqual(ref.norms);
    expect(got.norms.every((n) => n > 0 && Number.isFinite(n))).toBe(true);
    got.ps.forEach((p, i) => {
      const r = ref.ps[i];
      expect(bits(p).equals(bits(r))).toBe(true);
      expect(p.grad === null).toBe(r.grad === null);
      if (p.grad) expect(bits(p.grad).equals(bits(r.grad!))).toBe(true);
      const [s, sr] = [got.opt.getState(p), ref.opt.getState(r)];
      expect(s?.step).toBe(sr?.step);
      if (s && sr) {
        expect(bits(s.exp_avg).equals(bits(sr.exp_avg))).toBe(true);
        expect(bits(s.exp_avg_sq).equals(bits(sr.exp_avg_sq))).toBe(true);
        if (o.where !== 'alternate') expect(isPersistent(s.exp_avg.storage)).toBe(true); // the moments live in the wasm memory
      }
      // the parameters live in the wasm memory too (read and updated in place), also after a resident scope ended
      expect(isPersistent(p.storage)).toBe(true);
    });
    // the parameters moved (the test compares real updates)
    expect(got.ps.some((p, i) => p.grad !== null && (p.storage as Float64Array)[0] !== m.params[i][0])).toBe(true);
  });

  it('measuring only (clip 0, scale 1) leaves the gradient tensors as they are', () => {
    const ps = [
      fromArray(
        Float32Array.from({ length: 1000 }, (_, i) => i),
        [1000],
      ),
    ];
    ps[0].grad = fromArray(
      Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i)),
      [1000],
    );
    const g = ps[0].grad;
    const want = Array.from(g.storage as Float32Array).reduce((a, x) => a + x * x, 0);
    expect(clipGradNorm(ps, 0)).toBe(Math.sqrt(want));
    expect(ps[0].grad).toBe(g);
  });

  it('the parameter and the moments are returned to the heap when they are collected', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const settle = async () => {
      for (let i = 0; i < 5; i++) {
        gc();
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await settle(); // what earlier tests left
    const before = persistentBytes();
    (() => {
      const p = fromArray(new Float32Array(4096), [4096]);
      p.grad = fromArray(new Float32Array(4096).fill(1), [4096]);
      new Adam([p], { lr: 1 }).step();
      expect(persistentBytes() - before).toBe(3 * 4096 * 4); // parameter, exp_avg, exp_avg_sq
    })();
    await settle();
    expect(persistentBytes()).toBe(before);
  });
});
