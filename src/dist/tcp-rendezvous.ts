/**
 * The rendezvous of the tcp process group's communication thread (see tcp-thread.ts).
 *
 * Rank 0 listens on the master port; every other rank listens on an ephemeral port, connects to
 * rank 0 (retrying until `--dist-timeout`) and sends HELLO `{rank, worldSize, fingerprint, port}`.
 * Rank 0 checks that the world sizes and fingerprints agree and that every rank joined once, then
 * sends each rank the TABLE of `{rank, host, port}` (host = the address rank 0 saw the rank
 * connect from), or REJECT with the reason to all. Rank i > 0 then connects to every rank
 * 0 < j < i; the links form a full mesh (rank 0's links are the rendezvous connections).
 */
import net from 'node:net';
import { Conn, F_HELLO, F_PEER, F_REJECT, F_TABLE, parseJson, type Frame } from './tcp-conn.js';
import { C_STATE, S_INIT, secs, type ThreadInit } from './tcp-protocol.js';

/** What the rendezvous needs from the thread. */
export interface RendezvousHost {
  readonly init: ThreadInit;
  /** The shared control block. */
  readonly ctrl: Int32Array;
  /** The link to each rank (null until it is up; this rank's own entry stays null). */
  readonly conns: (Conn | null)[];
  /** Whether the group has failed. */
  failed(): boolean;
  /** Fails the group (reports `message` to the main thread and aborts the peers). */
  fail(message: string, lost: number | null): void;
  /** Handles a frame of an established link. */
  onFrame(c: Conn, f: Frame): void;
  /** Handles a lost link. */
  onGone(c: Conn, why: string): void;
  /** Called once, when every link is up. */
  ready(): void;
}

/**
 * Starts the rendezvous (see the file comment); `host.ready()` follows once the mesh is complete,
 * `host.fail()` on a rejection or after `timeoutMs`. Returns this rank's listening server.
 */
export function rendezvous(host: RendezvousHost): net.Server {
  const { init, ctrl, conns, fail } = host;
  const { rank, worldSize: N, timeoutMs } = init;
  const deadline = Date.now() + timeoutMs;
  const rdvTimer: NodeJS.Timeout = setTimeout(() => {
    if (Atomics.load(ctrl, C_STATE) !== S_INIT) return;
    if (rank === 0) {
      const missing = [...Array(N).keys()].filter((p) => p > 0 && !conns[p]);
      fail(
        `rendezvous timed out after ${secs(timeoutMs)}: rank${missing.length > 1 ? 's' : ''} ` +
          `${missing.join(', ')} did not join ${init.masterAddr}:${init.port} (--dist-timeout)`,
        missing.length === 1 ? missing[0] : null,
      );
    } else {
      const missing = [...Array(N).keys()].filter((p) => p !== rank && !conns[p]);
      fail(
        `rendezvous timed out after ${secs(timeoutMs)}: rank ${rank} could not ` +
          `${conns[0] ? `connect to rank${missing.length > 1 ? 's' : ''} ${missing.join(', ')}` : `reach rank 0 at ${init.masterAddr}:${init.port}`} ` +
          `(--dist-timeout)`,
        null,
      );
    }
  }, timeoutMs);
  rdvTimer.unref();
  return rank === 0 ? listenAsRoot(host, rdvTimer) : joinAsPeer(host, rdvTimer, deadline);
}

/** Rank 0: accepts and checks every other rank's HELLO, then sends the TABLE to all. */
function listenAsRoot(host: RendezvousHost, rdvTimer: NodeJS.Timeout): net.Server {
  const { init, conns, fail, onFrame, onGone, ready } = host;
  const N = init.worldSize;
  const pending = new Set<Conn>();
  const joined: { host: string; port: number }[] = new Array<{ host: string; port: number }>(N);
  let rejected = false;
  const reject = (msg: string, from: Conn): void => {
    rejected = true;
    const payload = Buffer.from(JSON.stringify({ message: msg }));
    for (const c of new Set([from, ...pending, ...conns])) if (c && !c.gone) void c.send(F_REJECT, 0, 0, payload).then(() => c.sock.end());
    fail(msg, null);
  };
  const server = net.createServer((sock) => {
    if (rejected || host.failed()) {
      sock.destroy();
      return;
    }
    const c = new Conn(
      sock,
      (cc, f) => {
        if (cc.peer >= 0) return onFrame(cc, f);
        if (f.type !== F_HELLO) return;
        pending.delete(cc);
        const h = parseJson(f) as { rank?: number; worldSize?: number; fingerprint?: string; port?: number };
        const r = h.rank ?? -1;
        if (h.worldSize !== N) return reject(`world size mismatch: rank ${r} was started with a world size of ${String(h.worldSize)}, rank 0 with ${N}`, cc);
        if (!Number.isInteger(r) || r < 1 || r >= N) return reject(`rank ${r} joined a job of world size ${N} (ranks are 0 … ${N - 1})`, cc);
        if (conns[r]) return reject(`two processes claim rank ${r} (check RANK / the launcher's settings)`, cc);
        if (h.fingerprint !== init.fingerprint)
          return reject(`rank ${r}'s process-group settings differ from rank ` + `0's (${String(h.fingerprint)} vs ${init.fingerprint})`, cc);
        cc.peer = r;
        conns[r] = cc;
        joined[r] = { host: (sock.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, ''), port: h.port ?? 0 };
        if (conns.filter((x, i) => i > 0 && x).length === N - 1) {
          const table = JSON.stringify({ peers: joined.map((j, i) => (i === 0 ? null : j)) });
          for (let p = 1; p < N; p++) void conns[p]!.send(F_TABLE, 0, 0, Buffer.from(table));
          clearTimeout(rdvTimer);
          ready();
        }
      },
      (cc, why) => {
        pending.delete(cc);
        if (cc.peer >= 0) onGone(cc, why);
      },
    );
    pending.add(c);
  });
  server.on('error', (e: NodeJS.ErrnoException) => {
    const hint = e.code === 'EADDRINUSE' ? ' (address in use: another job on this port? set MASTER_PORT / MEGA_DIST_PORT)' : '';
    fail(`rank 0 cannot listen on port ${init.port}: ${e.message}${hint}`, null);
  });
  server.listen({ port: init.port });
  return server;
}

/** Rank i > 0: listens for the ranks above it, joins rank 0, then connects to the ranks 0 < j < i. */
function joinAsPeer(host: RendezvousHost, rdvTimer: NodeJS.Timeout, deadline: number): net.Server {
  const { init, conns, fail, onFrame, onGone, ready } = host;
  const { rank, worldSize: N } = init;
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
  const server = net.createServer((sock) => {
    if (host.failed()) return void sock.destroy();
    new Conn(sock, accept, onGone); // becomes conns[r] once it says which rank it is
  });
  server.on('error', (e) => fail(`rank ${rank} cannot listen for its peers: ${e.message}`, null));
  server.listen({ port: 0 }, () => {
    const myPort = (server.address() as net.AddressInfo).port;
    const connect = (): void => {
      if (host.failed()) return;
      const sock = net.connect({ host: init.masterAddr, port: init.port });
      let ok = false;
      sock.once('connect', () => {
        ok = true;
        const c = new Conn(
          sock,
          (cc, f) => {
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
          },
          onGone,
        );
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
  return server;
}
