/**
 * The communication thread of the tcp process group (see `tcp.ts`). It owns every socket of this
 * rank, so collectives progress while the main thread computes (gradient buckets overlap the rest
 * of backward) and a lost peer is noticed even while the main thread is busy.
 *
 * Only Node built-ins and the sibling `tcp-*` modules are imported: the file runs as a worker
 * from `dist/` and, under vitest, as a bundled `data:` module (see `threadEntry` in tcp.ts).
 * The rendezvous is in tcp-rendezvous.ts, the links and their frames in tcp-conn.ts, what the
 * main thread and this thread exchange in tcp-protocol.ts.
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
import type net from 'node:net';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Conn, F_ABORT, F_BYE, F_DATA, F_HB, Failed, type Frame } from './tcp-conn.js';
import {
  C_ACK,
  C_ALIVE,
  C_DONE,
  C_STATE,
  S_CLOSED,
  S_FAILED,
  S_READY,
  secs,
  type ReduceOp,
  type ThreadInit,
  type ThreadOp,
  type ThreadReply,
  type WireDType,
} from './tcp-protocol.js';
import { rendezvous } from './tcp-rendezvous.js';

export * from './tcp-protocol.js';

/** `length` elements of `dtype` at `byteOffset` of `buf`. */
function view(dtype: WireDType, buf: ArrayBufferLike, byteOffset: number, length: number): Float32Array | Float64Array | Int32Array {
  if (dtype === 'f32') return new Float32Array(buf, byteOffset, length);
  if (dtype === 'f64') return new Float64Array(buf, byteOffset, length);
  return new Int32Array(buf, byteOffset, length);
}

/** Bytes per element of `dtype`. */
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
        process.stderr.write(
          `mega dist: rank ${rank}: ${message}\nmega dist: rank ${rank}: the ` + `training loop did not stop within ${secs(timeoutMs)}; killing the process\n`,
        );
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
      } catch {
        /* keep defaults */
      }
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
        const msg =
          `collective mismatch: rank ${rank} is in ${opName} (#${seq}, step ${aux}) but rank ${peer} sent ` +
          `${f.type === F_DATA ? `#${f.seq} step ${f.aux}` : `frame type ${f.type}`} — ` +
          `the ranks issue different collectives (different models or code paths?)`;
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
      c.waiter = (f) =>
        f instanceof Error
          ? reject(f)
          : (() => {
              try {
                resolve(check(f));
              } catch (e) {
                reject(e);
              }
            })();
    });
  }

  /** Wait for several receives, naming who is awaited (for timeout messages). */
  async function recvFrom(peers: number[], seq: number, aux: number): Promise<Buffer[]> {
    waitingFor = peers;
    try {
      return await Promise.all(
        peers.map((p) =>
          recv(p, seq, aux).then((b) => {
            lastProgress = Date.now();
            waitingFor = waitingFor.filter((q) => q !== p);
            return b;
          }),
        ),
      );
    } finally {
      waitingFor = [];
    }
  }

  // ---------------------------------------------------------------- collectives

  async function allReduce(op: Extract<ThreadOp, { kind: 'allreduce' }>): Promise<void> {
    const x = view(op.dtype, op.buf, op.byteOffset, op.length);
    const n = op.length,
      es = bytesPer(op.dtype);
    const next = (rank + 1) % N,
      prev = (rank - 1 + N) % N;
    const lo = (i: number): number => Math.floor((i * n) / N);
    const chunk = (i: number) => x.subarray(lo(i), lo(i + 1));
    const bytes = (i: number) => new Uint8Array(op.buf, op.byteOffset + lo(i) * es, (lo(i + 1) - lo(i)) * es);
    const sends: Promise<void>[] = [];
    for (let s = 0; s < N - 1; s++) {
      const si = (rank - s + N) % N,
        ri = (rank - s - 1 + 2 * N) % N;
      sends.push(conns[next]!.send(F_DATA, op.id, s, bytes(si)));
      const [b] = await recvFrom([prev], op.id, s);
      reduceInto(chunk(ri), view(op.dtype, b.buffer, b.byteOffset, b.byteLength / es), op.red);
    }
    const own = chunk((rank + 1) % N);
    if (op.red === 'avg') for (let i = 0; i < own.length; i++) own[i] /= N;
    for (let s = 0; s < N - 1; s++) {
      const si = (rank + 1 - s + N) % N,
        ri = (rank - s + N) % N;
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
    await Promise.all(
      conns.map((c) =>
        c && !c.gone
          ? new Promise<void>((res) => {
              c.sock.once('close', () => res());
              c.sock.end();
              setTimeout(() => {
                c.sock.destroy();
                res();
              }, 2000).unref();
            })
          : undefined,
      ),
    );
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
        case 'allreduce':
          await allReduce(op);
          return undefined;
        case 'broadcast':
          await broadcast(op);
          return undefined;
        case 'allgather':
          return allGather(op);
        case 'barrier':
          await barrier(op);
          return undefined;
        case 'close':
          await close();
          return undefined;
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
        fail(
          `${opName} #${opId} made no progress for ` + `${secs(now - lastProgress)}${who} (--dist-timeout ${secs(timeoutMs)})`,
          waitingFor.length === 1 ? waitingFor[0] : null,
        );
        return;
      }
      for (const c of conns) {
        if (!c || c.gone || c.bye) continue;
        void c.send(F_HB, 0, 0);
        if (now - c.lastSeen > timeoutMs) {
          fail(
            `rank ${c.peer} stopped answering: nothing received for ${secs(now - c.lastSeen)} ` +
              `(--dist-timeout ${secs(timeoutMs)}; the process is stopped, hung or unreachable)`,
            c.peer,
          );
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

  server = rendezvous({ init, ctrl, conns, failed: () => failed, fail, onFrame, onGone, ready });
}

if (!isMainThread && (workerData as Partial<ThreadInit> | null)?.megaTcpThread === true) runThread(workerData as ThreadInit);
