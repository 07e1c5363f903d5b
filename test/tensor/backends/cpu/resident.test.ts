/**
 * The resident heap (blocks of the wasm memory) and resident scopes: allocation, splitting,
 * coalescing, the arena above the heap, moving roots out at the end of a scope, and the
 * autograd engine's early frees inside a scope.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { backward } from '../../../../src/autograd/engine.js';
import { add, mul } from '../../../../src/autograd/ops/arith.js';
import { sum } from '../../../../src/autograd/ops/reduce.js';
import { fromArray } from '../../../../src/tensor/create.js';
import { Tensor } from '../../../../src/tensor/tensor.js';
import { binary, matmul, unary } from '../../../../src/tensor/kernels.js';
import { isResident, residentActive, residentBytes, residentDebug, residentScope } from '../../../../src/tensor/backends/cpu/resident.js';
import { WasmHeap } from '../../../../src/tensor/backends/cpu/wasm/heap.js';
import { Generator } from '../../../../src/tensor/random.js';
import { wasmRuntime } from '../../../../src/tensor/backends/cpu/wasm/runtime.js';

afterEach(() => {
  residentDebug.poison = false;
});

function newHeap(scratch = () => 0): { heap: WasmHeap; memory: WebAssembly.Memory } {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1024, shared: true });
  return { heap: new WasmHeap(memory, 1024, scratch), memory };
}

describe('WasmHeap', () => {
  it('hands out 64-byte aligned blocks, reuses freed ones first fit, splits and merges them', () => {
    const { heap } = newHeap();
    const a = heap.alloc(100); // 128 bytes
    const b = heap.alloc(1000); // 1024
    const c = heap.alloc(64);
    expect([a, b, c]).toEqual([1024, 1152, 2176]);
    expect(heap.top).toBe(2240);
    heap.release(b);
    const d = heap.alloc(200); // first fit in b's place, split: 256 used, 768 free after it
    expect(d).toBe(1152);
    const e = heap.alloc(768);
    expect(e).toBe(1408);
    heap.release(d);
    heap.release(e); // merges with d's range
    expect(heap.alloc(1024)).toBe(1152);
    expect(heap.liveBytes).toBe(128 + 1024 + 64);
  });

  it('lowers its top when the highest blocks are freed, whatever the order', () => {
    const { heap } = newHeap();
    const blocks = [300, 5000, 64, 70000].map((n) => heap.alloc(n));
    for (const i of [1, 3, 0, 2]) heap.release(blocks[i]);
    expect(heap.top).toBe(1024);
    expect(heap.liveBytes).toBe(0);
  });

  it('grows the memory for new blocks and never places a block over open scratch', () => {
    let scratch = 0;
    const { heap, memory } = newHeap(() => scratch);
    const a = heap.alloc(60000);
    expect(memory.buffer.byteLength).toBeGreaterThanOrEqual(a + 60000);
    scratch = heap.top + 4096; // a kernel holds [top, top + 4096)
    const b = heap.alloc(64);
    expect(b).toBeGreaterThanOrEqual(scratch);
    scratch = 0;
    expect(heap.alloc(4096)).toBe(a + 60032); // the range below the scratch became a free block
  });

  it('random allocations and frees: aligned blocks of the rounded size that never overlap, all merged back at the end', () => {
    const { heap } = newHeap();
    const g = new Generator(5);
    const live = new Map<number, number>(); // address → bytes asked
    const sizes = [64, 100, 640, 4096, 5000, 70000, 300000];
    for (let i = 0; i < 3000; i++) {
      if (live.size > 0 && g.uniform() < 0.45) {
        const keys = [...live.keys()];
        const a = keys[g.int(keys.length)];
        heap.release(a);
        live.delete(a);
        continue;
      }
      const bytes = sizes[g.int(sizes.length)] + g.int(3) * 64;
      const at = heap.alloc(bytes);
      expect(at % 64).toBe(0);
      const need = Math.ceil(bytes / 64) * 64;
      expect(heap.sizeOf(at)).toBe(need);
      for (const [b, n] of live) {
        const nb = Math.ceil(n / 64) * 64;
        if (at < b + nb && b < at + need) throw new Error(`block ${at}+${need} overlaps ${b}+${nb}`);
      }
      live.set(at, bytes);
    }
    for (const a of live.keys()) heap.release(a);
    expect(heap.top).toBe(1024); // all free ranges merged back into the top
    expect(heap.liveBytes).toBe(0);
  });

  it('refuses double frees', () => {
    const { heap } = newHeap();
    const a = heap.alloc(64);
    heap.release(a);
    expect(() => heap.release(a)).toThrow(/no live block/);
  });
});

/** A 64 × 64 f32 tensor `v + i/4096` (above the SIMD kernels' minimum size). */
const big = (v: number) =>
  fromArray(
    Float32Array.from({ length: 4096 }, (_, i) => v + i / 4096),
    [64, 64],
  );

describe('residentScope', () => {
  it('puts kernel outputs in the wasm memory only inside the scope, and frees them at its end', () => {
    expect(wasmRuntime()).not.toBeNull();
    const x = big(1);
    expect(isResident(binary(x, x, 'add').storage)).toBe(false);
    const before = residentBytes();
    let inside = 0;
    residentScope(
      {},
      () => {
        const y = unary(binary(x, x, 'mul'), 'exp');
        expect(residentActive()).toBe(true);
        expect(isResident(y.storage)).toBe(true);
        inside = residentBytes();
      },
      () => [],
    );
    expect(inside).toBeGreaterThan(before);
    expect(residentBytes()).toBe(before);
    expect(residentActive()).toBe(false);
  });

  it('moves roots and the tensors of its result to ordinary arrays with their values', () => {
    const x = big(2);
    const holder: { t: ReturnType<typeof big> | null } = { t: null };
    const out = residentScope(
      {},
      () => {
        holder.t = binary(x, x, 'mul');
        return { y: binary(x, x, 'add') };
      },
      () => [holder.t],
    );
    for (const [t, f] of [
      [holder.t!, (v: number) => Math.fround(v * v)],
      [out.y, (v: number) => Math.fround(v + v)],
    ] as const) {
      expect(isResident(t.storage)).toBe(false);
      expect(t.storage.buffer).toBeInstanceOf(ArrayBuffer);
      const xs = x.storage;
      for (const i of [0, 1, 4095]) expect(t.storage[i]).toBe(f(xs[i]));
    }
  });

  it('keeps a root that is a strided view in its block until the same owner ends another scope', () => {
    const x = big(3);
    const owner = {};
    const before = residentBytes();
    let view: ReturnType<typeof big> | null = null;
    residentScope(
      owner,
      () => {
        const y = binary(x, x, 'add');
        view = new Tensor(y.data, [32, 64], [64, 1], 64); // rows 1…32: not the whole storage
      },
      () => [view],
    );
    expect(isResident(view!.storage)).toBe(true);
    expect(view!.at(0, 0)).toBe(Math.fround(x.at(1, 0) * 2));
    residentScope(
      owner,
      () => undefined,
      () => [],
    );
    expect(residentBytes()).toBe(before);
  });

  it('frees what a step made even when it throws, and its roots keep their values', () => {
    const x = big(4);
    const before = residentBytes();
    let root: Tensor | null = null;
    expect(() =>
      residentScope(
        {},
        () => {
          root = binary(x, x, 'add');
          throw new Error('boom');
        },
        () => [root],
      ),
    ).toThrow('boom');
    expect(residentBytes()).toBe(before);
    expect(residentActive()).toBe(false);
    expect(isResident(root!.storage)).toBe(false);
    expect(root!.at(0, 1)).toBe(Math.fround(x.at(0, 1) * 2));
  });
});

describe('kernels on resident operands', () => {
  it.each([
    [37, 19, 64],
    [300, 32, 50],
    [9, 5, 7],
  ])('matmul %i×%i×%i (C leaves its padded block by rows) gives the same bits resident or not', (M, K, N) => {
    const a = fromArray(
      Float32Array.from({ length: M * K }, (_, i) => Math.sin(i)),
      [M, K],
    );
    const b = fromArray(
      Float32Array.from({ length: K * N }, (_, i) => Math.cos(i)),
      [K, N],
    );
    const ordinary = matmul(a, b).toTypedArray();
    const resident = residentScope(
      {},
      () => {
        const c = matmul(binary(a, a, 'add'), b); // a resident operand and output
        expect(isResident(c.storage)).toBe(true);
        return { c: matmul(a, b), twice: c };
      },
      () => [],
    );
    expect(Buffer.from(resident.c.toTypedArray().buffer).equals(Buffer.from(ordinary.buffer))).toBe(true);
    const twice = matmul(binary(a, a, 'add'), b).toTypedArray();
    expect(Buffer.from(resident.twice.toTypedArray().buffer).equals(Buffer.from(twice.buffer))).toBe(true);
  });
});

describe('backward inside a resident scope', () => {
  it('frees forward tensors and consumed gradients as it goes; leaves get correct gradients in ordinary arrays', () => {
    const w = big(0.5);
    w.requiresGrad = true;
    const x = big(1);
    let peakDuring = 0,
      afterForward = 0;
    residentScope(
      {},
      () => {
        // loss = Σ (w·x + w)·x  →  ∂/∂w = x·x + x
        const h = add(mul(w, x), w);
        const loss = sum(mul(h, x));
        afterForward = residentBytes();
        residentDebug.poison = true;
        backward(loss);
        peakDuring = residentBytes(); // (after the queued jobs: frees wait for the jobs before them)
      },
      () => [w, w.grad],
    );
    expect(peakDuring).toBeLessThan(afterForward); // the forward tensors went during backward
    expect(isResident(w.grad!.storage)).toBe(false);
    const xs = x.storage;
    for (const i of [0, 7, 4095]) expect(w.grad!.storage[i]).toBe(Math.fround(Math.fround(xs[i] * xs[i]) + xs[i]));
  });
});
