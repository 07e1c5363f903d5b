/**
 * Test-only builders: a tiny zip writer and a pickle writer for crafting torch-style checkpoints
 * (storage types, strides, forbidden globals) that the real fixtures do not cover.
 */
import { deflateRawSync } from 'node:zlib';
import { crc32 } from '../../src/io/zip.js';

/** One zip entry to write. */
export interface ZipInput {
  name: string;
  data: Uint8Array;
  /** 0 = stored (default), 8 = deflate. */
  method?: 0 | 8;
}

/** Build a zip archive (no zip64, no comment). */
export function makeZip(entries: ZipInput[]): Uint8Array {
  const enc = new TextEncoder();
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const e of entries) {
    const method = e.method ?? 0;
    const name = enc.encode(e.name);
    const body = method === 8 ? new Uint8Array(deflateRawSync(e.data)) : e.data;
    const crc = crc32(e.data);
    const lh = new Uint8Array(30 + name.length);
    const l = new DataView(lh.buffer);
    l.setUint32(0, 0x04034b50, true);
    l.setUint16(4, 20, true);
    l.setUint16(8, method, true);
    l.setUint32(14, crc, true);
    l.setUint32(18, body.length, true);
    l.setUint32(22, e.data.length, true);
    l.setUint16(26, name.length, true);
    lh.set(name, 30);
    locals.push(lh, body);
    const ch = new Uint8Array(46 + name.length);
    const c = new DataView(ch.buffer);
    c.setUint32(0, 0x02014b50, true);
    c.setUint16(4, 20, true);
    c.setUint16(6, 20, true);
    c.setUint16(10, method, true);
    c.setUint32(16, crc, true);
    c.setUint32(20, body.length, true);
    c.setUint32(24, e.data.length, true);
    c.setUint16(28, name.length, true);
    c.setUint32(42, offset, true);
    ch.set(name, 46);
    centrals.push(ch);
    offset += lh.length + body.length;
  }
  const cdSize = centrals.reduce((s, x) => s + x.length, 0);
  const eocd = new Uint8Array(22);
  const d = new DataView(eocd.buffer);
  d.setUint32(0, 0x06054b50, true);
  d.setUint16(8, entries.length, true);
  d.setUint16(10, entries.length, true);
  d.setUint32(12, cdSize, true);
  d.setUint32(16, offset, true);
  return concat([...locals, ...centrals, eocd]);
}

/** Concatenate byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Minimal pickle writer (protocol 2 opcodes unless noted). */
export class PickleBuilder {
  private out: number[] = [];
  /** Raw opcode bytes. */
  op(...b: number[]): this {
    this.out.push(...b);
    return this;
  }
  /** PROTO n. */
  proto(n = 2): this {
    return this.op(0x80, n);
  }
  /** BINUNICODE. */
  str(s: string): this {
    const b = new TextEncoder().encode(s);
    return this.op(0x58, ...le32(b.length), ...b);
  }
  /** BININT1 / BININT / LONG1. */
  int(n: number | bigint): this {
    if (typeof n === 'number' && Number.isInteger(n) && n >= 0 && n < 256) return this.op(0x4b, n);
    if (typeof n === 'number' && n >= -(2 ** 31) && n < 2 ** 31) return this.op(0x4a, ...le32(n));
    let v = BigInt(n);
    const bytes: number[] = [];
    for (let i = 0; i < 9; i++) {
      bytes.push(Number(v & 0xffn));
      v >>= 8n;
    }
    return this.op(0x8a, bytes.length, ...bytes);
  }
  /** BINFLOAT. */
  float(x: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, x, false);
    return this.op(0x47, ...b);
  }
  /** NONE / NEWTRUE / NEWFALSE. */
  none(): this {
    return this.op(0x4e);
  }
  bool(b: boolean): this {
    return this.op(b ? 0x88 : 0x89);
  }
  mark(): this {
    return this.op(0x28);
  }
  tuple(): this {
    return this.op(0x74);
  }
  emptyTuple(): this {
    return this.op(0x29);
  }
  emptyDict(): this {
    return this.op(0x7d);
  }
  setitems(): this {
    return this.op(0x75);
  }
  /** GLOBAL "module\nname\n". */
  global(module: string, name: string): this {
    return this.op(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`));
  }
  reduce(): this {
    return this.op(0x52);
  }
  newobj(): this {
    return this.op(0x81);
  }
  build(): this {
    return this.op(0x62);
  }
  binpersid(): this {
    return this.op(0x51);
  }
  stop(): this {
    return this.op(0x2e);
  }
  /** Push a tuple of ints. */
  ints(xs: number[]): this {
    this.mark();
    for (const x of xs) this.int(x);
    return this.tuple();
  }
  bytes(): Uint8Array {
    return new Uint8Array(this.out);
  }
}

function le32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

/** A tensor to put in a crafted checkpoint's `model` dict. */
export interface TensorSpec {
  name: string;
  storageType: string; // e.g. 'FloatStorage'
  key: string;
  numel: number;
  offset: number;
  size: number[];
  stride: number[];
  /** Wrap in torch._utils._rebuild_parameter. */
  parameter?: boolean;
}

/** Pickle of `{'args': Namespace(**args), 'model': {name: tensor}}` as torch/fairseq writes it. */
export function torchPickle(tensors: TensorSpec[], args: Record<string, number | string> = {}): Uint8Array {
  const p = new PickleBuilder().proto(2).emptyDict().mark();
  p.str('args').global('argparse', 'Namespace').emptyTuple().newobj().emptyDict().mark();
  for (const [k, v] of Object.entries(args)) {
    p.str(k);
    if (typeof v === 'string') p.str(v);
    else p.int(v);
  }
  p.setitems().build();
  p.str('model').emptyDict().mark();
  for (const t of tensors) {
    p.str(t.name);
    if (t.parameter) p.global('torch._utils', '_rebuild_parameter').mark();
    p.global('torch._utils', '_rebuild_tensor_v2').mark();
    p.mark().str('storage').global('torch', t.storageType).str(t.key).str('cpu').int(t.numel).tuple().binpersid();
    p.int(t.offset).ints(t.size).ints(t.stride).bool(false).global('collections', 'OrderedDict').emptyTuple().reduce();
    p.tuple().reduce();
    if (t.parameter) p.bool(false).global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce();
  }
  p.setitems().setitems().stop();
  return p.bytes();
}

/** A torch zip checkpoint from a pickle and storages (`key` → bytes) under `prefix`. */
export function torchZip(pkl: Uint8Array, storages: Record<string, Uint8Array>, prefix = 'archive/', method: 0 | 8 = 0): Uint8Array {
  const entries: ZipInput[] = [{ name: `${prefix}data.pkl`, data: pkl, method }];
  for (const k of Object.keys(storages).sort()) entries.push({ name: `${prefix}data/${k}`, data: storages[k], method });
  entries.push({ name: `${prefix}version`, data: new TextEncoder().encode('3\n'), method });
  return makeZip(entries);
}

/** Little-endian bytes of a typed array. */
export function leBytes(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice();
}
