/**
 * Incremental decoding state (the reference's `incremental_state` dict). Each module stores
 * named records (`ema_state`, `attn_state`) keyed by its own instance; golden adapters name a
 * record `state:<module path>.<record>.<key>` using the root's `namedModules()`.
 */
import { indexSelect } from '../tensor/kernels.js';
import type { Module } from '../nn/module.js';
import type { Tensor } from '../tensor/tensor.js';

/** Tensors (or integers, e.g. `prev_num_steps`) of one record. */
export type StateRecord = Record<string, Tensor | number | null>;

/** Per-module incremental state, carried across decoding calls. */
export class IncrementalState {
  private readonly records = new Map<Module, Map<string, StateRecord>>();

  /** The record `name` of `owner`, if any. */
  get(owner: Module, name: string): StateRecord | undefined {
    return this.records.get(owner)?.get(name);
  }

  /** Replaces the record `name` of `owner`. */
  set(owner: Module, name: string, value: StateRecord): void {
    let m = this.records.get(owner);
    if (!m) this.records.set(owner, (m = new Map()));
    m.set(name, value);
  }

  /** Removes the record `name` of `owner`. */
  delete(owner: Module, name: string): void {
    this.records.get(owner)?.delete(name);
  }

  /** Every (owner, record name, record). */
  entries(): [Module, string, StateRecord][] {
    const out: [Module, string, StateRecord][] = [];
    for (const [owner, m] of this.records) for (const [name, r] of m) out.push([owner, name, r]);
    return out;
  }

  /**
   * Beam-search reordering: index-selects every tensor along axis 0 with the i32 `order`
   * (tensors whose batch size already equals `order.size` are kept only when `skipEqual`).
   */
  reorder(order: Tensor, skipEqual: (owner: Module) => boolean = () => false): void {
    for (const [owner, m] of this.records) {
      for (const r of m.values()) {
        for (const [k, v] of Object.entries(r)) {
          if (v && typeof v !== 'number' && !(skipEqual(owner) && v.shape[0] === order.size)) r[k] = indexSelect(v, 0, order);
        }
      }
    }
  }

  /** Flattened `state:<path>.<record>.<key>` tensors, with module paths taken from `root`. */
  named(root: Module): Record<string, Tensor | number | null> {
    const paths = new Map<Module, string>([[root, ''], ...root.namedModules().map(([p, m]) => [m, `${p}.`] as [Module, string])]);
    const out: Record<string, Tensor | number | null> = {};
    for (const [owner, name, r] of this.entries()) {
      const p = paths.get(owner);
      if (p === undefined) continue;
      for (const [k, v] of Object.entries(r)) out[`state:${p}${name}.${k}`] = v;
    }
    return out;
  }
}
