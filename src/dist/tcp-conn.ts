/**
 * The links of the tcp process group's communication thread (see tcp-thread.ts): one {@link Conn}
 * per peer socket, which frames outgoing messages and parses incoming ones.
 *
 * **Frames.** A 16-byte header `u32 length | u8 type | 3 pad | u32 seq | u32 aux` and the payload:
 * JSON for control frames, raw little-endian typed-array bytes for data. `seq` is the collective's
 * number (the same on every rank: collectives must be issued in the same order everywhere) and
 * `aux` its step; a frame that does not match what the receiver expects is a mismatch error.
 */
import type net from 'node:net';

/** Frame types. */
export const F_HELLO = 1,
  F_TABLE = 2,
  F_REJECT = 3,
  F_PEER = 4,
  F_HB = 5,
  F_DATA = 6,
  F_ABORT = 7,
  F_BYE = 8;
const HDR = 16;
const MAX_FRAME = 0xffffffff;

/** One received frame. */
export interface Frame {
  type: number;
  seq: number;
  aux: number;
  payload: Buffer;
}

/** One link to a peer: frame parser, inbox, liveness. */
export class Conn {
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

  /** Queue a control frame with a JSON payload. */
  sendJson(type: number, obj: unknown): Promise<void> {
    return this.send(type, 0, 0, Buffer.from(JSON.stringify(obj)));
  }
}

/** A control frame's JSON payload (`{}` when it does not parse). */
export function parseJson(f: Frame): Record<string, unknown> {
  try {
    return JSON.parse(f.payload.toString()) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** Thrown inside the thread once the group has failed (the reason was already reported). */
export class Failed extends Error {}
