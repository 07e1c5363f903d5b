/**
 * The `tcp` process group, main-thread side. A worker thread (`tcp-thread.ts`) owns the sockets;
 * the main thread posts requests to it and blocks in `Atomics.wait` on a shared control block until
 * they are done, so every collective is an ordinary synchronous call. Arrays over a
 * SharedArrayBuffer (from {@link TcpGroup.alloc}) are reduced in place by the thread; others are
 * staged through a shared buffer.
 *
 * Failures the thread detects (a lost or silent rank, a timeout, a collective mismatch) surface as
 * a {@link DistError} from the next (or the current) collective.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { DistConfigError, DistError } from './errors.js';
import { commDType, typedArray, type CommArray, type CommDType, type ProcessGroup, type Work } from './group.js';
import {
  C_ACK,
  C_ALIVE,
  C_DONE,
  C_STATE,
  CTRL_INTS,
  S_CLOSED,
  S_FAILED,
  S_INIT,
  type ReduceOp,
  type ThreadInit,
  type ThreadOp,
  type ThreadReply,
} from './tcp-protocol.js';

/** Options of {@link TcpGroup}. */
export interface TcpGroupOptions {
  rank: number;
  worldSize: number;
  /** Host of rank 0. */
  masterAddr: string;
  /** Port rank 0 listens on for the rendezvous. */
  port: number;
  /** Rendezvous limit, silence limit of a peer and progress limit of a collective (ms). */
  timeoutMs: number;
  /** Must be equal on every rank (checked at the rendezvous). */
  fingerprint?: string;
  /** Kill the process when a failure is not noticed by the main thread within the timeout (default true). */
  watchdog?: boolean;
}

/**
 * How the worker thread is started: the compiled file, or (under vitest, from the TypeScript
 * sources) the thread's modules bundled into one `data:` module — a `data:` module cannot import
 * its siblings, only Node built-ins.
 */
function threadEntry(): URL {
  const js = new URL('./tcp-thread.js', import.meta.url);
  if (existsSync(fileURLToPath(js))) return js;
  const ts = new URL('./tcp-thread.ts', import.meta.url);
  if (existsSync(fileURLToPath(ts))) {
    const require = createRequire(import.meta.url);
    const esbuild = require('esbuild') as { buildSync(o: Record<string, unknown>): { outputFiles: { text: string }[] } };
    const { outputFiles } = esbuild.buildSync({
      entryPoints: [fileURLToPath(ts)],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      logLevel: 'silent',
    });
    return new URL(`data:text/javascript,${encodeURIComponent(outputFiles[0].text)}`);
  }
  throw new DistConfigError(`tcp process group: ${fileURLToPath(js)} is missing (run npm run build)`);
}

/** A tcp process group (see the file comment). */
export class TcpGroup implements ProcessGroup {
  readonly backend = 'tcp' as const;
  readonly rank: number;
  readonly worldSize: number;
  private readonly worker: Worker;
  private readonly ctrl: Int32Array;
  private readonly reply: MessagePort;
  private readonly timeoutMs: number;
  private nextId = 0;
  private failure: DistError | null = null;
  private closed = false;
  private staging: SharedArrayBuffer = new SharedArrayBuffer(1 << 16);

  /**
   * Joins the group: blocks until every rank has joined (or throws).
   * @throws DistError when the rendezvous fails or times out; DistConfigError for bad options
   */
  constructor(opts: TcpGroupOptions) {
    const { rank, worldSize } = opts;
    if (!(Number.isInteger(worldSize) && worldSize >= 2)) throw new DistConfigError(`tcp group: world size ${worldSize} (expected >= 2)`);
    if (!(Number.isInteger(rank) && rank >= 0 && rank < worldSize)) throw new DistConfigError(`tcp group: rank ${rank} not in [0, ${worldSize})`);
    if (!opts.masterAddr) throw new DistConfigError('tcp group: no master address (set MASTER_ADDR to the host of rank 0)');
    if (!(opts.timeoutMs > 0)) throw new DistConfigError(`tcp group: timeout ${opts.timeoutMs} ms (expected > 0)`);
    this.rank = rank;
    this.worldSize = worldSize;
    this.timeoutMs = opts.timeoutMs;
    const ctrlBuf = new SharedArrayBuffer(CTRL_INTS * 4);
    this.ctrl = new Int32Array(ctrlBuf);
    const { port1, port2 } = new MessageChannel();
    this.reply = port1;
    const init: ThreadInit = {
      megaTcpThread: true,
      rank,
      worldSize,
      masterAddr: opts.masterAddr,
      port: opts.port,
      timeoutMs: opts.timeoutMs,
      heartbeatMs: Math.max(20, Math.min(1000, Math.floor(opts.timeoutMs / 10))),
      fingerprint: opts.fingerprint ?? 'tcp/1',
      ctrl: ctrlBuf,
      reply: port2,
      watchdog: opts.watchdog ?? true,
    };
    this.worker = new Worker(threadEntry(), { workerData: init, transferList: [port2] });
    this.worker.unref();
    this.reply.unref();
    this.worker.on('error', () => undefined);
    this.waitFor(() => Atomics.load(this.ctrl, C_STATE) !== S_INIT, C_STATE, S_INIT, 'rendezvous');
    if (Atomics.load(this.ctrl, C_STATE) === S_FAILED) throw this.fail();
  }

  /** The thread's error (first call reads it from the reply port). */
  private fail(): DistError {
    if (this.failure) return this.failure;
    Atomics.store(this.ctrl, C_ACK, 1);
    let msg: ThreadReply | undefined;
    for (let tries = 0; tries < 200 && !msg; tries++) {
      for (let m = receiveMessageOnPort(this.reply); m; m = receiveMessageOnPort(this.reply)) {
        const r = m.message as ThreadReply;
        if (r.type === 'error') {
          msg = r;
          break;
        }
      }
      if (!msg) Atomics.wait(this.ctrl, C_ALIVE, Atomics.load(this.ctrl, C_ALIVE), 5);
    }
    const e = msg?.type === 'error' ? msg : { message: 'the process group failed', lost: null };
    this.failure = new DistError(`rank ${this.rank}: ${e.message}`, e.lost);
    return this.failure;
  }

  /**
   * Block until `done()`; waits on `slot` (expected `value`) with periodic checks that the thread
   * is alive and the group has not failed.
   */
  private waitFor(done: () => boolean, slot: number, value: number | (() => number), what: string): void {
    const liveLimit = 5000 + 4 * Math.max(250, Math.min(1000, this.timeoutMs / 10));
    let alive = Atomics.load(this.ctrl, C_ALIVE),
      aliveAt = Date.now();
    for (;;) {
      const v = typeof value === 'function' ? value() : value; // read before the check: no lost wake-up
      if (done()) return;
      const st = Atomics.load(this.ctrl, C_STATE);
      if (st === S_FAILED) throw this.fail();
      if (st === S_CLOSED) throw new DistError(`rank ${this.rank}: ${what} after the process group was closed`);
      Atomics.wait(this.ctrl, slot, v, 200);
      const a = Atomics.load(this.ctrl, C_ALIVE);
      if (a !== alive) {
        alive = a;
        aliveAt = Date.now();
      } else if (Date.now() - aliveAt > liveLimit && Atomics.load(this.ctrl, C_STATE) !== S_INIT) {
        throw (this.failure = new DistError(`rank ${this.rank}: the communication thread stopped responding during ${what}`));
      } else if (Date.now() - aliveAt > liveLimit + this.timeoutMs) {
        throw (this.failure = new DistError(`rank ${this.rank}: the communication thread did not start within ${this.timeoutMs / 1000} s`));
      }
    }
  }

  private submit(op: ThreadOp): void {
    this.worker.postMessage(op);
  }

  private check(what: string): void {
    if (this.failure) throw this.failure;
    if (this.closed) throw new DistError(`rank ${this.rank}: ${what} on a closed process group`);
    if (Atomics.load(this.ctrl, C_STATE) === S_FAILED) throw this.fail();
  }

  private waitDone(id: number, what: string): void {
    this.waitFor(
      () => Atomics.load(this.ctrl, C_DONE) >= id,
      C_DONE,
      () => Atomics.load(this.ctrl, C_DONE),
      what,
    );
  }

  private stage(bytes: number): SharedArrayBuffer {
    if (this.staging.byteLength < bytes) this.staging = new SharedArrayBuffer(Math.max(bytes, this.staging.byteLength * 2));
    return this.staging;
  }

  alloc(dtype: CommDType, length: number): CommArray {
    const es = dtype === 'f64' ? 8 : 4;
    return typedArray(dtype, length, new SharedArrayBuffer(Math.max(8, length * es)));
  }

  private startAllReduce(x: CommArray, op: ReduceOp): number {
    const dtype = commDType(x);
    if (op === 'avg' && dtype === 'i32') throw new TypeError('allReduce avg of i32');
    this.check('allReduce');
    const id = ++this.nextId;
    this.submit({ kind: 'allreduce', id, buf: x.buffer as SharedArrayBuffer, byteOffset: x.byteOffset, length: x.length, dtype, red: op });
    return id;
  }

  allReduce(x: CommArray, op: ReduceOp = 'sum'): void {
    if (x.length === 0) return;
    if (x.buffer instanceof SharedArrayBuffer) {
      this.waitDone(this.startAllReduce(x, op), 'allReduce');
      return;
    }
    const s = typedArray(commDType(x), x.length, this.stage(x.byteLength));
    s.set(x);
    this.waitDone(this.startAllReduce(s, op), 'allReduce');
    x.set(s);
  }

  allReduceAsync(x: CommArray, op: ReduceOp = 'sum'): Work {
    if (x.length === 0) return { wait: () => undefined };
    if (x.buffer instanceof SharedArrayBuffer) {
      const id = this.startAllReduce(x, op);
      return { wait: () => this.waitDone(id, 'allReduce') };
    }
    const s = this.alloc(commDType(x), x.length);
    s.set(x);
    const id = this.startAllReduce(s, op);
    return {
      wait: () => {
        this.waitDone(id, 'allReduce');
        x.set(s);
      },
    };
  }

  broadcast(x: CommArray | Uint8Array, root = 0): void {
    if (!(Number.isInteger(root) && root >= 0 && root < this.worldSize)) throw new RangeError(`broadcast root ${root} not in [0, ${this.worldSize})`);
    this.check('broadcast');
    const shared = x.buffer instanceof SharedArrayBuffer;
    const buf = shared ? (x.buffer as SharedArrayBuffer) : this.stage(x.byteLength);
    const off = shared ? x.byteOffset : 0;
    const bytes = new Uint8Array(buf, off, x.byteLength);
    if (!shared) bytes.set(new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
    const id = ++this.nextId;
    this.submit({ kind: 'broadcast', id, buf, byteOffset: off, byteLength: x.byteLength, root });
    this.waitDone(id, 'broadcast');
    if (!shared) new Uint8Array(x.buffer, x.byteOffset, x.byteLength).set(bytes);
  }

  allGatherBytes(x: Uint8Array): Uint8Array[] {
    this.check('allGather');
    const id = ++this.nextId;
    this.submit({ kind: 'allgather', id, bytes: x.slice() });
    this.waitDone(id, 'allGather');
    for (let m = receiveMessageOnPort(this.reply); m; m = receiveMessageOnPort(this.reply)) {
      const r = m.message as ThreadReply;
      if (r.type === 'result' && r.id === id) return r.parts;
    }
    throw new DistError(`rank ${this.rank}: allGather #${id}: the result went missing`);
  }

  barrier(): void {
    this.check('barrier');
    const id = ++this.nextId;
    this.submit({ kind: 'barrier', id });
    this.waitDone(id, 'barrier');
  }

  /** Whether the group has failed (without throwing). */
  get failed(): boolean {
    return this.failure !== null || Atomics.load(this.ctrl, C_STATE) === S_FAILED;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const st = Atomics.load(this.ctrl, C_STATE);
    const id = ++this.nextId;
    this.submit({ kind: 'close', id });
    if (st === S_FAILED || this.failure) {
      Atomics.store(this.ctrl, C_ACK, 1);
      void this.worker.terminate();
      return;
    }
    const deadline = Date.now() + 5000;
    while (Atomics.load(this.ctrl, C_DONE) < id && Atomics.load(this.ctrl, C_STATE) !== S_FAILED && Date.now() < deadline) {
      Atomics.wait(this.ctrl, C_DONE, Atomics.load(this.ctrl, C_DONE), 100);
    }
    void this.worker.terminate();
  }
}
