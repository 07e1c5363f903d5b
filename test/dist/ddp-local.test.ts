import { describe, expect, it } from 'vitest';
import * as F from '../../src/autograd/index.js';
import { backward, setPostAccumulateGradHook } from '../../src/autograd/engine.js';
import { DataParallel, firstDifference, checkSameOnAllRanks } from '../../src/dist/ddp.js';
import { allGatherJson, LocalGroup, type CommArray, type ProcessGroup, type Work } from '../../src/dist/group.js';
import { Module } from '../../src/nn/module.js';
import { Linear } from '../../src/nn/layers.js';
import { tensor } from '../../src/tensor/create.js';
import { manualSeed, randNormal } from '../../src/tensor/random.js';
import type { Tensor } from '../../src/tensor/tensor.js';

class Three extends Module {
  readonly a: Linear;
  readonly b: Linear;
  readonly unused: Linear;
  constructor() {
    super();
    this.a = this.child('a', new Linear(4, 6, { dtype: 'f64' }));
    this.b = this.child('b', new Linear(6, 2, { dtype: 'f64' }));
    this.unused = this.child('unused', new Linear(2, 2, { dtype: 'f64' }));
  }
  forward(x: Tensor): Tensor {
    return this.b.forward(F.tanh(this.a.forward(x)));
  }
}

describe('autograd post-accumulate hook', () => {
  it('fires once per leaf, after every contribution of this backward was added', () => {
    const w = tensor([1, 2, 3], 'f64');
    w.requiresGrad = true;
    const v = tensor([0.5, -1, 2], 'f64');
    v.requiresGrad = true;
    const seen: [Tensor, number[]][] = [];
    const prev = setPostAccumulateGradHook((t) => seen.push([t, t.grad!.toArray()]));
    try {
      // w is used three times, v once: w's hook must see the complete gradient
      const y = F.sum(F.add(F.mul(F.mul(w, w), v), F.mul(w, 3)));
      backward(y);
    } finally {
      setPostAccumulateGradHook(prev);
    }
    expect(seen.map(([t]) => t)).toHaveLength(2);
    const gw = seen.find(([t]) => t === w)![1];
    expect(gw).toEqual(w.grad!.toArray());
    expect(gw).toEqual([2 * 1 * 0.5 + 3, 2 * 2 * -1 + 3, 2 * 3 * 2 + 3]);
    expect(seen.find(([t]) => t === v)![1]).toEqual([1, 4, 9]);
  });
});

/** A stand-in for rank 0 of 2 whose collectives change nothing but are counted. */
class CountingGroup extends LocalGroup implements ProcessGroup {
  override readonly worldSize = 2 as 1;
  launches = 0;
  waits = 0;
  override allReduceAsync(_x: CommArray): Work {
    this.launches++;
    return { wait: () => void this.waits++ };
  }
  override allGatherBytes(x: Uint8Array): Uint8Array[] {
    return [x.slice(), x.slice()];
  }
}

describe('DataParallel on a single process', () => {
  it('no all-reduce on the non-final micro-steps; the final backward launches buckets while it runs (overlap)', () => {
    manualSeed(2);
    const m = new Three();
    const g = new CountingGroup();
    const ddp = new DataParallel(m, g, { bucketBytes: 48 }); // buckets: [unused.*], [b.*], [a.bias], [a.weight]
    expect(ddp.overlap).toBe(true);
    const x = randNormal([3, 4], 0, 1, 'f64');
    const launchesDuring: number[] = [];
    let launchedBefore = -1;
    for (let f = 0; f < 3; f++) {
      const loss = F.sum(m.forward(x));
      ddp.beginBackward(f === 2, loss);
      if (f === 2) launchedBefore = g.launches;
      backward(loss);
      launchesDuring.push(g.launches);
    }
    // micro-steps 1 and 2: nothing; the last one: the unused layer's bucket goes before backward
    // (find_unused_parameters), every other bucket during backward
    expect(launchesDuring.slice(0, 2)).toEqual([0, 0]);
    expect(launchedBefore).toBe(1);
    expect(launchesDuring[2]).toBe(ddp.numBuckets);
    ddp.finishGradients();
    expect(g.launches).toBe(ddp.numBuckets);
    expect(g.waits).toBe(ddp.numBuckets);
    ddp.close();
  });

  it('buckets are filled in reverse parameter order up to the cap; a parameter without gradient keeps null', () => {
    manualSeed(1);
    const m = new Three();
    const ddp = new DataParallel(m, new LocalGroup(), { bucketBytes: 100 });
    // reverse order: unused.bias(2) unused.weight(4) b.bias(2) b.weight(12) a.bias(6) a.weight(24), 8 bytes each, cap 100 B
    // buckets: [unused.bias, unused.weight, b.bias, b.weight] = 20 el ≥ 12.5 → flush; [a.bias, a.weight] = 30 el
    expect(ddp.numBuckets).toBe(2);
    expect(ddp.bucketSizes()).toEqual([(20 + 4) * 8, (30 + 2) * 8]);
    const x = randNormal([3, 4], 0, 1, 'f64');
    for (const final of [false, true]) {
      ddp.beginBackward(final);
      backward(F.sum(m.forward(x)));
    }
    const before = m.parameters().map((p) => p.grad?.toArray() ?? null);
    ddp.finishGradients();
    expect(m.parameters().map((p) => p.grad?.toArray() ?? null)).toEqual(before);
    expect(m.unused.weight.grad).toBeNull();
    expect(m.a.weight.grad).not.toBeNull();
    expect(ddp.sum([1, 2.5])).toEqual([1, 2.5]);
    ddp.close();
  });

  it('names the first difference between two configurations', () => {
    expect(firstDifference({ a: 1, b: { c: [1, 2] } }, { a: 1, b: { c: [1, 3] } })).toEqual({ path: 'b.c[1]', a: 2, b: 3 });
    expect(
      firstDifference(
        { p: [['w', [2, 3]]] },
        {
          p: [
            ['w', [2, 3]],
            ['v', [1]],
          ],
        },
      ),
    ).toEqual({ path: 'p.length', a: 1, b: 2 });
    expect(firstDifference({ x: 1 }, { x: 1 })).toBeNull();
    const g = new LocalGroup();
    expect(() => checkSameOnAllRanks(g, { x: 1 })).not.toThrow();
    expect(allGatherJson(g, { r: 0 })).toEqual([{ r: 0 }]);
  });
});
