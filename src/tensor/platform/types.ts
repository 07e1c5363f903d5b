/**
 * What the library needs from its host (Node.js or a browser), behind one interface so that the
 * browser build never sees a Node built-in. `node.ts` is the implementation everywhere by
 * default; bundlers building for the browser swap in `browser.ts` (package.json `browser` map).
 */

/** Data handed to a pool worker at start (structured-cloneable; `port` is transferred). */
export interface PoolWorkerInit {
  ctrl: SharedArrayBuffer;
  params: SharedArrayBuffer;
  buf: SharedArrayBuffer;
  gen: number;
  extra: unknown;
  tid: number;
  /** The pool's worker generation when this one started (see pool.ts `EPOCH`). */
  epoch: number;
}

/** A started pool worker, as the pool sees it. */
export interface PoolWorker {
  /** Sends a replacement data buffer (pulled by the worker with `pullMessage`). */
  post(message: { gen: number; buf: SharedArrayBuffer }): void;
  /** The error text a failed worker posted, if any (synchronous). */
  takeError(): string | undefined;
  /** Stops the worker (fire-and-forget). */
  terminate(): void;
}

/** The host services. */
export interface Platform {
  /** `node` or `browser`. */
  readonly name: 'node' | 'browser';
  /** An environment setting (Node: `process.env`; browser: none). */
  env(name: string): string | undefined;
  /** Threads worth using by default (the calling thread included); 1 where blocking waits are not allowed. */
  defaultThreads(): number;
  /**
   * Whether a worker can hand a new buffer over synchronously (`pullMessage` in the worker
   * program); without it the pool restarts its workers when the data buffer grows.
   */
  readonly syncMessages: boolean;
  /**
   * Starts a worker running `body` (the source of a function body that receives `workerData`
   * and `pullMessage()`; see pool.ts) with `init`.
   */
  startWorker(body: string, init: PoolWorkerInit): PoolWorker;
  /**
   * Turns on WebAssembly relaxed SIMD where the host has it behind a switch (Node 20: the V8 flag
   * `--experimental-wasm-relaxed-simd`, on by default from Node 22); absent where it cannot.
   */
  enableRelaxedSimd?(): void;
}
