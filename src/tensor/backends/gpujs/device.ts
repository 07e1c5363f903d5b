/**
 * The gpu.js device as the main thread sees it: a worker thread that owns gpu.js (see
 * worker.ts), device buffers named by integer ids, and a synchronous facade over it.
 *
 * - Launches, uploads and frees are posted in order and never wait; only `read` (values asked
 *   for on the host), `init` and `stats` block, in `Atomics.wait`, until the worker answers.
 * - `GpuData` is the `DeviceData` of a device tensor: `read()` reads back once and caches.
 * - Memory is released deterministically with `dispose(x)` and `tidy(fn)` (TF.js's habit: every
 *   device buffer made inside `fn` is freed when it returns, except those reachable from its
 *   result or marked with `keep`); a FinalizationRegistry frees buffers of tensors that were
 *   garbage-collected without either, as a safety net only.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { receiveMessageOnPort, MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { allocate, type DType, type Storage } from '../../dtype.js';
import { TensorError } from '../../errors.js';
import { DeviceData, Tensor } from '../../tensor.js';
import { pciGpus, vendorOf, visibilityEnv } from './gpus.js';
import { workerMain } from './worker.js';

/** The gpu.js mode to use: WebGPU (Dawn), headless-gl (needs an X display), or the first that works. */
export type GpuMode = 'webgpu' | 'headlessgl' | 'auto';

/** Options of {@link GpuDevice.open}. */
export interface GpuOptions {
  mode?: GpuMode;
  /** Index into Dawn's adapter list (multi-GPU hosts); default: adapter `rank` (mod the count), else Dawn's first. */
  adapterIndex?: number | null;
  /** The process's local rank (data-parallel training): local rank r takes adapter r. */
  rank?: number | null;
  /** Extra Dawn flags (`key=value`, e.g. `backend=vulkan`). */
  dawnFlags?: string[];
  /** How long to wait for the device to start, ms (default 120 000). */
  timeoutMs?: number;
}

/** What the worker reported at start-up. */
export interface GpuInfo {
  /** The gpu.js mode in use: `webgpu` or `headlessgl`. */
  mode: string;
  /** `kernel.kernel.constructor.name` of a probe kernel: the backend class really running. */
  kernelClass: string;
  adapter: { vendor?: string; architecture?: string; device?: string; description?: string };
  /** Every adapter Dawn can see (backend, name), in its order. */
  adapters: { backend: string; name: string }[];
  limits: Record<string, number>;
  /** Why other modes were not taken. */
  notes: string[];
}

/** Counters of one device (since start or the last `resetCounters`). */
export interface GpuCounters {
  /** Kernel launches (gpu.js kernels and WGSL shaders). */
  launches: number;
  /** Of which WGSL shaders. */
  wgsl: number;
  uploads: number;
  uploadBytes: number;
  readbacks: number;
  readbackBytes: number;
  /** Of the read-backs, those started without waiting (`GpuData.prefetch`). */
  asyncReads: number;
}

/** Raised when the GPU backend cannot start or a device operation fails. */
export class GpuError extends TensorError {}

/** A device buffer holding one tensor's elements (as f32 on the device). */
export class GpuData extends DeviceData {
  private host: Storage | null = null;
  disposed = false;
  constructor(
    readonly dev: GpuDevice,
    readonly id: number,
    readonly dtype: DType,
    readonly length: number,
  ) {
    super();
  }

  private pending: number | null = null;

  /** Starts the read-back without waiting: the device thread copies while the caller goes on. */
  override prefetch(): void {
    if (this.host || this.disposed || this.pending !== null) return;
    this.pending = this.dev.readAsync(this.id, this.length);
  }

  read(): Storage {
    if (this.host) return this.host;
    if (this.pending === null && this.disposed) throw new GpuError(`a gpujs tensor (buffer ${this.id}) was read after it was disposed`);
    const f = this.pending !== null ? this.dev.collect(this.pending) : this.dev.read(this.id, this.length);
    this.pending = null;
    let out: Storage;
    if (this.dtype === 'f32') out = f;
    else {
      out = allocate(this.dtype, this.length);
      for (let i = 0; i < f.length; i++) out[i] = f[i];
    }
    return (this.host = out);
  }

  /** Whether the values were already read back (then the host copy survives `dispose`). */
  get hostCopy(): Storage | null {
    return this.host;
  }

  /** Frees the device buffer (idempotent). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.dev.free(this.id);
  }
}

const require_ = createRequire(import.meta.url);

/** The one gpu.js device of this process. */
export class GpuDevice {
  private static current: GpuDevice | null = null;
  private readonly ctrl: Int32Array;
  private readonly port: MessagePort;
  private nextId = 1;
  private nextTag = 1;
  /** Answers of asynchronous reads, by tag. */
  private readonly arrived = new Map<number, Record<string, unknown>>();
  private pendingFree: number[] = [];
  private readonly defined = new Set<string>();
  /** Bytes of live buffers, as the main thread counts them. */
  liveBytes = 0;
  liveBuffers = 0;
  readonly counters: GpuCounters = { launches: 0, wgsl: 0, uploads: 0, uploadBytes: 0, readbacks: 0, readbackBytes: 0, asyncReads: 0 };
  private readonly registry = new FinalizationRegistry<{ id: number; bytes: number }>(({ id, bytes }) => {
    // safety net: a tensor was garbage-collected without dispose / tidy
    this.free(id);
    this.liveBytes -= bytes;
    this.liveBuffers--;
  });

  private constructor(
    private readonly worker: Worker,
    ctrlBuf: SharedArrayBuffer,
    port: MessagePort,
    readonly info: GpuInfo,
  ) {
    this.ctrl = new Int32Array(ctrlBuf);
    this.port = port;
  }

  /** The device started by `open`, or null. */
  static get(): GpuDevice | null {
    return GpuDevice.current;
  }

  /** Starts the device thread (once per process) and waits for gpu.js to find a device. */
  static open(opts: GpuOptions = {}): GpuDevice {
    if (GpuDevice.current) return GpuDevice.current;
    const ctrlBuf = new SharedArrayBuffer(4 * 4);
    const ctrl = new Int32Array(ctrlBuf);
    const { port1, port2 } = new MessageChannel();
    let gpujsPath: string, webgpuUrl: string;
    try {
      gpujsPath = require_.resolve('gpu.js');
      webgpuUrl = pathToFileURL(require_.resolve('webgpu')).href;
    } catch (e) {
      throw new GpuError(`the gpujs backend needs the npm packages gpu.js and webgpu: ${(e as Error).message}`);
    }
    const worker = new Worker(`globalThis.__megaImport = (u) => import(u);\n(${workerMain.toString()})()`, {
      eval: true,
      workerData: { ctrl: ctrlBuf, replyPort: port2, profile: process.env.MEGA_GPUJS_PROFILE === '1' },
      transferList: [port2],
      stdout: false,
      stderr: false,
    });
    worker.unref();
    const seq = Atomics.load(ctrl, 0);
    const init = {
      t: 'init',
      gpujsPath,
      webgpuUrl,
      mode: opts.mode ?? 'auto',
      adapterIndex: opts.adapterIndex ?? null,
      rank: opts.rank ?? null,
      flags: opts.dawnFlags ?? [],
    };
    worker.postMessage(init);
    let r = waitReply(ctrl, port1, seq, opts.timeoutMs ?? 120_000) as unknown as GpuInfo & {
      error?: string;
      identical?: { index: number; k: number; name: string };
    };
    if (r.identical) {
      // identical cards: expose only the k-th card of that name (by PCI bus) and start again
      const { index, k, name } = r.identical;
      const cards = pciGpus(vendorOf(name));
      const chosen = cards[k];
      if (!chosen || cards.length < r.adapters.filter((a) => a.name === name).length) {
        void worker.terminate();
        port1.close();
        throw new GpuError(
          `no GPU for the gpujs backend: adapter ${index} ('${name}') has the name of an earlier adapter and no PCI bus address to tell it apart ` +
            `(${cards.length} PCI display device(s) of its vendor); expose only that GPU to the process (e.g. NVIDIA_VISIBLE_DEVICES=${index} in a container)`,
        );
      }
      Object.assign(process.env, visibilityEnv(chosen.address));
      const seq2 = Atomics.load(ctrl, 0);
      worker.postMessage({ ...init, adapterIndex: null, rank: null });
      r = waitReply(ctrl, port1, seq2, opts.timeoutMs ?? 120_000) as unknown as typeof r;
      r.notes = [
        ...(r.notes ?? []),
        `adapter ${index} ('${name}') is the card at PCI ${chosen.address}, the only one exposed ` +
          `(DRI_PRIME=${process.env.DRI_PRIME}, MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE=1)`,
      ];
    }
    if (r.error) {
      void worker.terminate();
      port1.close();
      throw new GpuError(`no GPU for the gpujs backend: ${r.error}`);
    }
    GpuDevice.current = new GpuDevice(worker, ctrlBuf, port1, r);
    return GpuDevice.current;
  }

  /** Stops the device thread (frees everything); a later `open` starts a fresh one. */
  static close(): void {
    const d = GpuDevice.current;
    if (!d) return;
    GpuDevice.current = null;
    void d.worker.terminate();
    d.port.close();
  }

  private post(msg: unknown, transfer?: ArrayBuffer[]): void {
    if (this.pendingFree.length) {
      const ids = this.pendingFree;
      this.pendingFree = [];
      this.worker.postMessage({ t: 'free', ids });
    }
    this.worker.postMessage(msg, transfer);
  }

  private request(msg: unknown): Record<string, unknown> {
    this.post(msg);
    for (;;) {
      // the counter is read before the port is drained: an answer posted after the drain has
      // changed it, so the wait cannot miss it (reading it after the drain could: the answer
      // would sit in the port with no further signal to come)
      const seq = Atomics.load(this.ctrl, 0);
      const r = this.drain(true);
      if (r) return r;
      waitSignal(this.ctrl, seq, 600_000);
    }
  }

  private newData(dtype: DType, n: number, bytes: number, scoped = true): GpuData {
    const id = this.nextId++;
    const d = new GpuData(this, id, dtype, n);
    this.liveBytes += bytes;
    this.liveBuffers++;
    this.registry.register(d, { id, bytes }, d);
    if (scoped) track(d);
    return d;
  }

  /**
   * Copies host values to a new device buffer (counted in `counters.uploads`). `scoped: false`
   * keeps it out of the enclosing `tidy` scopes (caches, parameters moved to the device).
   */
  upload(data: Float32Array, dtype: DType, scoped = true): GpuData {
    const d = this.newData(dtype, data.length, data.length * 4, scoped);
    this.counters.uploads++;
    this.counters.uploadBytes += data.byteLength;
    if (debug) logTransfer('upload', data.length);
    this.post(
      { t: 'up', id: d.id, data },
      data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && !(data.buffer instanceof SharedArrayBuffer)
        ? [data.buffer as ArrayBuffer]
        : undefined,
    );
    return d;
  }

  /**
   * Launches gpu.js kernel `key` (source `src`, argument types `types`, defined on first use)
   * over `output` (gpu.js order: [x, y, z]); returns the new output buffer.
   */
  run(key: string, src: () => string, types: Record<string, string>, output: number[], args: (number | GpuData)[], dtype: DType): GpuData {
    const n = output.reduce((a, b) => a * b, 1);
    const d = this.newData(dtype, n, n * 4);
    const msg: Record<string, unknown> = { t: 'run', key, out: d.id, n, output, args: args.map((a) => (typeof a === 'number' ? a : { b: a.id })) };
    if (!this.defined.has(key)) {
      this.defined.add(key);
      msg.src = src();
      msg.types = types;
    }
    this.counters.launches++;
    this.post(msg);
    return d;
  }

  /**
   * Runs WGSL compute shader `key` (source `src`, compiled on first use; webgpu mode only) with
   * storage buffers `inputs`, a new output buffer of `output` (gpu.js order [x, y, z]) elements
   * and the i32 uniform `params`, over `groups` workgroups; returns the output buffer.
   */
  runWgsl(key: string, src: () => string, groups: number[], inputs: GpuData[], params: number[], output: number[], dtype: DType): GpuData {
    const n = output.reduce((a, b) => a * b, 1);
    const d = this.newData(dtype, n, n * 4);
    const msg: Record<string, unknown> = { t: 'wgsl', key, out: d.id, n, output, groups, inputs: inputs.map((b) => b.id), params };
    if (!this.defined.has(`wgsl:${key}`)) {
      this.defined.add(`wgsl:${key}`);
      msg.src = src();
    }
    this.counters.launches++;
    this.counters.wgsl++;
    this.post(msg);
    return d;
  }

  /**
   * Starts reading a buffer back without waiting (counted as a read-back and in `asyncReads`);
   * returns the tag that {@link collect} waits for. The device thread copies the buffer after the
   * work queued before and goes on with later work while the copy completes.
   */
  readAsync(id: number, n: number): number {
    const tag = this.nextTag++;
    this.counters.readbacks++;
    this.counters.readbackBytes += n * 4;
    this.counters.asyncReads++;
    if (debug) logTransfer('read-back (async)', n);
    this.post({ t: 'read', id, n, tag });
    return tag;
  }

  /** The values of an asynchronous read-back (waits for it if it has not arrived yet). */
  collect(tag: number): Float32Array {
    for (;;) {
      const seq = Atomics.load(this.ctrl, 0); // before the drain (see request)
      this.drain(false);
      if (this.arrived.has(tag)) break;
      waitSignal(this.ctrl, seq, 600_000);
    }
    const r = this.arrived.get(tag)!;
    this.arrived.delete(tag);
    if (!r.data) throw new GpuError(`gpujs read-back failed: ${String(r.error)}`);
    return r.data as Float32Array;
  }

  /**
   * Takes the device thread's answers that have arrived (without waiting); answers of asynchronous
   * reads are kept for `collect`; returns the first other answer, or null (when `untagged` is
   * false, or none came).
   */
  private drain(untagged: boolean): Record<string, unknown> | null {
    let out: Record<string, unknown> | null = null;
    for (let m = receiveMessageOnPort(this.port); m; m = receiveMessageOnPort(this.port)) {
      const msg = m.message as Record<string, unknown>;
      if (typeof msg.tag === 'number') this.arrived.set(msg.tag, msg);
      else if (untagged && !out) out = msg;
      else throw new GpuError('the gpujs device thread sent an answer nobody waits for');
    }
    return out;
  }

  /** Reads a buffer back (blocks until the device has finished everything before it). */
  read(id: number, n: number): Float32Array {
    const r = this.request({ t: 'read', id, n });
    if (!r.data) throw new GpuError(`gpujs read-back failed: ${String(r.error)}`);
    if (r.error) throw new GpuError(`gpujs device error: ${String(r.error)}`);
    this.counters.readbacks++;
    this.counters.readbackBytes += n * 4;
    if (debug) logTransfer('read-back', n);
    return r.data as Float32Array;
  }

  /** Frees a buffer (batched into the next message). */
  free(id: number): void {
    this.pendingFree.push(id);
  }

  /** Bookkeeping for a freed GpuData. */
  released(d: GpuData): void {
    this.registry.unregister(d);
    this.liveBytes -= d.length * 4;
    this.liveBuffers--;
  }

  /** Live buffers and bytes as the worker counts them (waits for all pending work). */
  stats(): {
    buffers: number;
    liveBytes: number;
    peakBytes: number;
    launches: number;
    kernels: number;
    kernelClass: string;
    error: string | null;
    profile: Record<string, [number, number]> | null;
  } {
    const r = this.request({ t: 'stats' }) as ReturnType<GpuDevice['stats']>;
    return r;
  }

  resetCounters(): void {
    for (const k of Object.keys(this.counters) as (keyof GpuCounters)[]) this.counters[k] = 0;
  }
}

const debug = /gpujs/.test(process.env.MEGA_DEBUG ?? '');
const debugAll = /gpujs:all/.test(process.env.MEGA_DEBUG ?? '');
const loggedSites = new Set<string>();

/**
 * MEGA_DEBUG=gpujs: logs the first transfer of each kind from each call site (the first stack
 * frames outside the gpujs backend and the kernel wrappers), so unexpected transfers can be found;
 * MEGA_DEBUG=gpujs:all logs every transfer.
 */
function logTransfer(kind: string, n: number): void {
  const frames = (new Error().stack ?? '')
    .split('\n')
    .slice(2)
    .map((l) => l.trim()); // past Error and logTransfer
  const own = frames.filter((f) => !/backends[\\/]gpujs|tensor[\\/](kernels|tensor)\.|node:internal|node_modules[\\/][^.]|<anonymous>/.test(f));
  const site = own.slice(0, 2).join(' < ') || frames[0] || '?';
  const key = `${kind} ${site}`;
  if (!debugAll && loggedSites.has(key)) return;
  loggedSites.add(key);
  process.stderr.write(`[gpujs] ${kind} of ${n} values ${site}\n`);
}

/** Waits until the device thread has signalled an answer after `seq`. */
function waitSignal(ctrl: Int32Array, seq: number, timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  while (Atomics.load(ctrl, 0) === seq) {
    const left = deadline - Date.now();
    if (left <= 0) throw new GpuError(`the gpujs device thread did not answer within ${timeoutMs} ms`);
    Atomics.wait(ctrl, 0, seq, Math.min(left, 1000));
  }
}

function waitReply(ctrl: Int32Array, port: MessagePort, seq: number, timeoutMs: number): Record<string, unknown> {
  waitSignal(ctrl, seq, timeoutMs);
  const m = receiveMessageOnPort(port);
  if (!m) throw new GpuError('the gpujs device thread signalled but sent no answer');
  return m.message as Record<string, unknown>;
}

// ---- scopes: deterministic release ------------------------------------------------------------

const scopes: Set<GpuData>[] = [];
const kept = new WeakSet<GpuData>();

function track(d: GpuData): void {
  if (scopes.length) scopes[scopes.length - 1].add(d);
}

/** Frees the device buffers of tensors (or arrays / objects of tensors). Idempotent. */
export function dispose(x: unknown): void {
  for (const d of collect(x)) release(d);
}

/** Frees one device buffer now (idempotent). */
export function releaseData(d: GpuData): void {
  release(d);
}

function release(d: GpuData): void {
  if (d.disposed) return;
  d.dispose();
  d.dev.released(d);
}

/**
 * Moves host tensors (parameters: contiguous, offset 0) to the device for good: each is uploaded
 * once (outside any `tidy` scope) and rebound to its device buffer, so kernels read it without a
 * transfer and optimizers update it on the device (`Adam` uses the `adamUpdate` kernel). Reading
 * `storage` still works (a counted read-back). Tensors already on the device are left alone.
 */
export function moveToDevice(tensors: Iterable<Tensor>): void {
  const d = GpuDevice.get();
  if (!d) throw new GpuError("moveToDevice: the gpujs backend is not started (select it with setBackend('gpujs') / selectBackend)");
  for (const t of new Set(tensors)) {
    if (t.device) continue;
    if (t.dtype === 'f64') throw new GpuError(`moveToDevice: a tensor of shape [${t.shape}] is f64; the gpujs backend keeps f32 only`);
    const f = Float32Array.from(t.toTypedArray() as ArrayLike<number>);
    t.rebind(d.upload(f, t.dtype, false));
  }
}

/** Keeps `t`'s buffer alive past the enclosing `tidy` scopes (until `dispose`). */
export function keep<T extends Tensor>(t: T): T {
  if (t.device instanceof GpuData) {
    kept.add(t.device);
    for (const s of scopes) s.delete(t.device);
  }
  return t;
}

/**
 * Runs `fn` and frees every device buffer created inside it, except those reachable from its
 * result (tensors, and arrays / plain objects / Maps of them, including their `.grad`) or marked
 * with `keep`. Those move to the enclosing scope. Nests.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<GpuData>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  const survive = collect(result!);
  const parent = scopes[scopes.length - 1];
  for (const d of scope) {
    if (survive.has(d) || kept.has(d)) parent?.add(d);
    else release(d);
  }
  return result!;
}

/** The GpuData reachable from a value. */
function collect(x: unknown, out = new Set<GpuData>(), seen = new Set<unknown>()): Set<GpuData> {
  if (x === null || typeof x !== 'object' || seen.has(x)) return out;
  seen.add(x);
  if (x instanceof Tensor) {
    if (x.device instanceof GpuData) out.add(x.device);
    if (x.grad) collect(x.grad, out, seen);
    return out;
  }
  if (Array.isArray(x)) for (const v of x) collect(v, out, seen);
  else if (x instanceof Map) for (const v of x.values()) collect(v, out, seen);
  else if (Object.getPrototypeOf(x) === Object.prototype) for (const v of Object.values(x)) collect(v, out, seen);
  return out;
}
