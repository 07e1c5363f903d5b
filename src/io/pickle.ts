/**
 * A restricted Python pickle virtual machine: decodes pickle protocols 0..5 into JS values WITHOUT
 * running code. Globals (GLOBAL, STACK_GLOBAL, INST, OBJ) are resolved only if their qualified name
 * is in `ALLOWED_GLOBALS` AND the caller supplies an implementation; anything else throws
 * `CheckpointError("refusing to load global <module>.<name> ...")`.
 *
 * Python → JS: None → null; bool → boolean; int → number (bigint beyond 2^53); float → number;
 * str → string; bytes/bytearray → Uint8Array; list and tuple → array; dict → Map; set/frozenset →
 * Set; `collections.OrderedDict` → `PyOrderedDict` (a Map); other objects (e.g.
 * `argparse.Namespace`) → `PyObject` whose `dict` receives the BUILD state.
 */
import { CheckpointError, describeValue } from './errors.js';

/** Qualified names of the only globals a pickle may reference (fairseq/PyTorch checkpoints). */
export const ALLOWED_GLOBALS: readonly string[] = Object.freeze([
  'argparse.Namespace',
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  'torch.FloatStorage',
  'torch.DoubleStorage',
  'torch.HalfStorage',
  'torch.LongStorage',
  'torch.IntStorage',
  'torch.BoolStorage',
  'torch.ByteStorage',
  'torch.BFloat16Storage',
]);

/** Implementation of an allowed global: what REDUCE (`call`) and NEWOBJ (`newObj`) do with it. */
export interface PyGlobal {
  /** `module.name`. */
  readonly qualname: string;
  /** REDUCE / INST / OBJ: `callable(*args)`. */
  call?(args: unknown[]): unknown;
  /** NEWOBJ: `cls.__new__(cls, *args)`. */
  newObj?(args: unknown[]): unknown;
}

/** A generic Python instance (e.g. `argparse.Namespace`): class name plus its `__dict__`. */
export class PyObject {
  /** Instance attributes, filled by BUILD. */
  readonly dict = new Map<string, unknown>();
  /** BUILD state that is not a plain attribute dict (slot state etc.), if any. */
  extraState: unknown = undefined;

  /** @param cls qualified class name, e.g. `argparse.Namespace` */
  constructor(readonly cls: string) {}
}

/** `collections.OrderedDict`: a Map; `attrs` keeps instance attributes set by BUILD (e.g. `_metadata`). */
export class PyOrderedDict extends Map<unknown, unknown> {
  /** BUILD state (instance `__dict__`), if any. */
  attrs: unknown = undefined;
}

/** Options of `unpickle`. */
export interface UnpickleOptions {
  /** Implementations of allowed globals by qualname (added to the built-in Namespace/OrderedDict ones). */
  globals?: Readonly<Record<string, PyGlobal>>;
  /** Resolves BINPERSID/PERSID ids (PyTorch storages); without it persistent ids throw. */
  persistentLoad?(pid: unknown): unknown;
  /** Name of the stream in error messages (e.g. `model.pt:archive/data.pkl`). */
  label?: string;
}

/** Built-in implementations of the two standard-library globals of the allow-list. */
export const STD_GLOBALS: Readonly<Record<string, PyGlobal>> = {
  'argparse.Namespace': {
    qualname: 'argparse.Namespace',
    newObj: () => new PyObject('argparse.Namespace'),
    call: () => new PyObject('argparse.Namespace'),
  },
  'collections.OrderedDict': {
    qualname: 'collections.OrderedDict',
    call: (args) => orderedDictFrom(args),
    newObj: () => new PyOrderedDict(),
  },
};

function orderedDictFrom(args: unknown[]): PyOrderedDict {
  const d = new PyOrderedDict();
  if (args.length === 0) return d;
  const src = args[0];
  if (args.length > 1 || !(Array.isArray(src) || src instanceof Map)) {
    throw new CheckpointError(`collections.OrderedDict called with unsupported arguments ${describeValue(args)}`);
  }
  const pairs = src instanceof Map ? [...src.entries()] : src;
  for (const p of pairs) {
    if (!Array.isArray(p) || p.length !== 2) throw new CheckpointError(`collections.OrderedDict: item ${describeValue(p)} is not a (key, value) pair`);
    d.set(p[0], p[1]);
  }
  return d;
}

const utf8 = new TextDecoder('utf-8');
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * Decode a pickle stream.
 * @throws CheckpointError on a forbidden global, an unsupported opcode, truncation or a malformed stream
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions = {}): unknown {
  return new Unpickler(bytes, options).run();
}

class Unpickler {
  private pos = 0;
  private stack: unknown[] = [];
  private readonly metastack: unknown[][] = [];
  private readonly memo = new Map<number, unknown>();
  private readonly dv: DataView;
  private readonly label: string;
  private readonly globals: Record<string, PyGlobal>;

  constructor(
    private readonly b: Uint8Array,
    private readonly opts: UnpickleOptions,
  ) {
    this.dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    this.label = opts.label ?? 'pickle';
    this.globals = { ...STD_GLOBALS, ...(opts.globals ?? {}) };
  }

  fail(msg: string): never {
    throw new CheckpointError(`${this.label}: ${msg}`);
  }

  private need(n: number): number {
    if (!Number.isSafeInteger(n) || n < 0 || this.pos + n > this.b.length) {
      this.fail(`truncated pickle: need ${n} bytes at offset ${this.pos}, stream has ${this.b.length}`);
    }
    const p = this.pos;
    this.pos += n;
    return p;
  }

  private u8(): number {
    return this.b[this.need(1)];
  }
  private u16(): number {
    return this.dv.getUint16(this.need(2), true);
  }
  private u32(): number {
    return this.dv.getUint32(this.need(4), true);
  }
  private i32(): number {
    return this.dv.getInt32(this.need(4), true);
  }
  private u64(): number {
    const p = this.need(8);
    const v = this.dv.getBigUint64(p, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`length ${v} at offset ${p} is too large`);
    return Number(v);
  }
  private bytes(n: number): Uint8Array {
    const p = this.need(n);
    return this.b.subarray(p, p + n);
  }
  private line(): string {
    const start = this.pos;
    const end = this.b.indexOf(0x0a, start);
    if (end < 0) this.fail(`truncated pickle: unterminated text line at offset ${start}`);
    this.pos = end + 1;
    return latin1(this.b.subarray(start, end)); // ISO-8859-1 (TextDecoder's 'latin1' is windows-1252)
  }

  private push(v: unknown): void {
    this.stack.push(v);
  }
  private pop(): unknown {
    if (this.stack.length === 0) this.fail(`stack underflow at offset ${this.pos - 1}`);
    return this.stack.pop();
  }
  private top(): unknown {
    if (this.stack.length === 0) this.fail(`stack underflow at offset ${this.pos - 1}`);
    return this.stack[this.stack.length - 1];
  }
  private popMark(): unknown[] {
    const items = this.stack;
    const prev = this.metastack.pop();
    if (prev === undefined) this.fail(`MARK expected on the stack at offset ${this.pos - 1}`);
    this.stack = prev;
    return items;
  }
  private memoGet(i: number): unknown {
    if (!this.memo.has(i)) this.fail(`memo key ${i} is not defined (offset ${this.pos})`);
    return this.memo.get(i);
  }

  private resolveGlobal(module: string, name: string): PyGlobal {
    const q = `${module}.${name}`;
    if (!ALLOWED_GLOBALS.includes(q)) {
      this.fail(`refusing to load global ${q} (only ${ALLOWED_GLOBALS.join(', ')} are allowed)`);
    }
    const g = this.globals[q];
    if (g === undefined) this.fail(`global ${q} is allowed but no implementation was supplied`);
    return g;
  }

  private asGlobal(v: unknown, op: string): PyGlobal {
    if (v === null || typeof v !== 'object' || typeof (v as PyGlobal).qualname !== 'string') {
      this.fail(`${op} target is not a callable global: ${describeValue(v)}`);
    }
    return v as PyGlobal;
  }

  private callGlobal(fn: unknown, args: unknown, op: string): unknown {
    const g = this.asGlobal(fn, op);
    if (!Array.isArray(args)) this.fail(`${op} arguments of ${g.qualname} must be a tuple, got ${describeValue(args)}`);
    const impl = op === 'NEWOBJ' ? (g.newObj ?? undefined) : g.call;
    if (impl === undefined) this.fail(`${g.qualname} cannot be used with ${op}`);
    try {
      return impl.call(g, args);
    } catch (e) {
      if (e instanceof CheckpointError) this.fail(e.message);
      throw e;
    }
  }

  private long(bytes: Uint8Array): number | bigint {
    if (bytes.length === 0) return 0;
    // one hex string, parsed once: linear (shifting a BigInt per byte is quadratic in the length)
    let hex = '';
    for (let i = bytes.length - 1; i >= 0; i--) hex += HEX[bytes[i]];
    let v = BigInt(`0x${hex}`);
    if (bytes[bytes.length - 1] & 0x80) v -= 1n << BigInt(8 * bytes.length);
    return toNumberIfSafe(v);
  }

  private setItems(target: unknown, items: unknown[]): void {
    if (!(target instanceof Map)) this.fail(`SETITEM(S) on a non-dict ${describeValue(target)}`);
    if (items.length % 2 !== 0) this.fail('SETITEMS with an odd number of stack items');
    for (let i = 0; i < items.length; i += 2) target.set(items[i], items[i + 1]);
  }

  private build(obj: unknown, state: unknown): void {
    if (obj instanceof PyOrderedDict) {
      obj.attrs = state;
      return;
    }
    if (!(obj instanceof PyObject)) this.fail(`BUILD on unsupported object ${describeValue(obj)}`);
    let dictState = state;
    if (Array.isArray(state) && state.length === 2) {
      dictState = state[0];
      obj.extraState = state[1];
    }
    if (dictState instanceof Map) {
      for (const [k, v] of dictState) obj.dict.set(String(k), v);
    } else if (dictState !== null) {
      obj.extraState = state;
    }
  }

  private persistent(pid: unknown): unknown {
    if (!this.opts.persistentLoad) this.fail(`persistent id ${describeValue(pid)} found but no persistent_load was supplied`);
    try {
      return this.opts.persistentLoad(pid);
    } catch (e) {
      if (e instanceof CheckpointError) this.fail(e.message);
      throw e;
    }
  }

  run(): unknown {
    const b = this.b;
    for (;;) {
      const at = this.pos;
      if (at >= b.length) this.fail(`truncated pickle: no STOP opcode before the end (${b.length} bytes)`);
      const op = this.u8();
      switch (op) {
        case 0x80: {
          const proto = this.u8();
          if (proto > 5) this.fail(`unsupported pickle protocol ${proto}`);
          break;
        } // PROTO
        case 0x95:
          this.need(8);
          break; // FRAME (length ignored)
        case 0x2e:
          return this.pop(); // STOP
        case 0x28:
          this.metastack.push(this.stack);
          this.stack = [];
          break; // MARK
        case 0x30:
          if (this.stack.length > 0) this.stack.pop();
          else this.popMark();
          break; // POP
        case 0x31:
          this.popMark();
          break; // POP_MARK
        case 0x32:
          this.push(this.top());
          break; // DUP
        case 0x4e:
          this.push(null);
          break; // NONE
        case 0x88:
          this.push(true);
          break; // NEWTRUE
        case 0x89:
          this.push(false);
          break; // NEWFALSE
        case 0x4a:
          this.push(this.i32());
          break; // BININT
        case 0x4b:
          this.push(this.u8());
          break; // BININT1
        case 0x4d:
          this.push(this.u16());
          break; // BININT2
        case 0x8a:
          this.push(this.long(this.bytes(this.u8())));
          break; // LONG1
        case 0x8b: {
          const n = this.i32();
          if (n < 0) this.fail('LONG4 with negative length');
          this.push(this.long(this.bytes(n)));
          break;
        }
        case 0x49:
          this.push(parseIntLine(this.line(), this));
          break; // INT
        case 0x4c:
          this.push(parseIntLine(this.line().replace(/L$/, ''), this));
          break; // LONG
        case 0x47:
          this.push(this.dv.getFloat64(this.need(8), false));
          break; // BINFLOAT (big-endian)
        case 0x46:
          this.push(parseFloatLine(this.line(), this));
          break; // FLOAT
        case 0x58:
          this.push(utf8.decode(this.bytes(this.u32())));
          break; // BINUNICODE
        case 0x8c:
          this.push(utf8.decode(this.bytes(this.u8())));
          break; // SHORT_BINUNICODE
        case 0x8d:
          this.push(utf8.decode(this.bytes(this.u64())));
          break; // BINUNICODE8
        case 0x56:
          this.push(rawUnicodeEscape(this.line()));
          break; // UNICODE
        case 0x55:
          this.push(latin1(this.bytes(this.u8())));
          break; // SHORT_BINSTRING (py2 str)
        case 0x54: {
          const n = this.i32();
          if (n < 0) this.fail('BINSTRING with negative length');
          this.push(latin1(this.bytes(n)));
          break;
        }
        case 0x53:
          this.push(pyStringLiteral(this.line(), this));
          break; // STRING
        case 0x43:
          this.push(this.bytes(this.u8()).slice());
          break; // SHORT_BINBYTES
        case 0x42:
          this.push(this.bytes(this.u32()).slice());
          break; // BINBYTES
        case 0x8e:
          this.push(this.bytes(this.u64()).slice());
          break; // BINBYTES8
        case 0x96:
          this.push(this.bytes(this.u64()).slice());
          break; // BYTEARRAY8
        case 0x97:
          this.fail('NEXT_BUFFER (out-of-band buffers) is not supported');
        // falls through (unreachable)
        case 0x98:
          break; // READONLY_BUFFER
        case 0x29:
          this.push([]);
          break; // EMPTY_TUPLE
        case 0x85:
          this.push([this.pop()]);
          break; // TUPLE1
        case 0x86: {
          const y = this.pop();
          const x = this.pop();
          this.push([x, y]);
          break;
        } // TUPLE2
        case 0x87: {
          const z = this.pop();
          const y = this.pop();
          const x = this.pop();
          this.push([x, y, z]);
          break;
        }
        case 0x74:
          this.push(this.popMark());
          break; // TUPLE
        case 0x5d:
          this.push([]);
          break; // EMPTY_LIST
        case 0x6c:
          this.push(this.popMark());
          break; // LIST
        case 0x61: {
          const v = this.pop();
          const l = this.top();
          if (!Array.isArray(l)) this.fail(`APPEND to a non-list ${describeValue(l)}`);
          l.push(v);
          break;
        }
        case 0x65: {
          const items = this.popMark();
          const l = this.top();
          if (!Array.isArray(l)) this.fail(`APPENDS to a non-list ${describeValue(l)}`);
          for (const x of items) l.push(x);
          break;
        }
        case 0x7d:
          this.push(new Map());
          break; // EMPTY_DICT
        case 0x64: {
          const items = this.popMark();
          const d = new Map();
          this.setItems(d, items);
          this.push(d);
          break;
        } // DICT
        case 0x73: {
          const v = this.pop();
          const k = this.pop();
          this.setItems(this.top(), [k, v]);
          break;
        } // SETITEM
        case 0x75: {
          const items = this.popMark();
          this.setItems(this.top(), items);
          break;
        } // SETITEMS
        case 0x8f:
          this.push(new Set());
          break; // EMPTY_SET
        case 0x90: {
          const items = this.popMark();
          const s = this.top();
          if (!(s instanceof Set)) this.fail('ADDITEMS to a non-set');
          for (const x of items) s.add(x);
          break;
        }
        case 0x91:
          this.push(new Set(this.popMark()));
          break; // FROZENSET
        case 0x70:
          this.memo.set(parseIntLine(this.line(), this) as number, this.top());
          break; // PUT
        case 0x71:
          this.memo.set(this.u8(), this.top());
          break; // BINPUT
        case 0x72:
          this.memo.set(this.u32(), this.top());
          break; // LONG_BINPUT
        case 0x94:
          this.memo.set(this.memo.size, this.top());
          break; // MEMOIZE
        case 0x67:
          this.push(this.memoGet(parseIntLine(this.line(), this) as number));
          break; // GET
        case 0x68:
          this.push(this.memoGet(this.u8()));
          break; // BINGET
        case 0x6a:
          this.push(this.memoGet(this.u32()));
          break; // LONG_BINGET
        case 0x63: {
          const m = this.line();
          const n = this.line();
          this.push(this.resolveGlobal(m, n));
          break;
        } // GLOBAL
        case 0x93: {
          // STACK_GLOBAL
          const n = this.pop();
          const m = this.pop();
          if (typeof m !== 'string' || typeof n !== 'string') this.fail('STACK_GLOBAL needs two strings');
          this.push(this.resolveGlobal(m, n));
          break;
        }
        case 0x52: {
          const args = this.pop();
          const fn = this.pop();
          this.push(this.callGlobal(fn, args, 'REDUCE'));
          break;
        }
        case 0x81: {
          const args = this.pop();
          const cls = this.pop();
          this.push(this.callGlobal(cls, args, 'NEWOBJ'));
          break;
        }
        case 0x92: {
          // NEWOBJ_EX
          const kw = this.pop();
          const args = this.pop();
          const cls = this.pop();
          if (!(kw instanceof Map) || kw.size > 0) this.fail('NEWOBJ_EX with keyword arguments is not supported');
          this.push(this.callGlobal(cls, args, 'NEWOBJ'));
          break;
        }
        case 0x69: {
          const m = this.line();
          const n = this.line();
          const g = this.resolveGlobal(m, n);
          this.push(this.callGlobal(g, this.popMark(), 'INST'));
          break;
        }
        case 0x6f: {
          const items = this.popMark();
          if (items.length === 0) this.fail('OBJ without a class');
          this.push(this.callGlobal(items[0], items.slice(1), 'OBJ'));
          break;
        }
        case 0x62: {
          const state = this.pop();
          this.build(this.top(), state);
          break;
        } // BUILD
        case 0x51:
          this.push(this.persistent(this.pop()));
          break; // BINPERSID
        case 0x50:
          this.push(this.persistent(this.line()));
          break; // PERSID
        case 0x82:
        case 0x83:
        case 0x84:
          this.fail(`extension-registry opcode 0x${op.toString(16)} at offset ${at} is not supported`);
        // falls through (unreachable)
        default:
          this.fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} at offset ${at}`);
      }
    }
  }
}

function toNumberIfSafe(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function parseIntLine(s: string, u: { fail(msg: string): never }): number | bigint | boolean {
  if (s === '01') return true; // protocol-0 INT encodes True/False as I01 / I00
  if (s === '00') return false;
  if (!/^[+-]?\d+$/.test(s)) u.fail(`bad integer literal ${JSON.stringify(s)}`);
  return toNumberIfSafe(BigInt(s));
}

function parseFloatLine(s: string, u: { fail(msg: string): never }): number {
  if (s === 'inf') return Infinity;
  if (s === '-inf') return -Infinity;
  if (s === 'nan' || s === '-nan') return NaN;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) u.fail(`bad float literal ${JSON.stringify(s)}`);
  return Number(s);
}

function latin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

function rawUnicodeEscape(s: string): string {
  return s.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_, h4: string | undefined, h8: string | undefined) =>
    String.fromCodePoint(parseInt(h4 ?? h8 ?? '0', 16)),
  );
}

function pyStringLiteral(s: string, u: { fail(msg: string): never }): string {
  const q = s[0];
  if (s.length < 2 || (q !== "'" && q !== '"') || s[s.length - 1] !== q) u.fail(`bad STRING literal ${JSON.stringify(s)}`);
  const esc: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', '0': '\0' };
  return s
    .slice(1, -1)
    .replace(/\\(x[0-9a-fA-F]{2}|.)/g, (_, e: string) => (e.length === 3 ? String.fromCharCode(parseInt(e.slice(1), 16)) : (esc[e] ?? `\\${e}`)));
}
