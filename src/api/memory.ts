/**
 * Memory release on every backend. GPU tensors hold device buffers that must be freed
 * explicitly; CPU tensors are ordinary garbage-collected arrays. `tidy`, `dispose` and `keep`
 * work on both, so code written for the GPU runs unchanged on the CPU: on the CPU `tidy` just
 * runs its function and `dispose` / `keep` have nothing to free.
 */
import { getBackend } from '../tensor/backend.js';
import type { Tensor } from '../tensor/tensor.js';

/** How a backend frees tensors (the gpujs backend registers its own when it is loaded). */
export interface MemoryManager {
  tidy<T>(fn: () => T): T;
  dispose(x: unknown): void;
  keep<T>(t: T): T;
  /** Makes tensors resident on the device (a model's weights at load time); absent on the CPU. */
  moveToDevice?(tensors: Iterable<Tensor>): void;
}

const CPU: MemoryManager = { tidy: (fn) => fn(), dispose: () => undefined, keep: (t) => t };
const managers = new Map<string, MemoryManager>([['cpu', CPU]]);

/** Registers the memory manager of `backend` (done by the lazy backend loader). */
export function registerMemoryManager(backend: string, m: MemoryManager): void {
  managers.set(backend, m);
}

function active(): MemoryManager {
  return managers.get(getBackend()) ?? CPU;
}

/**
 * Runs `fn` and frees every tensor created inside it that its result does not hold (GPU), or just
 * runs it (CPU). Nests.
 */
export function tidy<T>(fn: () => T): T {
  return active().tidy(fn);
}

/** Frees the device buffers of the tensors in `x` (a tensor, or arrays / objects / Maps of them) now. */
export function dispose(x: unknown): void {
  for (const m of new Set(managers.values())) m.dispose(x);
}

/** Keeps `t` alive past the enclosing `tidy` scopes (until `dispose`). */
export function keep<T>(t: T): T {
  return active().keep(t);
}

/** Moves a model's weights onto the active backend's device once (nothing to do on the CPU). */
export function placeOnDevice(tensors: Iterable<Tensor>): void {
  active().moveToDevice?.(tensors);
}
