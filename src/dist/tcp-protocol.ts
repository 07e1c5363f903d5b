/**
 * What the two sides of the tcp process group share (see tcp.ts for the main thread and
 * tcp-thread.ts for the communication thread): the slots and states of the shared control block,
 * the requests the main thread posts and the replies it gets back.
 *
 * Only types, constants and a formatter: the main thread imports this without loading the
 * thread's program.
 */
import type { MessagePort } from 'node:worker_threads';

// Slots of the shared control block (an Int32Array over `ThreadInit.ctrl`).
/** The id of the last completed request (the main thread waits on it). */
export const C_DONE = 0;
/** The group's state, one of `S_*`. */
export const C_STATE = 1;
/** Set by the main thread once it has taken notice of a failure (disarms the watchdog). */
export const C_ACK = 2;
/** Bumped by the thread at every heartbeat tick: the main thread's proof that the thread lives. */
export const C_ALIVE = 3;
/** Number of slots. */
export const CTRL_INTS = 4;

// Values of `C_STATE`.
/** The rendezvous is in progress. */
export const S_INIT = 0;
/** Every link is up: collectives run. */
export const S_READY = 1;
/** The group has failed (the reason is on the reply port). */
export const S_FAILED = 2;
/** The group was closed. */
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
export type ThreadReply = { type: 'error'; message: string; lost: number | null } | { type: 'result'; id: number; parts: Uint8Array[] };

/** A duration in seconds for messages, e.g. `1.5 s`. */
export function secs(ms: number): string {
  return `${+(ms / 1000).toFixed(3)} s`;
}
