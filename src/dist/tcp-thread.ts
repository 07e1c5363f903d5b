/**
 * The communication thread of the tcp process group (see `tcp.ts`). It owns every socket of this
 * rank, so collectives progress while the main thread computes (gradient buckets overlap the rest
 * of backward) and a lost peer is noticed even while the main thread is busy.
 *
 * Only Node built-ins are imported: the file runs as a worker from `dist/` and, under vitest, as a
 * transpiled `data:` module.
 *
 * **Rendezvous.** Rank 0 listens on the master port; every other rank listens on an ephemeral port,
 * connects to rank 0 (retrying until `--dist-timeout`) and sends HELLO `{rank, worldSize,
 * fingerprint, port}`. Rank 0 checks that the world sizes and fingerprints agree and that every
 * rank joined once, then sends each rank the TABLE of `{rank, host, port}` (host = the address rank
 * 0 saw the rank connect from), or REJECT with the reason to all. Rank i > 0 then connects to every
 * rank 0 < j < i; the links form a full mesh (rank 0's links are the rendezvous connections).
 *
 * **Frames.** A 16-byte header `u32 length | u8 type | 3 pad | u32 seq | u32 aux` and the payload:
 * JSON for control frames, raw little-endian typed-array bytes for data. `seq` is the collective's
 * number (the same on every rank: collectives must be issued in the same order everywhere) and
 * `aux` its step; a frame that does not match what the receiver expects is a mismatch error.
 *
 * **All-reduce** is a ring: reduce-scatter then all-gather over N chunks, 2(N−1)/N of the data sent
 * and received per rank. Each chunk's final value is computed on one rank and copied to the others,
 * so every rank ends with bitwise the same result.
 *
 * **Failure.** A closed or reset link (its process exited or was killed), a peer silent for
 * `timeoutMs` (heartbeats flow every `heartbeatMs` even while its main thread computes, so silence
 * means the process is stopped or gone), or a collective waiting longer than `timeoutMs` fails the
 * group: the reason goes to the main thread, ABORT frames tell the other ranks, and the links are
 * closed. A watchdog kills the process if its main thread does not take notice within `timeoutMs`.
 */
import net from 'node:net';
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';

/** Slots of the shared control block (Int32Array). */
export const C_DONE = 0;
export const C_STATE = 1;
export const C_ACK = 2;
/** Bumped by the thread at every heartbeat tick: the main thread's proof that the thread lives. */
export const C_ALIVE = 3;
export const CTRL_INTS = 4;
/** Values of `C_STATE`. */
export const S_INIT = 0;
export const S_READY = 1;
export const S_FAILED = 2;
export const S_CLOSED = 3;

/** Element types on the wire. */
export type WireDType = 'f32' | 'f64' | 'i32';
/** Reductions. */
export type ReduceOp = 'sum' | 'avg' | 'max' | 'min';

/** What the main thread passes as `workerData`. */
export interface ThreadInit {
  megaTcpThread: true;
  rank: number;
  worldSize: number;
  masterAddr: string;
  port: number;
  timeoutMs: number;
  heartbeatMs: number;
  fingerprint: string;
  ctrl: SharedArrayBuffer;
  reply: MessagePort;
  /** Kill the process when the main thread ignores a failure for `timeoutMs`. */
  watchdog: boolean;
}

/** Requests of the main thread (in issue order; `id` doubles as the collective's sequence number). */
export type ThreadOp =
  | { kind: 'allreduce'; id: number; buf: SharedArrayBuffer; byteOffset: number; length: number; dtype: WireDType; red: ReduceOp }
  | { kind: 'broadcast'; id: number; buf: SharedArrayBuffer; byteOffset: number; byteLength: number; root: number }
  | { kind: 'allgather'; id: number; bytes: Uint8Array }
  | { kind: 'barrier'; id: number }
  | { kind: 'close'; id: number };

/** Replies on the `reply` port. */
export type ThreadReply =
  | { type: 'error'; message: string; lost: number | null }
  | { type: 'result'; id: number; parts: Uint8Array[] };

const F_HELLO = 1, F_TABLE = 2, F_REJECT = 3, F_PEER = 4, F_HB = 5, F_DATA = 6, F_ABORT = 7, F_BYE = 8;
const HDR = 16;
const MAX_FRAME = 0xffffffff;

interface Frame {
  type: number;
  seq: number;
  aux: number;
  payload: Buffer;
}

/** One link to a peer: frame parser, inbox, liveness. */
class Conn {
  peer = -1;
  private readonly hdr = Buffer.alloc(HDR);
  private hfill = 0;
  private pay: Buffer | null = null;
  private pfill = 0;
  private ptype = 0;
  private pseq = 0;
  private paux = 0;
  readonly inbox: Frame[] = [];
  waiter: ((f: Frame | Error) => void) | null = null;
  lastSeen = Date.now();
  /** The peer said goodbye (a clean close follows). */
  bye = false;
  gone = false;

  constructor(
    readonly sock: net.Socket,
    private readonly onFrame: (c: Conn, f: Frame) => void,
    private readonly onGone: (c: Conn, why: string) => void,
  ) {
    sock.setNoDelay(true);
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('error', (e: NodeJS.ErrnoException) => this.lost(e.code === 'ECONNRESET' || e.code === 'EPIPE' ? 'connection reset' : e.message));
    sock.on('close', () => this.lost('connection closed'));
  }

  private lost(why: string): void {
    if (this.gone) return;
    this.gone = true;
    this.onGone(this, why);
  }

  private onData(d: Buffer): void {
    this.lastSeen = Date.now();
    let off = 0;
    while (off < d.length) {
      if (this.pay === null) {
        const n = Math.min(HDR - this.hfill, d.length - off);
        d.copy(this.hdr, this.hfill, off, off + n);
        this.hfill += n;
        off += n;
        if (this.hfill < HDR) break;
        this.hfill = 0;
        const len = this.hdr.readUInt32LE(0);
        this.ptype = this.hdr[4];
        this.pseq = this.hdr.readUInt32LE(8);
        this.paux = this.hdr.readUInt32LE(12);
        this.pay = Buffer.allocUnsafe(len);
        this.pfill = 0;
      } else {
        const n = Math.min(this.pay.length - this.pfill, d.length - off);
        d.copy(this.pay, this.pfill, off, off + n);
        this.pfill += n;
        off += n;
      }
      if (this.pay !== null && this.pfill === this.pay.length) {
        const f: Frame = { type: this.ptype, seq: this.pseq, aux: this.paux, payload: this.pay };
        this.pay = null;
        this.onFrame(this, f);
      }
    }
  }

  /** Queue a frame; resolves once its bytes left this process (the payload may then change). */
  send(type: number, seq: number, aux: number, payload?: Uint8Array): Promise<void> {
    const len = payload?.byteLength ?? 0;
    if (len > MAX_FRAME) throw new Error(`frame of ${len} bytes exceeds the 4 GiB frame limit`);
    const h = Buffer.alloc(HDR);
    h.writeUInt32LE(len, 0);
    h[4] = type;
    h.writeUInt32LE(seq >>> 0, 8);
    h.writeUInt32LE(aux >>> 0, 12);
    return new Promise((resolve) => {
      if (this.gone || this.sock.destroyed) return resolve();
      if (len === 0) {
        this.sock.write(h, () => resolve());
        return;
      }
      this.sock.cork();
      this.sock.write(h);
      this.sock.write(payload!, () => resolve());
      this.sock.uncork();
    });
  }

  sendJson(type: number, obj: unknown): Promise<void> {
    return this.send(type, 0, 0, Buffer.from(JSON.stringify(obj)));
  }
}

/** Thrown inside the thread once the group has failed (the reason was already reported). */
class Failed extends Error {}

function view(dtype: WireDType, buf: ArrayBufferLike, byteOffset: number, length: number): Float32Array | Float64Array | Int32Array {
  if (dtype === 'f32') return new Float32Array(buf, byteOffset, length);
  if (dtype === 'f64') return new Float64Array(buf, byteOffset, length);
  return new Int32Array(buf, byteOffset, length);
}

function bytesPer(dtype: WireDType): number {
  return dtype === 'f64' ? 8 : 4;
}

/** `dst[i] = red(dst[i], src[i])`. */
function reduceInto(dst: Float32Array | Float64Array | Int32Array, src: Float32Array | Float64Array | Int32Array, red: ReduceOp): void {
  const n = dst.length;
  if (red === 'sum' || red === 'avg') for (let i = 0; i < n; i++) dst[i] += src[i];
  else if (red === 'max') for (let i = 0; i < n; i++) dst[i] = src[i] > dst[i] || Number.isNaN(src[i]) ? src[i] : dst[i];
  else for (let i = 0; i < n; i++) dst[i] = src[i] < dst[i] || Number.isNaN(src[i]) ? src[i] : dst[i];
}

/** The thread's program. */
function runThread(init: ThreadInit): void {
  const { rank, worldSize: N, timeoutMs } = init;
  const ctrl = new Int32Array(init.ctrl);
  const reply = init.reply;
  const conns: (Conn | null)[] = new Array<Conn | null>(N).fill(null);
  const opQueue: ThreadOp[] = [];
  let running = false;
  let failed = false;
  let closing = false;
  let server: net.Server | null = null;
  let hbTimer: NodeJS.Timeout | null = null;
  /** Ranks the current step waits for (named in timeout messages). */
  let waitingFor: number[] = [];
  let opName = 'rendezvous';
  let opId = 0;
  /** When the running collective last made progress (a frame arrived or it started). */
  let lastProgress = 0;

  const secs = (ms: number): string => `${+(ms / 1000).toFixed(3)} s`;
  const aliveTimer = setInterval(() => Atomics.add(ctrl, C_ALIVE, 1), 250);
  process.on('uncaughtException', (e) => fail(`communication thread of rank ${rank} crashed: ${e.stack ?? e.message}`, null));

  function fail(message: string, lost: number | null): void {
    if (failed || closing) return;
    failed = true;
    reply.postMessage({ type: 'error', message, lost } satisfies ThreadReply);
    Atomics.store(ctrl, C_STATE, S_FAILED);
    Atomics.notify(ctrl, C_DONE);
    Atomics.notify(ctrl, C_STATE);
    const abort = Buffer.from(JSON.stringify({ message, lost, from: rank }));
    for (const c of conns) {
      if (!c || c.gone) continue;
      c.waiter?.(new Failed(message));
      void c.send(F_ABORT, 0, 0, abort).then(() => c.sock.end());
      setTimeout(() => c.sock.destroy(), 500).unref();
    }
    server?.close();
    if (hbTimer) clearInterval(hbTimer);
    if (init.watchdog) {
      setTimeout(() => {
        if (Atomics.load(ctrl, C_ACK) !== 0) return;
        process.stderr.write(`mega dist: rank ${rank}: ${message}\nmega dist: rank ${rank}: the training loop did not stop within ${secs(timeoutMs)}; killing the process\n`);
        process.kill(process.pid, 'SIGKILL');
      }, timeoutMs);
    }
  }

  function onGone(c: Conn, why: string): void {
    const p = c.peer;
    if (p < 0 || closing) return;
    if (c.bye) {
      c.waiter?.(new Failed(`rank ${p} closed its process group while rank ${rank} still expected data in ${opName}`));
      return;
    }
    fail(`lost rank ${p}: ${why} (the process exited or was killed)`, p);
  }

  function onFrame(c: Conn, f: Frame): void {
    if (f.type === F_HB) return;
    if (f.type === F_ABORT) {
      let m: { message?: string; lost?: number | null; from?: number } = {};
      try {
        m = JSON.parse(f.payload.toString()) as typeof m;
      } catch { /* keep defaults */ }
      fail(`${m.message ?? 'aborted'} (reported by rank ${c.peer})`, m.lost ?? c.peer);
      return;
    }
    if (f.type === F_BYE) {
      c.bye = true;
      return;
    }
    c.inbox.push(f);
    if (c.waiter) {
      const w = c.waiter;
      c.waiter = null;
      w(c.inbox.shift()!);
    }
  }

  /** The next frame from `peer`; it must be DATA of collective `seq`, step `aux`. */
  function recv(peer: number, seq: number, aux: number): Promise<Buffer> {
    const c = conns[peer]!;
    const check = (f: Frame): Buffer => {
      if (f.type !== F_DATA || f.seq !== seq || f.aux !== aux) {
        const msg = `collective mismatch: rank ${rank} is in ${opName} (#${seq}, step ${aux}) but rank ${peer} sent ${f.type === F_DATA ? `#${f.seq} step ${f.aux}` : `frame type ${f.type}`} — the ranks issue different collectives (different models or code paths?)`;
        fail(msg, null);
        throw new Failed(msg);
      }
      return f.payload;
    };
    if (c.inbox.length) return Promise.resolve(check(c.inbox.shift()!));
    if (failed) return Promise.reject(new Failed('failed'));
    if (c.gone || c.bye) {
      return Promise.reject(new Failed(`rank ${peer} closed its process group while rank ${rank} still expected data in ${opName}`));
    }
    return new Promise((resolve, reject) => {
      c.waiter = (f) => (f instanceof Error ? reject(f) : (() => { try { resolve(check(f)); } catch (e) { reject(e); } })());
    });
  }

  /** Wait for several receives, naming who is awaited (for timeout messages). */
  async function recvFrom(peers: number[], seq: number, aux: number): Promise<Buffer[]> {
    waitingFor = peers;
    try {
      return await Promise.all(peers.map((p) => recv(p, seq, aux).then((b) => {
        lastProgress = Date.now();
        waitingFor = waitingFor.filter((q) => q !== p);
        return b;
      })));
    } finally {
      waitingFor = [];
    }
  }

  // ---------------------------------------------------------------- collectives

  async function allReduce(op: Extract<ThreadOp, { kind: 'allreduce' }>): Promise<void> {
    const x = view(op.dtype, op.buf, op.byteOffset, op.length);
    const n = op.length, es = bytesPer(op.dtype);
    const next = (rank + 1) % N, prev = (rank - 1 + N) % N;
    const lo = (i: number): number => Math.floor((i * n) / N);
    const chunk = (i: number) => x.subarray(lo(i), lo(i + 1));
    const bytes = (i: number) => new Uint8Array(op.buf, op.byteOffset + lo(i) * es, (lo(i + 1) - lo(i)) * es);
    const sends: Promise<void>[] = [];
    for (let s = 0; s < N - 1; s++) {
      const si = (rank - s + N) % N, ri = (rank - s - 1 + 2 * N) % N;
      sends.push(conns[next]!.send(F_DATA, op.id, s, bytes(si)));
      const [b] = await recvFrom([prev], op.id, s);
      reduceInto(chunk(ri), view(op.dtype, b.buffer, b.byteOffset, b.byteLength / es), op.red);
    }
    const own = chunk((rank + 1) % N);
    if (op.red === 'avg') for (let i = 0; i < own.length; i++) own[i] /= N;
    for (let s = 0; s < N - 1; s++) {
      const si = (rank + 1 - s + N) % N, ri = (rank - s + N) % N;
      sends.push(conns[next]!.send(F_DATA, op.id, N - 1 + s, bytes(si)));
      const [b] = await recvFrom([prev], op.id, N - 1 + s);
      bytes(ri).set(new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
    }
    await Promise.all(sends);
  }

  async function broadcast(op: Extract<ThreadOp, { kind: 'broadcast' }>): Promise<void> {
    const data = new Uint8Array(op.buf, op.byteOffset, op.byteLength);
    if (rank === op.root) {
      await Promise.all(conns.map((c, p) => (p === rank ? undefined : c!.send(F_DATA, op.id, 0, data))));
      return;
    }
    const [b] = await recvFrom([op.root], op.id, 0);
    if (b.byteLength !== data.byteLength) {
      const msg = `broadcast #${op.id}: rank ${op.root} sent ${b.byteLength} bytes, rank ${rank} expected ${data.byteLength} (the ranks' models differ?)`;
      fail(msg, null);
      throw new Failed(msg);
    }
    data.set(b);
  }

  async function allGather(op: Extract<ThreadOp, { kind: 'allgather' }>): Promise<Uint8Array[]> {
    const others = [...Array(N).keys()].filter((p) => p !== rank);
    const sends = others.map((p) => conns[p]!.send(F_DATA, op.id, 0, op.bytes));
    const got = await recvFrom(others, op.id, 0);
    await Promise.all(sends);
    const parts: Uint8Array[] = new Array<Uint8Array>(N);
    parts[rank] = op.bytes;
    others.forEach((p, i) => (parts[p] = new Uint8Array(got[i].buffer, got[i].byteOffset, got[i].byteLength)));
    return parts;
  }

  async function barrier(op: Extract<ThreadOp, { kind: 'barrier' }>): Promise<void> {
    await allGather({ kind: 'allgather', id: op.id, bytes: new Uint8Array(0) });
  }

  async function close(): Promise<void> {
    closing = true;
    if (hbTimer) clearInterval(hbTimer);
    clearInterval(aliveTimer);
    await Promise.all(conns.map((c) => (c && !c.gone ? c.send(F_BYE, 0, 0) : undefined)));
    await Promise.all(conns.map((c) => (c && !c.gone ? new Promise<void>((res) => {
      c.sock.once('close', () => res());
      c.sock.end();
      setTimeout(() => {
        c.sock.destroy();
        res();
      }, 2000).unref();
    }) : undefined)));
    server?.close();
  }

  function complete(id: number, parts?: Uint8Array[]): void {
    if (parts) reply.postMessage({ type: 'result', id, parts } satisfies ThreadReply);
    Atomics.store(ctrl, C_DONE, id);
    Atomics.notify(ctrl, C_DONE);
  }

  function pump(): void {
    if (running || failed || opQueue.length === 0 || Atomics.load(ctrl, C_STATE) !== S_READY) return;
    running = true;
    const op = opQueue.shift()!;
    opName = op.kind === 'allreduce' ? `allReduce(${op.red}) of ${op.length} ${op.dtype}` : op.kind;
    opId = op.id;
    lastProgress = Date.now();
    const run = async (): Promise<Uint8Array[] | undefined> => {
      switch (op.kind) {
        case 'allreduce': await allReduce(op); return undefined;
        case 'broadcast': await broadcast(op); return undefined;
        case 'allgather': return allGather(op);
        case 'barrier': await barrier(op); return undefined;
        case 'close': await close(); return undefined;
      }
    };
    run().then(
      (parts) => {
        if (failed) return;
        running = false;
        if (op.kind === 'close') {
          Atomics.store(ctrl, C_STATE, S_CLOSED);
          complete(op.id);
          parentPort?.close();
          return;
        }
        complete(op.id, parts);
        pump();
      },
      (e: unknown) => {
        fail(e instanceof Error ? e.message : String(e), null);
      },
    );
  }

  parentPort!.on('message', (op: ThreadOp) => {
    if (op.kind === 'close' && Atomics.load(ctrl, C_STATE) !== S_READY) {
      // never became ready or already failed: just drop everything
      closing = true;
      clearInterval(aliveTimer);
      for (const c of conns) c?.sock.destroy();
      server?.close();
      if (hbTimer) clearInterval(hbTimer);
      Atomics.store(ctrl, C_STATE, failed ? S_FAILED : S_CLOSED);
      complete(op.id);
      parentPort?.close();
      return;
    }
    opQueue.push(op);
    pump();
  });

  // ---------------------------------------------------------------- heartbeats

  function startHeartbeats(): void {
    hbTimer = setInterval(() => {
      const now = Date.now();
      if (running && opName !== 'close' && now - lastProgress > timeoutMs) {
        const who = waitingFor.length ? ` waiting for rank${waitingFor.length > 1 ? 's' : ''} ${waitingFor.join(', ')}` : '';
        fail(`${opName} #${opId} made no progress for ${secs(now - lastProgress)}${who} (--dist-timeout ${secs(timeoutMs)})`, waitingFor.length === 1 ? waitingFor[0] : null);
        return;
      }
      for (const c of conns) {
        if (!c || c.gone || c.bye) continue;
        void c.send(F_HB, 0, 0);
        if (now - c.lastSeen > timeoutMs) {
          fail(`rank ${c.peer} stopped answering: nothing received for ${secs(now - c.lastSeen)} (--dist-timeout ${secs(timeoutMs)}; the process is stopped, hung or unreachable)`, c.peer);
          return;
        }
      }
    }, init.heartbeatMs);
  }

  function ready(): void {
    if (failed) return;
    const now = Date.now();
    for (const c of conns) if (c) c.lastSeen = now;
    Atomics.store(ctrl, C_STATE, S_READY);
    Atomics.notify(ctrl, C_STATE);
    startHeartbeats();
    pump();
  }

  // ---------------------------------------------------------------- rendezvous

  const deadline = Date.now() + timeoutMs;
  const rdvTimer: NodeJS.Timeout = setTimeout(() => {
    if (Atomics.load(ctrl, C_STATE) !== S_INIT) return;
    if (rank === 0) {
      const missing = [...Array(N).keys()].filter((p) => p > 0 && !conns[p]);
      fail(`rendezvous timed out after ${secs(timeoutMs)}: rank${missing.length > 1 ? 's' : ''} ${missing.join(', ')} did not join ${init.masterAddr}:${init.port} (--dist-timeout)`, missing.length === 1 ? missing[0] : null);
    } else {
      const missing = [...Array(N).keys()].filter((p) => p !== rank && !conns[p]);
      fail(`rendezvous timed out after ${secs(timeoutMs)}: rank ${rank} could not ${conns[0] ? `connect to rank${missing.length > 1 ? 's' : ''} ${missing.join(', ')}` : `reach rank 0 at ${init.masterAddr}:${init.port}`} (--dist-timeout)`, null);
    }
  }, timeoutMs);
  rdvTimer.unref();

  const parseJson = (f: Frame): Record<string, unknown> => {
    try {
      return JSON.parse(f.payload.toString()) as Record<string, unknown>;
    } catch {
      return {};
    }
  };

  if (rank === 0) {
    const pending = new Set<Conn>();
    const joined: { host: string; port: number }[] = new Array<{ host: string; port: number }>(N);
    let rejected = false;
    const reject = (msg: string, from: Conn): void => {
      rejected = true;
      const payload = Buffer.from(JSON.stringify({ message: msg }));
      for (const c of new Set([from, ...pending, ...conns])) if (c && !c.gone) void c.send(F_REJECT, 0, 0, payload).then(() => c.sock.end());
      fail(msg, null);
    };
    server = net.createServer((sock) => {
      if (rejected || failed) {
        sock.destroy();
        return;
      }
      const c = new Conn(sock, (cc, f) => {
        if (cc.peer >= 0) return onFrame(cc, f);
        if (f.type !== F_HELLO) return;
        pending.delete(cc);
        const h = parseJson(f) as { rank?: number; worldSize?: number; fingerprint?: string; port?: number };
        const r = h.rank ?? -1;
        if (h.worldSize !== N) return reject(`world size mismatch: rank ${r} was started with a world size of ${String(h.worldSize)}, rank 0 with ${N}`, cc);
        if (!Number.isInteger(r) || r < 1 || r >= N) return reject(`rank ${r} joined a job of world size ${N} (ranks are 0 … ${N - 1})`, cc);
        if (conns[r]) return reject(`two processes claim rank ${r} (check RANK / the launcher's settings)`, cc);
        if (h.fingerprint !== init.fingerprint) return reject(`rank ${r}'s process-group settings differ from rank 0's (${String(h.fingerprint)} vs ${init.fingerprint})`, cc);
        cc.peer = r;
        conns[r] = cc;
        joined[r] = { host: (sock.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, ''), port: h.port ?? 0 };
        if (conns.filter((x, i) => i > 0 && x).length === N - 1) {
          const table = JSON.stringify({ peers: joined.map((j, i) => (i === 0 ? null : j)) });
          for (let p = 1; p < N; p++) void conns[p]!.send(F_TABLE, 0, 0, Buffer.from(table));
          clearTimeout(rdvTimer);
          ready();
        }
      }, (cc, why) => {
        pending.delete(cc);
        if (cc.peer >= 0) onGone(cc, why);
      });
      pending.add(c);
    });
    server.on('error', (e: NodeJS.ErrnoException) => {
      const hint = e.code === 'EADDRINUSE' ? ' (address in use: another job on this port? set MASTER_PORT / MEGA_DIST_PORT)' : '';
      fail(`rank 0 cannot listen on port ${init.port}: ${e.message}${hint}`, null);
    });
    server.listen({ port: init.port });
  } else {
    // our own listener for the mesh, then the rendezvous
    let table: ({ host: string; port: number } | null)[] | null = null;
    const meshDone = (): void => {
      if (conns.filter((c, i) => i !== rank && c).length === N - 1) {
        clearTimeout(rdvTimer);
        ready();
      }
    };
    const accept = (c: Conn, f: Frame): void => {
      if (c.peer >= 0) return onFrame(c, f);
      if (f.type !== F_PEER) return;
      const r = (parseJson(f) as { rank?: number }).rank ?? -1;
      if (!Number.isInteger(r) || r <= rank || r >= N || conns[r]) {
        fail(`unexpected mesh connection claiming rank ${r} at rank ${rank}`, null);
        return;
      }
      c.peer = r;
      conns[r] = c;
      if (table) meshDone();
    };
    server = net.createServer((sock) => {
      if (failed) return void sock.destroy();
      new Conn(sock, accept, onGone); // becomes conns[r] once it says which rank it is
    });
    server.on('error', (e) => fail(`rank ${rank} cannot listen for its peers: ${e.message}`, null));
    server.listen({ port: 0 }, () => {
      const myPort = (server!.address() as net.AddressInfo).port;
      const connect = (): void => {
        if (failed) return;
        const sock = net.connect({ host: init.masterAddr, port: init.port });
        let ok = false;
        sock.once('connect', () => {
          ok = true;
          const c = new Conn(sock, (cc, f) => {
            if (f.type === F_REJECT) return fail(`rendezvous rejected by rank 0: ${String(parseJson(f).message)}`, null);
            if (f.type === F_TABLE && !table) {
              table = (parseJson(f) as { peers: ({ host: string; port: number } | null)[] }).peers;
              for (let p = 1; p < rank; p++) {
                const t = table[p]!;
                const s2 = net.connect({ host: t.host, port: t.port });
                const c2 = new Conn(s2, onFrame, onGone);
                c2.peer = p;
                s2.once('connect', () => {
                  void c2.sendJson(F_PEER, { rank });
                  conns[p] = c2;
                  meshDone();
                });
              }
              meshDone();
              return;
            }
            onFrame(cc, f);
          }, onGone);
          c.peer = 0;
          conns[0] = c;
          void c.sendJson(F_HELLO, { rank, worldSize: N, fingerprint: init.fingerprint, port: myPort });
        });
        sock.once('error', () => {
          if (ok) return;
          sock.destroy();
          if (Date.now() < deadline) setTimeout(connect, 100);
        });
      };
      connect();
    });
  }
}

if (!isMainThread && (workerData as Partial<ThreadInit> | null)?.megaTcpThread === true) runThread(workerData as ThreadInit);
