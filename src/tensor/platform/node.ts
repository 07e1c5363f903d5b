/**
 * The Node.js host (see types.ts): worker_threads workers from source strings, the `os` thread
 * count, `process.env`, V8's switch for WebAssembly relaxed SIMD. Bundlers building for the browser replace this file by
 * `browser.ts` (package.json `browser` map).
 */
import os from 'node:os';
import v8 from 'node:v8';
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type { Platform, PoolWorker, PoolWorkerInit } from './types.js';

function startWorker(body: string, init: PoolWorkerInit): PoolWorker {
  const { port1, port2 } = new MessageChannel();
  const src = `"use strict";
const { workerData, receiveMessageOnPort } = require('node:worker_threads');
const pullMessage = () => { const m = receiveMessageOnPort(workerData.port); return m === undefined ? undefined : m.message; };
const reportError = (text) => workerData.port.postMessage(text);
${body}`;
  const w = new Worker(src, { eval: true, workerData: { ...init, port: port2 }, transferList: [port2] });
  w.unref();
  port1.unref();
  // A worker that dies outside a task (it should not) must not crash the process.
  w.on('error', () => undefined);
  return {
    post: (m) => port1.postMessage(m),
    takeError: () => {
      const m = receiveMessageOnPort(port1);
      return m === undefined ? undefined : String(m.message);
    },
    terminate: () => {
      void w.terminate().catch(() => undefined);
      port1.close();
    },
  };
}

/** The Node.js platform. */
export const platform: Platform = {
  name: 'node',
  env: (name) => process.env[name],
  defaultThreads: () => Math.max(1, os.availableParallelism?.() ?? os.cpus().length),
  syncMessages: true,
  startWorker,
  // process-wide; read by V8 when it compiles a module, so it applies to modules compiled later
  enableRelaxedSimd: () => v8.setFlagsFromString('--experimental-wasm-relaxed-simd'),
};
