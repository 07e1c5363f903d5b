/**
 * Data parallel with gradients on the gpujs device: the gradient buckets go through host buffers,
 * each gradient's copy to the host started asynchronously (`prefetch`) during backward as soon as
 * it is final, buckets all-reduced during backward, and the sums equal twice the gradients of the
 * same step without data parallel (a two-rank group whose other rank mirrors this one).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as F from '../../../../src/autograd/index.js';
import { DataParallel } from '../../../../src/dist/ddp.js';
import { LocalGroup, type CommArray, type ReduceOp, type Work } from '../../../../src/dist/group.js';
import { Linear } from '../../../../src/nn/layers.js';
import { Module } from '../../../../src/nn/module.js';
import { setBackend } from '../../../../src/tensor/backend.js';
import { GpuData, GpuDevice, moveToDevice, selectBackend } from '../../../../src/tensor/backends/gpujs/index.js';
import { Generator, randNormal } from '../../../../src/tensor/random.js';
import type { Tensor } from '../../../../src/tensor/tensor.js';
import { skipWithout } from '../../../system.js';
import { gpuAvailable } from '../gpu-probe.js';

class Mlp extends Module {
  readonly a: Linear;
  readonly b: Linear;
  constructor(gen: Generator) {
    super();
    this.a = this.child('a', new Linear(8, 16, { gen }));
    this.b = this.child('b', new Linear(16, 4, { gen }));
  }
  forward(x: Tensor): Tensor {
    return this.b.forward(F.gelu(this.a.forward(x)));
  }
}

/** Two ranks where the other rank has this rank's values: a sum doubles them. */
class Mirror extends LocalGroup {
  override readonly worldSize = 2 as unknown as 1;
  launched = 0;
  override allReduce(x: CommArray, _op: ReduceOp = 'sum'): void {
    for (let i = 0; i < x.length; i++) x[i] *= 2;
  }
  override allReduceAsync(x: CommArray, op: ReduceOp = 'sum'): Work {
    this.launched++;
    this.allReduce(x, op);
    return { wait: () => undefined };
  }
  override allGatherBytes(x: Uint8Array): Uint8Array[] {
    return [x.slice(), x.slice()];
  }
}

describe.skipIf(skipWithout({ gpu: gpuAvailable() }))('data parallel with device gradients', () => {
  beforeAll(() => {
    selectBackend('gpujs');
  }, 180_000);
  afterAll(() => setBackend('cpu'));

  it('copies each gradient to the host asynchronously during backward; sums equal the plain step', () => {
    const x = randNormal([5, 8], 0, 1, 'f32', new Generator(4));
    const grads = (withDdp: boolean) => {
      const m = new Mlp(new Generator(3));
      const group = new Mirror();
      const ddp = withDdp ? new DataParallel(m, group, { bucketBytes: 64 * 4 }) : null;
      moveToDevice(m.parameters());
      const d = GpuDevice.get()!;
      const loss = F.sum(F.square(m.forward(x)));
      ddp?.beginBackward(true, loss);
      const before = { ...d.counters };
      F.backward(loss);
      const during = {
        async: d.counters.asyncReads - before.asyncReads,
        sync: d.counters.readbacks - before.readbacks - (d.counters.asyncReads - before.asyncReads),
        buckets: group.launched,
      };
      ddp?.finishGradients();
      const after = d.counters.readbacks - before.readbacks;
      return { m, ddp, during, after, g: m.namedParameters().map(([k, p]) => [k, Array.from(p.grad!.toTypedArray())] as const) };
    };
    const plain = grads(false);
    const dp = grads(true);
    expect(dp.ddp!.numBuckets).toBeGreaterThan(1);
    const n = dp.m.parameters().length;
    // during backward: every gradient's copy started without waiting, no blocking read-back, and
    // the buckets were all-reduced
    expect(dp.during).toEqual({ async: n, sync: 0, buckets: dp.ddp!.numBuckets });
    expect(dp.after).toBe(n); // finishGradients collected those copies and read nothing else
    expect(plain.m.parameters().every((p) => p.grad!.device instanceof GpuData)).toBe(true);
    for (let i = 0; i < n; i++) {
      const [k, one] = plain.g[i],
        got = dp.g[i][1];
      const ref = one.map((v) => 2 * v);
      const scale = Math.max(...ref.map(Math.abs));
      const err = Math.max(...ref.map((r, j) => Math.abs(r - got[j])));
      expect(err, k).toBeLessThanOrEqual(1e-6 + 2e-4 * scale);
    }
  });
});
