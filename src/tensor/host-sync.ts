/**
 * Kernel work started and not finished. The CPU backend may return from a kernel while its job
 * still runs on a worker (inside resident scopes: backends/cpu/wasm/runtime.ts, "Deferred jobs");
 * such a job writes only blocks of the wasm memory, which JavaScript reaches through
 * `Tensor.storage`. That getter therefore calls `settle(storage)` first whenever `pending` is set,
 * so every reader of values — a TypeScript kernel, `item()`, a user's code — sees them finished.
 */
export const hostSync = {
  /** Whether a job may still be running. */
  pending: false,
  /** Waits for the jobs that write `storage` (the backend that started them installs this). */
  settle: (storage: object): void => void storage,
  /**
   * Called with the host storage of every `Tensor.data` read while a kernel call is collecting
   * what its jobs wait for (the CPU backend sets and clears it around each kernel call); null
   * otherwise.
   */
  reading: null as ((storage: object) => void) | null,
};
