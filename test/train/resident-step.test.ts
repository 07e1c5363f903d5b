/**
 * Training steps in a resident scope (kernel outputs in the wasm memory, early frees during
 * backward, reuse across steps) against the same steps with ordinary arrays, on the four
 * training-benchmark configurations: image (batch norm, laplace, chunks), ListOps, LM, NMT.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { trainStepOf } from '../../bench/train.js';
import { isPersistent, residentBytes, residentDebug } from '../../src/tensor/backends/cpu/resident.js';
import { simdTuning, wasmArena, wasmRuntime } from '../../src/tensor/backends/cpu/wasm/runtime.js';

const CASES = ['image', 'listops', 'lm', 'nmt'];

/** Losses of `n` steps and the parameters after them (copies). */
function run(name: string, n: number, resident: boolean): { losses: number[]; params: Float32Array[] } {
  const { step, params } = trainStepOf(name, { resident });
  const losses = Array.from({ length: n }, () => step());
  return { losses, params: params.map((p) => Float32Array.from(p.storage as Float32Array)) };
}

afterEach(() => {
  residentDebug.poison = false;
  simdTuning.force = false;
});

describe('resident training steps', () => {
  it.each(CASES)('%s: poisoning every freed block changes nothing (no tensor is read after it was freed)', (name) => {
    const clean = run(name, 2, true);
    residentDebug.poison = true;
    const poisoned = run(name, 2, true);
    expect(poisoned.losses).toEqual(clean.losses);
    poisoned.params.forEach((p, i) => expect(Buffer.from(p.buffer).equals(Buffer.from(clean.params[i].buffer))).toBe(true));
    expect(clean.losses.every(Number.isFinite)).toBe(true);
  });

  it.each(CASES)('%s: with every kernel on its SIMD path, resident steps equal ordinary ones bitwise', (name) => {
    simdTuning.force = true; // same kernels on both sides: only where operands live differs
    const ordinary = run(name, 2, false);
    const resident = run(name, 2, true);
    expect(resident.losses).toEqual(ordinary.losses);
    resident.params.forEach((p, i) => expect(Buffer.from(p.buffer).equals(Buffer.from(ordinary.params[i].buffer))).toBe(true));
  });

  it('reuses its blocks (the heap stops growing after the first steps) and frees them all at the end of each step', () => {
    const { step, params } = trainStepOf('lm');
    const heap = wasmArena(wasmRuntime()!).heap;
    const before = residentBytes();
    step();
    step();
    const top = heap.top;
    for (let i = 0; i < 3; i++) step();
    expect(heap.top).toBe(top);
    expect(residentBytes()).toBe(before);
    // the step dropped its spent gradients (freed with its other blocks, not copied out), and the
    // parameters stayed in their persistent blocks
    expect(params.every((p) => p.grad === null && isPersistent(p.storage))).toBe(true);
  });
});
