/**
 * bench/ab-switch.ts: the switch A/B refuses unknown switches and bad step counts, alternates a
 * real training step between the two settings, and leaves the switch as it found it.
 */
import { describe, expect, it } from 'vitest';
import { abSwitch } from '../../bench/ab-switch.js';
import { setCausalProducts } from '../../src/mega/attention.js';
import { deferredJobs } from '../../src/tensor/backends/cpu/wasm/runtime.js';

describe('abSwitch', () => {
  it('refuses an unknown switch (naming the known ones) and a step count that is not a positive integer', () => {
    expect(() => abSwitch(['turbo', 'lm'])).toThrow(/switches: causal-products, fused-gates/);
    expect(() => abSwitch(['causal-products'])).toThrow(/usage/);
    expect(() => abSwitch(['causal-products', 'lm', '0'])).toThrow(/positive integer, got '0'/);
  });

  it('times both settings of causal-products on the LM step and restores the setting it found', () => {
    for (const before of [false, true]) {
      setCausalProducts(before);
      const r = abSwitch(['causal-products', 'lm', '1']);
      expect(r.off).toBeGreaterThan(0);
      expect(r.on).toBeGreaterThan(0);
      expect(r.ratio).toBeCloseTo(r.on / r.off, 2);
      expect(setCausalProducts(true)).toBe(before);
    }
  });

  it('deferred-jobs: times both settings on the NMT step and restores the setting it found', () => {
    const found = deferredJobs.allowed;
    for (const before of [false, true]) {
      deferredJobs.allowed = before;
      const r = abSwitch(['deferred-jobs', 'nmt', '1']);
      expect(r.off).toBeGreaterThan(0);
      expect(r.on).toBeGreaterThan(0);
      expect(deferredJobs.allowed).toBe(before);
    }
    deferredJobs.allowed = found;
  });
});
