/**
 * How each reference module of a golden case is built and run. Adapters are registered by the
 * reference class name (`MultiHeadEMA`, `LRAModel`, ...) and know nothing about tolerances.
 */
import type { GoldenCase } from '../io/golden.js';
import type { Module } from '../nn/module.js';
import type { FloatDType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';

/** Named tensors (null/absent = not produced). */
export type Named = Record<string, Tensor | null | undefined>;

/** Builds and runs one reference module family. */
export interface Adapter {
  /** The module, from `c.config` / `c.options` / `c.task`, parameters in `dtype`. */
  build(c: GoldenCase, dtype: FloatDType): Module;
  /**
   * One full forward on `inputs` (floating inputs are leaves in `dtype`); returns the outputs
   * under the golden names (`out`, `attn_weights`, `logits`, `loss`, ...).
   */
  forward(m: Module, inputs: Record<string, Tensor>, c: GoldenCase): Named;
  /**
   * The `incremental` procedure: feeds `steps[i]` (with the top-level `inputs` for what a step
   * lacks) in order through the module's incremental state; returns per step the outputs and
   * the state as `state:<path>.<key>` entries.
   */
  incremental?(m: Module, inputs: Record<string, Tensor>, steps: Record<string, Tensor>[], c: GoldenCase): Named[];
}

const adapters = new Map<string, Adapter>();

/** Registers the adapter of reference class `name`. */
export function registerAdapter(name: string, a: Adapter): void {
  adapters.set(name, a);
}

/** The adapter of reference class `name`, if any. */
export function getAdapter(name: string): Adapter | undefined {
  return adapters.get(name);
}
