// The page's compute worker: mega-ts runs here, off the page's main thread. Inside a worker of a
// cross-origin isolated page, mega-ts's CPU kernels may block (Atomics.wait), so they use a pool of
// Web Workers over SharedArrayBuffer; elsewhere they run single-threaded. Bundled by
// scripts/build-browser.mjs (the package's `browser` map picks the browser platform modules).
import { classify, generate, getNumThreads, loadModel, simdStatus, threadStats } from '../../dist/src/index.js';
import { matmul } from '../../dist/src/tensor/kernels.js';
import { setSimd } from '../../dist/src/tensor/backends/cpu/wasm/runtime.js';
import { fromStorage } from '../../dist/src/tensor/tensor.js';

const models = new Map();

/** A deterministic n × n matrix (the same on both sides of a comparison). */
function matrix(n, seed) {
  const a = new Float32Array(n * n);
  let s = seed >>> 0;
  for (let i = 0; i < a.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return fromStorage(a, [n, n]);
}

/** FNV-1a hash of bytes (hex), to compare large results without moving them. */
function fnv1a(bytes) {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 16777619) >>> 0;
  return h.toString(16);
}

const ops = {
  async info() {
    return { threads: getNumThreads(), crossOriginIsolated: self.crossOriginIsolated === true, simd: simdStatus() };
  },
  async load({ url }) {
    const m = await loadModel(url);
    models.set(url, m);
    return { kind: m.kind, arch: m.config.arch, task: m.config.task, parameters: m.numParameters };
  },
  async classify({ url, text }) {
    const r = classify(models.get(url), text);
    return { label: r.label, logits: r.logits, scores: r.scores };
  },
  async generate({ url, text, options }, post) {
    const tokens = [];
    for await (const t of generate(models.get(url), text, options)) {
      tokens.push(t);
      post({ token: t });
    }
    return { ids: tokens.map((t) => t.id), text: tokens.map((t) => t.text).join(''), logprobs: tokens.map((t) => t.logprob) };
  },
  async matmul({ n, simd = true }) {
    // simd false: the plain-TS kernels, whose pool grows its shared buffer (the browser restarts its workers then)
    setSimd(simd);
    try {
      const run = (k) => matmul(matrix(k, 1), matrix(k, 2));
      const sleep = () => new Promise((r) => setTimeout(r, 20));
      run(n >> 1); // starts the pool; its workers start while this worker yields
      for (let i = 0; i < 100 && threadStats().workersReady < getNumThreads() - 1; i++) await sleep();
      // larger operands, then repeat until the workers have taken part
      const before = threadStats().workerTasks;
      let c = run(n);
      for (let i = 0; i < 100 && getNumThreads() > 1 && threadStats().workerTasks === before; i++) {
        await sleep();
        c = run(n);
      }
      const v = c.toTypedArray();
      return {
        hash: fnv1a(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)),
        head: Array.from(v.subarray(0, 8)),
        stats: threadStats(),
        workerTasks: threadStats().workerTasks - before,
      };
    } finally {
      setSimd(true);
    }
  },
};

self.onmessage = async (e) => {
  const { id, op, args } = e.data;
  try {
    const result = await ops[op](args ?? {}, (partial) => self.postMessage({ id, partial }));
    self.postMessage({ id, result });
  } catch (err) {
    self.postMessage({ id, error: String(err && err.message ? err.message : err) });
  }
};
