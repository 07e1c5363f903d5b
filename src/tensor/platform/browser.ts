/**
 * The browser host (see types.ts). Pool workers are Web Workers made from a Blob of their source;
 * they exist only where blocking waits and shared memory are allowed: inside a worker of a
 * cross-origin isolated page (`crossOriginIsolated`, SharedArrayBuffer). On a page's main thread,
 * or without isolation, the kernels run single-threaded.
 */
import type { Platform, PoolWorker, PoolWorkerInit } from './types.js';

/** True inside a dedicated worker of a cross-origin isolated page. */
function canBlock(): boolean {
  const g = globalThis as { crossOriginIsolated?: boolean; WorkerGlobalScope?: unknown; SharedArrayBuffer?: unknown };
  return g.crossOriginIsolated === true && g.WorkerGlobalScope !== undefined && typeof g.SharedArrayBuffer === 'function';
}

function startWorker(body: string, init: PoolWorkerInit): PoolWorker {
  // The worker waits for its start data, then runs the pool loop (it blocks in Atomics.wait).
  const src = `"use strict";
let pullMessage = () => undefined;
let errorText;
const reportError = (text) => { errorText = text; self.postMessage(text); };
self.onmessage = (e) => { self.onmessage = null; const workerData = e.data; run(workerData); };
function run(workerData) {
${body}
}`;
  const url = URL.createObjectURL(new Blob([src], { type: 'text/javascript' }));
  const w = new Worker(url);
  URL.revokeObjectURL(url);
  let error: string | undefined;
  w.onmessage = (e: MessageEvent) => {
    error = String(e.data);
  };
  w.postMessage(init);
  return {
    post: () => {
      throw new Error('browser pool workers take no messages (the pool restarts them instead)');
    },
    takeError: () => error,
    terminate: () => w.terminate(),
  };
}

/** The browser platform. */
export const platform: Platform = {
  name: 'browser',
  env: () => undefined,
  defaultThreads: () => (canBlock() ? Math.max(1, (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1) : 1),
  syncMessages: false,
  startWorker,
};
