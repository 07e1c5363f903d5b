/**
 * The Mega gate kernels (gateQK, siluMul, gateOut and their VJPs; siluGrad): the CPU kernels equal the
 * compositions of primitive kernels they replace (generic-fused.ts, what gpujs runs) on the
 * layouts the layer hands them, the autograd ops' gradients equal those of the unfused op
 * compositions, and the ops pass finite-difference checks.
 */
import { describe, expect, it } from 'vitest';
import * as F from '../../../../src/autograd/index.js';
import { gateOut, gateQK, siluMul } from '../../../../src/autograd/ops/fused.js';
import type { GateActivation } from '../../../../src/tensor/backend.js';
import {
  gateOutCpu,
  gateOutGradCpu,
  gateQKCpu,
  gateQKGradCpu,
  siluGradCpu,
  siluMulCpu,
  siluMulGradCpu,
} from '../../../../src/tensor/backends/cpu/fused-gates.js';
import {
  gateOutGradSimd,
  gateOutSimd,
  gateQKGradSimd,
  gateQKSimd,
  siluGradSimd,
  siluMulGradSimd,
  siluMulSimd,
} from '../../../../src/tensor/backends/cpu/gates-simd.js';
import { getNumThreads, setNumThreads } from '../../../../src/tensor/backends/cpu/pool.js';
import { isResident, residentScope } from '../../../../src/tensor/backends/cpu/resident.js';
import { simdStatus, simdTuning } from '../../../../src/tensor/backends/cpu/wasm/runtime.js';
import {
  gateOutGeneric,
  gateOutGradGeneric,
  gateQKGeneric,
  gateQKGradGeneric,
  siluGradGeneric,
  siluMulGeneric,
  siluMulGradGeneric,
} from '../../../../src/tensor/backends/generic-fused.js';
import type { FloatDType } from '../../../../src/tensor/dtype.js';
import { scalar } from '../../../../src/tensor/create.js';
import * as K from '../../../../src/tensor/kernels.js';
import { Generator, randNormal, randUniform } from '../../../../src/tensor/random.js';
import { fromStorage, type Tensor } from '../../../../src/tensor/tensor.js';
import * as V from '../../../../src/tensor/view.js';
import { maxRel } from './max-rel.js';

const gen = new Generator(11);
/** Relative error bound per dtype (the kernels round once, the compositions once per step). */
const TOL: Record<FloatDType, number> = { f64: 1e-14, f32: 2e-6 };

/** A scaled dropout mask of `shape`: 0 with probability p, else 1/(1−p). */
function dropMask(shape: number[], p: number, dt: FloatDType): Tensor {
  const keep = K.cast(K.binary(randUniform(shape, 0, 1, dt, gen), scalar(p, dt), 'ge'), dt);
  return K.binary(keep, scalar(1 / (1 - p), dt), 'mul');
}

function expectClose(a: Tensor, b: Tensor, dt: FloatDType, factor = 1): void {
  expect(maxRel(a, b)).toBeLessThanOrEqual(TOL[dt] * factor);
}

/** The layer's layouts: pieces of one `L × B × W` projection, and a transposed `B × L × ·` tensor. */
function layouts(dt: FloatDType, L: number, B: number, W: number) {
  const proj = randNormal([L, B, 3 * W + 5], 0, 2, dt, gen);
  const piece = (i: number) => V.narrow(proj, 2, 5 + i * W, W); // L × B × W, row stride 3W + 5
  const transposed = V.transpose(randNormal([B, L, W], 0, 1.5, dt, gen), 0, 1); // L × B × W, strided
  return { piece, transposed, dense: () => randNormal([L, B, W], 0, 1, dt, gen) };
}

describe('gate kernels: CPU kernel = composition of primitives', () => {
  for (const dt of ['f64', 'f32'] as FloatDType[]) {
    it(`gateQK and its VJP (${dt})`, () => {
      for (const [L, B, Z] of [
        [7, 3, 5],
        [33, 2, 64],
      ]) {
        const { piece, transposed } = layouts(dt, L, B, Z);
        const z = piece(1);
        const gamma = randNormal([2, Z], 0, 1, dt, gen),
          beta = randNormal([2, Z], 0, 1, dt, gen);
        expectClose(gateQKCpu(z, gamma, beta), gateQKGeneric(z, gamma, beta), dt);
        const gq = transposed,
          gk = randNormal([L, B, Z], 0, 1, dt, gen);
        const got = gateQKGradCpu(z, gamma, gq, gk),
          want = gateQKGradGeneric(z, gamma, gq, gk);
        for (let i = 0; i < 3; i++) expectClose(got[i], want[i], dt, i === 0 ? 1 : 10);
        // 1-D and 4-D z
        const z1 = randNormal([Z], 0, 1, dt, gen);
        expectClose(gateQKCpu(z1, gamma, beta), gateQKGeneric(z1, gamma, beta), dt);
        const z4 = V.permute(randNormal([2, Z, 3, L], 0, 1, dt, gen), [0, 2, 3, 1]);
        expectClose(gateQKCpu(z4, gamma, beta), gateQKGeneric(z4, gamma, beta), dt);
      }
    });

    it(`siluMul and its VJP, siluGrad (${dt})`, () => {
      const { piece, transposed, dense } = layouts(dt, 19, 3, 40);
      const h = transposed,
        r = piece(2),
        g = dense();
      expectClose(siluMulCpu(h, r), siluMulGeneric(h, r), dt);
      expectClose(siluGradCpu(r, h), siluGradGeneric(r, h), dt);
      const got = siluMulGradCpu(h, r, g),
        want = siluMulGradGeneric(h, r, g);
      expectClose(got[0], want[0], dt);
      expectClose(got[1], want[1], dt);
    });

    for (const act of ['silu', 'relu', 'linear'] as GateActivation[]) {
      it(`gateOut and its VJP, ${act}, with and without a dropout mask (${dt})`, () => {
        const [L, B, D] = [21, 3, 16];
        const { piece, dense } = layouts(dt, L, B, D);
        const x = dense(),
          u = piece(0),
          hx = piece(2),
          y = dense(),
          g = V.transpose(randNormal([B, L, D], 0, 1, dt, gen), 0, 1);
        // a standard mask (L × B × D) and a feature mask (1 × B × D, broadcast over L)
        const std = dropMask([L, B, D], 0.3, dt);
        const feat = dropMask([1, B, D], 0.3, dt);
        for (const mask of [null, std, feat]) {
          expectClose(gateOutCpu(x, u, hx, y, mask, act), gateOutGeneric(x, u, hx, y, mask, act), dt);
          const got = gateOutGradCpu(x, u, hx, y, mask, act, g),
            want = gateOutGradGeneric(x, u, hx, y, mask, act, g);
          for (let i = 0; i < 3; i++) expectClose(got[i], want[i], dt);
        }
      });
    }
  }

  it('reject operands of another shape or dtype, and gamma of another width', () => {
    const a = randNormal([4, 3], 0, 1, 'f32', gen);
    expect(() => siluMulCpu(a, randNormal([4, 2], 0, 1, 'f32', gen))).toThrow(/shapes \[4,3\] and \[4,2\] differ/);
    expect(() => siluMulCpu(a, randNormal([4, 3], 0, 1, 'f64', gen))).toThrow(/mixed dtypes/);
    expect(() => gateQKCpu(a, randNormal([2, 4], 0, 1, 'f32', gen), randNormal([2, 4], 0, 1, 'f32', gen))).toThrow(/gamma \/ beta must be \[2, 3\]/);
    expect(() => gateOutCpu(a, a, a, a, randNormal([2, 3], 0, 1, 'f32', gen), 'silu')).toThrow(/expand/);
  });
});

describe('gate ops: gradients equal the unfused op compositions', () => {
  for (const dt of ['f64', 'f32'] as FloatDType[]) {
    it(`gateQK, siluMul, gateOut in one graph (${dt})`, () => {
      const [L, B, D, Z, H] = [9, 2, 6, 4, 5];
      const base = F.requiresGrad(randNormal([L, B, 2 * D + Z + H], 0, 1.5, dt, gen));
      const gamma = F.requiresGrad(randNormal([2, Z], 0, 1, dt, gen)),
        beta = F.requiresGrad(randNormal([2, Z], 0, 1, dt, gen));
      const x = F.requiresGrad(randNormal([L, B, D], 0, 1, dt, gen));
      const w = F.requiresGrad(randNormal([D, H], 0, 0.5, dt, gen));
      const mask = dropMask([1, B, D], 0.2, dt);
      const cot = randNormal([L, B, D], 0, 1, dt, gen);
      const run = (fused: boolean): Tensor[] => {
        for (const t of [base, gamma, beta, x, w]) t.grad = null;
        const [u, z, r, hx] = F.split(base, [D, Z, H, D], -1);
        let q: Tensor, k: Tensor, out: Tensor;
        if (fused) {
          [q, k] = gateQK(z, gamma, beta);
          const hr = siluMul(F.expand(F.sum(F.mul(q, k), -1, true), [L, B, H]), r);
          out = gateOut(x, u, hx, F.matmul(hr, F.transpose(w, 0, 1)), mask, 'silu');
        } else {
          const s = F.silu(z);
          q = F.add(F.mul(s, F.narrow(gamma, 0, 0, 1)), F.narrow(beta, 0, 0, 1));
          k = F.add(F.mul(s, F.narrow(gamma, 0, 1, 1)), F.narrow(beta, 0, 1, 1));
          const hr = F.mul(F.expand(F.sum(F.mul(q, k), -1, true), [L, B, H]), F.silu(r));
          const y = F.matmul(hr, F.transpose(w, 0, 1));
          out = F.add(x, F.mul(F.sigmoid(u), F.sub(F.mul(F.silu(F.add(hx, y)), mask), x)));
        }
        F.backward(out, cot);
        return [out, base.grad!, gamma.grad!, beta.grad!, x.grad!, w.grad!];
      };
      const a = run(true),
        b = run(false);
      for (let i = 0; i < a.length; i++) expectClose(a[i], b[i], dt, 20);
    });
  }

  it('pass finite-difference checks (f64), and a half without gradient counts as zero', () => {
    const z = F.requiresGrad(randNormal([3, 2, 4], 0, 1, 'f64', gen));
    const gamma = F.requiresGrad(randNormal([2, 4], 0, 1, 'f64', gen)),
      beta = F.requiresGrad(randNormal([2, 4], 0, 1, 'f64', gen));
    expect(F.gradcheck((a, g, b) => F.mul(gateQK(a, g, b)[0], gateQK(a, g, b)[1]), [z, gamma, beta]).ok).toBe(true);
    expect(F.gradcheck((a, g, b) => F.exp(gateQK(a, g, b)[1]), [z, gamma, beta]).ok).toBe(true);
    const h = F.requiresGrad(randNormal([3, 4], 0, 1, 'f64', gen)),
      r = F.requiresGrad(randNormal([4, 3], 0, 2, 'f64', gen));
    expect(F.gradcheck((a, b) => siluMul(F.transpose(a, 0, 1), b), [h, r]).ok).toBe(true);
    const xs = [0, 1, 2, 3].map(() => F.requiresGrad(randNormal([2, 3, 4], 0, 1.5, 'f64', gen)));
    const m = dropMask([1, 3, 4], 0.3, 'f64');
    for (const act of ['silu', 'linear'] as GateActivation[]) {
      for (const mask of [null, m]) expect(F.gradcheck((x, u, hx, y) => gateOut(x, u, hx, y, mask, act), xs).ok).toBe(true);
    }
  });
});

describe('gate kernels: the SIMD paths equal the plain kernels', () => {
  const force = (on: boolean) => {
    const prev = simdTuning.force;
    simdTuning.force = on;
    return prev;
  };
  for (const dt of ['f64', 'f32'] as FloatDType[]) {
    it(`every SIMD gate kernel, on the layer's layouts, with threads and odd widths (${dt})`, () => {
      expect(simdStatus().enabled, simdStatus().reason).toBe(true);
      const prev = force(true);
      try {
        for (const [L, B, W] of [
          [13, 3, 7],
          [40, 4, 64],
        ]) {
          const { piece, transposed, dense } = layouts(dt, L, B, W);
          const x = dense(),
            g = transposed,
            y = dense();
          const [u, z, hx] = [piece(0), piece(1), piece(2)];
          const gamma = randNormal([2, W], 0, 1, dt, gen),
            beta = randNormal([2, W], 0, 1, dt, gen);
          const same = (got: Tensor | Tensor[] | null, want: Tensor | Tensor[]) => {
            expect(got).not.toBeNull();
            const gs = Array.isArray(got) ? got : [got!],
              ws = Array.isArray(want) ? want : [want];
            gs.forEach((t, i) => expectClose(t, ws[i], dt, 4));
          };
          same(gateQKSimd(z, gamma, beta), gateQKCpu(z, gamma, beta));
          const gk = V.permute(randNormal([W, L, B], 0, 1, dt, gen), [1, 2, 0]); // last axis strided
          same(gateQKGradSimd(z, gamma, g, gk), gateQKGradCpu(z, gamma, g, gk));
          same(siluMulSimd(gk, z), siluMulCpu(gk, z));
          same(siluMulSimd(g, z), siluMulCpu(g, z));
          same(siluGradSimd(z, g), siluGradCpu(z, g));
          same(siluMulGradSimd(g, z, x), siluMulGradCpu(g, z, x));
          for (const mask of [null, dropMask([L, B, W], 0.25, dt), dropMask([B, W], 0.25, dt)]) {
            same(gateOutSimd(x, u, hx, y, mask, 'silu'), gateOutCpu(x, u, hx, y, mask, 'silu'));
            same(gateOutGradSimd(x, u, hx, y, mask, 'silu', g), gateOutGradCpu(x, u, hx, y, mask, 'silu', g));
          }
          // not handled: another activation, mismatched operands
          expect(gateOutSimd(x, u, hx, y, null, 'relu')).toBeNull();
          expect(siluMulSimd(x, randNormal([L, B, W + 1], 0, 1, dt, gen))).toBeNull();
        }
        // extreme inputs: saturated sigmoids, ±∞
        const big = fromStorage(Float64Array.from([-1e4, -800, -90, -20, 0, 20, 90, 800, 1e4, Infinity, -Infinity, 3]), [12]);
        const e = K.cast(big, dt);
        same2(siluMulSimd(e, e)!, siluMulCpu(e, e));
        same2(gateOutSimd(e, e, e, e, null, 'silu')!, gateOutCpu(e, e, e, e, null, 'silu'));
      } finally {
        force(prev);
      }
    });
  }
  /** Equal as numbers up to rounding and f32 underflow (|a − b| ≤ 1e-30 + 1e-6·|b|), NaN and ±∞ exactly. */
  function same2(a: Tensor, b: Tensor): void {
    const x = K.cast(a, 'f64').storage,
      y = K.cast(b, 'f64').storage;
    y.forEach((w, i) => {
      if (!Number.isFinite(w)) expect(x[i]).toBe(w);
      else expect(Math.abs(x[i] - w), `element ${i}: ${x[i]} vs ${w}`).toBeLessThanOrEqual(1e-30 + 1e-6 * Math.abs(w));
    });
  }
});

describe('gate kernels: SIMD results do not depend on the thread count', () => {
  it('1 thread, 2 threads and the smallest tasks give the same bits (f32)', () => {
    const prevThreads = getNumThreads();
    const prevForce = simdTuning.force;
    try {
      const [L, B, W] = [300, 4, 64]; // large enough for the pool
      const { piece, transposed, dense } = layouts('f32', L, B, W);
      const x = dense(),
        g = transposed,
        gamma = randNormal([2, W], 0, 1, 'f32', gen),
        beta = randNormal([2, W], 0, 1, 'f32', gen),
        mask = dropMask([L, B, W], 0.1, 'f32'),
        gOut = dense();
      const run = (): Tensor[] => [
        gateQKSimd(piece(1), gamma, beta)!,
        ...gateQKGradSimd(piece(1), gamma, g, x)!,
        siluMulSimd(g, piece(2))!,
        ...siluMulGradSimd(g, piece(2), x)!,
        siluGradSimd(piece(0), g)!,
        gateOutSimd(x, piece(0), piece(2), g, mask, 'silu')!,
        ...gateOutGradSimd(x, piece(0), piece(2), g, mask, 'silu', gOut)!,
      ];
      setNumThreads(1);
      simdTuning.force = false;
      const one = run();
      setNumThreads(2);
      const two = run();
      simdTuning.force = true;
      const forced = run();
      const bits = (t: Tensor) => Array.from(new Uint32Array(Float32Array.from(t.storage as Float32Array).buffer));
      one.forEach((t, i) => {
        expect(bits(two[i])).toEqual(bits(t));
        expect(bits(forced[i])).toEqual(bits(t));
      });
    } finally {
      setNumThreads(prevThreads);
      simdTuning.force = prevForce;
    }
  });
});

describe('gate kernels: resident operands are read in place', () => {
  for (const dt of ['f32', 'f64'] as FloatDType[]) {
    it(`strided resident pieces, transposed views and broadcast masks give the plain kernels' values (${dt})`, () => {
      const [L, B, W] = [37, 3, 40];
      const gamma = randNormal([2, W], 0, 1, dt, gen),
        beta = randNormal([2, W], 0, 1, dt, gen);
      const pairs: [Tensor | Tensor[], Tensor | Tensor[]][] = residentScope(
        {},
        () => {
          // copies made inside the scope are resident; their views stay strided
          const proj = K.copy(randNormal([L, B, 3 * W + 5], 0, 2, dt, gen));
          const piece = (i: number) => V.narrow(proj, 2, 5 + i * W, W);
          const g = V.transpose(K.copy(randNormal([B, L, W], 0, 1, dt, gen)), 0, 1);
          const x = K.copy(randNormal([L, B, W], 0, 1, dt, gen));
          const mask = V.expand(K.copy(dropMask([B, W], 0.3, dt)), [L, B, W]);
          expect(isResident(proj.storage) && isResident(g.storage) && isResident(mask.storage)).toBe(true);
          const out: [Tensor | Tensor[], Tensor | Tensor[]][] = [
            [gateQKSimd(piece(1), gamma, beta)!, gateQKCpu(piece(1), gamma, beta)],
            [gateQKGradSimd(piece(1), gamma, g, x)!, gateQKGradCpu(piece(1), gamma, g, x)],
            [siluMulSimd(g, piece(2))!, siluMulCpu(g, piece(2))],
            [siluMulGradSimd(g, piece(2), x)!, siluMulGradCpu(g, piece(2), x)],
            [siluGradSimd(piece(0), g)!, siluGradCpu(piece(0), g)],
            [gateOutSimd(x, piece(0), piece(2), g, mask, 'silu')!, gateOutCpu(x, piece(0), piece(2), g, mask, 'silu')],
            [gateOutGradSimd(x, piece(0), piece(2), g, mask, 'silu', x)!, gateOutGradCpu(x, piece(0), piece(2), g, mask, 'silu', x)],
          ];
          // read the values before the scope frees the blocks
          return out.map(([a, b]) => [[a].flat().map((t) => K.cast(t, 'f64')), [b].flat().map((t) => K.cast(t, 'f64'))]);
        },
        () => [],
      ) as never;
      for (const [a, b] of pairs) (a as Tensor[]).forEach((t, i) => expectClose(t, (b as Tensor[])[i], dt, 4));
    });
  }
});
