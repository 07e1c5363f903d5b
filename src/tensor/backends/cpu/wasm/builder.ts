/**
 * A tiny WebAssembly binary writer: enough of the format (one imported shared memory, functions
 * with i32/f32/f64/v128 locals, exports) to emit the CPU kernels from TypeScript at run time, so
 * nothing has to be compiled or downloaded at build time.
 *
 * Functions are written with {@link Fn}, a stack-machine assembler whose methods append one
 * instruction each (names follow the text format: `f.i32_add()` is `i32.add`). Structured
 * control flow uses `block`/`loop`/`if_` … `end`; branch depths are counted as in the spec.
 */

/** Value types. */
export const I32 = 0x7f;
export const I64 = 0x7e;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof I64 | typeof F32 | typeof F64 | typeof V128;

/** Unsigned LEB128. */
function uleb(out: number[], v: number): void {
  do {
    let b = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
}

/** Signed LEB128 (32-bit range). */
function sleb(out: number[], v: number): void {
  v |= 0;
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return;
    }
    out.push(b | 0x80);
  }
}

function str(out: number[], s: string): void {
  const bytes = new TextEncoder().encode(s);
  uleb(out, bytes.length);
  for (const b of bytes) out.push(b);
}

/** log2 of a natural alignment in bytes. */
function alignLog(bytes: number): number {
  return bytes === 1 ? 0 : bytes === 2 ? 1 : bytes === 4 ? 2 : bytes === 8 ? 3 : 4;
}

/** One function body under construction. Parameters are locals 0 … params-1. */
export class Fn {
  readonly code: number[] = [];
  private readonly locals: ValType[] = [];

  constructor(
    readonly name: string,
    readonly params: ValType[],
    readonly results: ValType[],
    readonly index = -1,
  ) {}

  /** Declares a new local of type `t`; returns its index. */
  local(t: ValType): number {
    this.locals.push(t);
    return this.params.length + this.locals.length - 1;
  }

  /** Encoded body (locals + code + end). */
  body(): number[] {
    const out: number[] = [];
    // run-length groups of equal types
    const groups: [number, ValType][] = [];
    for (const t of this.locals) {
      const last = groups[groups.length - 1];
      if (last && last[1] === t) last[0]++;
      else groups.push([1, t]);
    }
    uleb(out, groups.length);
    for (const [n, t] of groups) {
      uleb(out, n);
      out.push(t);
    }
    const sized: number[] = [];
    uleb(sized, out.length + this.code.length + 1);
    return sized.concat(out, this.code, [0x0b]);
  }

  /** `memory.copy` (bulk memory): stack [dst, src, n] (bytes; the ranges may overlap). */
  memory_copy(): this {
    return this.op(0xfc, 0x0a, 0x00, 0x00);
  }

  /** `memory.fill` (bulk memory): stack [dst, byte value, n]. */
  memory_fill(): this {
    return this.op(0xfc, 0x0b, 0x00);
  }

  private op(...bytes: number[]): this {
    this.code.push(...bytes);
    return this;
  }
  private simd(op: number): this {
    this.code.push(0xfd);
    uleb(this.code, op);
    return this;
  }
  private mem(op: number, bytes: number, offset: number, simd = false): this {
    if (simd) this.simd(op);
    else this.code.push(op);
    uleb(this.code, alignLog(bytes));
    uleb(this.code, offset);
    return this;
  }

  // control
  block(): this {
    return this.op(0x02, 0x40);
  }
  loop(): this {
    return this.op(0x03, 0x40);
  }
  if_(): this {
    return this.op(0x04, 0x40);
  }
  else_(): this {
    return this.op(0x05);
  }
  end(): this {
    return this.op(0x0b);
  }
  br(depth: number): this {
    this.code.push(0x0c);
    uleb(this.code, depth);
    return this;
  }
  br_if(depth: number): this {
    this.code.push(0x0d);
    uleb(this.code, depth);
    return this;
  }
  return_(): this {
    return this.op(0x0f);
  }
  /** Calls function `fn` of the same module. */
  call(fn: Fn): this {
    this.code.push(0x10);
    uleb(this.code, fn.index);
    return this;
  }
  drop(): this {
    return this.op(0x1a);
  }
  select(): this {
    return this.op(0x1b);
  }

  // variables
  get(i: number): this {
    this.code.push(0x20);
    uleb(this.code, i);
    return this;
  }
  set(i: number): this {
    this.code.push(0x21);
    uleb(this.code, i);
    return this;
  }
  tee(i: number): this {
    this.code.push(0x22);
    uleb(this.code, i);
    return this;
  }

  // memory (offset in bytes; alignment hint = natural)
  i32_load(off = 0): this {
    return this.mem(0x28, 4, off);
  }
  f32_load(off = 0): this {
    return this.mem(0x2a, 4, off);
  }
  f64_load(off = 0): this {
    return this.mem(0x2b, 8, off);
  }
  i32_load8_u(off = 0): this {
    return this.mem(0x2d, 1, off);
  }
  i32_store(off = 0): this {
    return this.mem(0x36, 4, off);
  }
  f32_store(off = 0): this {
    return this.mem(0x38, 4, off);
  }
  f64_store(off = 0): this {
    return this.mem(0x39, 8, off);
  }
  i32_store8(off = 0): this {
    return this.mem(0x3a, 1, off);
  }
  v128_load(off = 0): this {
    return this.mem(0x00, 16, off, true);
  }
  v128_store(off = 0): this {
    return this.mem(0x0b, 16, off, true);
  }
  v128_load32_splat(off = 0): this {
    return this.mem(0x09, 4, off, true);
  }
  v128_load64_splat(off = 0): this {
    return this.mem(0x0a, 8, off, true);
  }
  v128_load64_zero(off = 0): this {
    return this.mem(0x5d, 8, off, true);
  }

  // constants
  i32_const(v: number): this {
    this.code.push(0x41);
    sleb(this.code, v);
    return this;
  }
  f32_const(v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    return this.op(0x43, ...b);
  }
  f64_const(v: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    return this.op(0x44, ...b);
  }

  // i32
  i32_eqz(): this {
    return this.op(0x45);
  }
  i32_eq(): this {
    return this.op(0x46);
  }
  i32_ne(): this {
    return this.op(0x47);
  }
  i32_lt_s(): this {
    return this.op(0x48);
  }
  i32_lt_u(): this {
    return this.op(0x49);
  }
  i32_gt_s(): this {
    return this.op(0x4a);
  }
  i32_le_s(): this {
    return this.op(0x4c);
  }
  i32_ge_s(): this {
    return this.op(0x4e);
  }
  i32_ge_u(): this {
    return this.op(0x4f);
  }
  i32_add(): this {
    return this.op(0x6a);
  }
  i32_sub(): this {
    return this.op(0x6b);
  }
  i32_mul(): this {
    return this.op(0x6c);
  }
  i32_div_s(): this {
    return this.op(0x6d);
  }
  i32_and(): this {
    return this.op(0x71);
  }
  i32_or(): this {
    return this.op(0x72);
  }
  i32_shl(): this {
    return this.op(0x74);
  }
  i32_shr_s(): this {
    return this.op(0x75);
  }
  i32_shr_u(): this {
    return this.op(0x76);
  }
  i32_rotl(): this {
    return this.op(0x77);
  }

  // scalar float
  f32_abs(): this {
    return this.op(0x8b);
  }
  f32_neg(): this {
    return this.op(0x8c);
  }
  f32_sqrt(): this {
    return this.op(0x91);
  }
  f32_add(): this {
    return this.op(0x92);
  }
  f32_sub(): this {
    return this.op(0x93);
  }
  f32_mul(): this {
    return this.op(0x94);
  }
  f32_div(): this {
    return this.op(0x95);
  }
  f32_min(): this {
    return this.op(0x96);
  }
  f32_max(): this {
    return this.op(0x97);
  }
  f64_abs(): this {
    return this.op(0x99);
  }
  f64_neg(): this {
    return this.op(0x9a);
  }
  f64_sqrt(): this {
    return this.op(0x9f);
  }
  f64_add(): this {
    return this.op(0xa0);
  }
  f64_sub(): this {
    return this.op(0xa1);
  }
  f64_mul(): this {
    return this.op(0xa2);
  }
  f64_div(): this {
    return this.op(0xa3);
  }
  f64_min(): this {
    return this.op(0xa4);
  }
  f64_max(): this {
    return this.op(0xa5);
  }
  f32_gt(): this {
    return this.op(0x5e);
  }
  f64_gt(): this {
    return this.op(0x64);
  }
  f64_lt(): this {
    return this.op(0x63);
  }
  f32_demote_f64(): this {
    return this.op(0xb6);
  }
  f32_convert_i32_s(): this {
    return this.op(0xb2);
  }
  f64_convert_i32_s(): this {
    return this.op(0xb7);
  }
  f64_promote_f32(): this {
    return this.op(0xbb);
  }
  f64_convert_i32_u(): this {
    return this.op(0xb8);
  }
  f32_ge(): this {
    return this.op(0x60);
  }
  f64_eq(): this {
    return this.op(0x61);
  }
  f64_ge(): this {
    return this.op(0x66);
  }
  i32_gt_u(): this {
    return this.op(0x4b);
  }
  i32_xor(): this {
    return this.op(0x73);
  }
  /** `i32.trunc_f64_s` (traps outside the i32 range and on NaN). */
  i32_trunc_f64_s(): this {
    return this.op(0xaa);
  }
  i32_wrap_i64(): this {
    return this.op(0xa7);
  }
  i64_extend_i32_u(): this {
    return this.op(0xad);
  }
  i64_shl(): this {
    return this.op(0x86);
  }
  i64_shr_u(): this {
    return this.op(0x88);
  }
  i64_const(v: number): this {
    this.code.push(0x42);
    sleb(this.code, v);
    return this;
  }
  i64_reinterpret_f64(): this {
    return this.op(0xbd);
  }
  f64_reinterpret_i64(): this {
    return this.op(0xbf);
  }

  // SIMD
  v128_const(bytes: ArrayLike<number>): this {
    this.simd(0x0c);
    for (let i = 0; i < 16; i++) this.code.push(bytes[i] & 0xff);
    return this;
  }
  /** v128.const with four equal f32 lanes. */
  f32x4_const(v: number): this {
    const b = new Uint8Array(16);
    const dv = new DataView(b.buffer);
    for (let i = 0; i < 4; i++) dv.setFloat32(4 * i, v, true);
    return this.v128_const(b);
  }
  /** v128.const with two equal f64 lanes. */
  f64x2_const(v: number): this {
    const b = new Uint8Array(16);
    const dv = new DataView(b.buffer);
    for (let i = 0; i < 2; i++) dv.setFloat64(8 * i, v, true);
    return this.v128_const(b);
  }
  /** v128.const with four equal i32 lanes. */
  i32x4_const(v: number): this {
    const b = new Uint8Array(16);
    const dv = new DataView(b.buffer);
    for (let i = 0; i < 4; i++) dv.setInt32(4 * i, v | 0, true);
    return this.v128_const(b);
  }
  /** v128.const with two equal i64 lanes (v must be a safe integer). */
  i64x2_const(v: number): this {
    const b = new Uint8Array(16);
    const dv = new DataView(b.buffer);
    for (let i = 0; i < 2; i++) dv.setBigInt64(8 * i, BigInt(v), true);
    return this.v128_const(b);
  }
  i8x16_shuffle(lanes: number[]): this {
    this.simd(0x0d);
    for (const l of lanes) this.code.push(l);
    return this;
  }
  v128_or(): this {
    return this.simd(0x50);
  }
  v128_xor(): this {
    return this.simd(0x51);
  }
  v128_not(): this {
    return this.simd(0x4d);
  }
  v128_andnot(): this {
    return this.simd(0x4f);
  }
  f32x4_eq(): this {
    return this.simd(0x41);
  }
  f32x4_ne(): this {
    return this.simd(0x42);
  }
  f32x4_lt(): this {
    return this.simd(0x43);
  }
  f64x2_eq(): this {
    return this.simd(0x47);
  }
  f64x2_ne(): this {
    return this.simd(0x48);
  }
  f64x2_lt(): this {
    return this.simd(0x49);
  }
  f32x4_nearest(): this {
    return this.simd(0x6a);
  }
  f64x2_nearest(): this {
    return this.simd(0x94);
  }
  f32x4_sqrt(): this {
    return this.simd(0xe3);
  }
  f64x2_sqrt(): this {
    return this.simd(0xef);
  }
  f32x4_pmin(): this {
    return this.simd(0xea);
  }
  f32x4_pmax(): this {
    return this.simd(0xeb);
  }
  f64x2_pmin(): this {
    return this.simd(0xf6);
  }
  f64x2_pmax(): this {
    return this.simd(0xf7);
  }
  i32x4_add(): this {
    return this.simd(0xae);
  }
  i32x4_shl(): this {
    return this.simd(0xab);
  }
  i32x4_trunc_sat_f32x4_s(): this {
    return this.simd(0xf8);
  }
  i32x4_trunc_sat_f64x2_s_zero(): this {
    return this.simd(0xfc);
  }
  i64x2_extend_low_i32x4_s(): this {
    return this.simd(0xc7);
  }
  i64x2_add(): this {
    return this.simd(0xce);
  }
  i64x2_shl(): this {
    return this.simd(0xcb);
  }
  f32x4_splat(): this {
    return this.simd(0x13);
  }
  f64x2_splat(): this {
    return this.simd(0x14);
  }
  f32x4_extract_lane(l: number): this {
    this.simd(0x1f);
    this.code.push(l);
    return this;
  }
  f64x2_extract_lane(l: number): this {
    this.simd(0x21);
    this.code.push(l);
    return this;
  }
  f32x4_replace_lane(l: number): this {
    this.simd(0x20);
    this.code.push(l);
    return this;
  }
  f64x2_replace_lane(l: number): this {
    this.simd(0x22);
    this.code.push(l);
    return this;
  }
  i32x4_extract_lane(l: number): this {
    this.simd(0x1b);
    this.code.push(l);
    return this;
  }
  f64x2_floor(): this {
    return this.simd(0x75);
  }
  f32x4_ge(): this {
    return this.simd(0x46);
  }
  f64x2_ge(): this {
    return this.simd(0x4c);
  }
  v128_and(): this {
    return this.simd(0x4e);
  }
  v128_bitselect(): this {
    return this.simd(0x52);
  }
  f32x4_gt(): this {
    return this.simd(0x44);
  }
  f32x4_le(): this {
    return this.simd(0x45);
  }
  f64x2_gt(): this {
    return this.simd(0x4a);
  }
  f32x4_demote_f64x2_zero(): this {
    return this.simd(0x5e);
  }
  f64x2_promote_low_f32x4(): this {
    return this.simd(0x5f);
  }
  f32x4_abs(): this {
    return this.simd(0xe0);
  }
  f32x4_neg(): this {
    return this.simd(0xe1);
  }
  f32x4_add(): this {
    return this.simd(0xe4);
  }
  f32x4_sub(): this {
    return this.simd(0xe5);
  }
  f32x4_mul(): this {
    return this.simd(0xe6);
  }
  f32x4_div(): this {
    return this.simd(0xe7);
  }
  f32x4_min(): this {
    return this.simd(0xe8);
  }
  f32x4_max(): this {
    return this.simd(0xe9);
  }
  f64x2_abs(): this {
    return this.simd(0xec);
  }
  f64x2_neg(): this {
    return this.simd(0xed);
  }
  f64x2_add(): this {
    return this.simd(0xf0);
  }
  f64x2_sub(): this {
    return this.simd(0xf1);
  }
  f64x2_mul(): this {
    return this.simd(0xf2);
  }
  f64x2_div(): this {
    return this.simd(0xf3);
  }
  f64x2_min(): this {
    return this.simd(0xf4);
  }
  f64x2_max(): this {
    return this.simd(0xf5);
  }
  // relaxed SIMD (a separate proposal: modules using these validate only where it is enabled)
  /** `f32x4.relaxed_madd(a, b, c)` = a·b + c, fused (one rounding) or not, as the hardware does it. */
  f32x4_relaxed_madd(): this {
    return this.simd(0x105);
  }
  /** `f64x2.relaxed_madd(a, b, c)` = a·b + c, fused or not. */
  f64x2_relaxed_madd(): this {
    return this.simd(0x107);
  }
  /** `i32x4.relaxed_trunc_f32x4_s`: as `trunc_sat` for lanes in the i32 range; NaN and out-of-range lanes as the hardware gives them. */
  i32x4_relaxed_trunc_f32x4_s(): this {
    return this.simd(0x101);
  }
  /** `i32x4.relaxed_trunc_f64x2_s_zero`: as `trunc_sat_…_zero` for lanes in the i32 range. */
  i32x4_relaxed_trunc_f64x2_s_zero(): this {
    return this.simd(0x103);
  }
}

/** Limits of the imported shared memory, in 64 KiB pages. */
export interface MemoryLimits {
  initial: number;
  maximum: number;
  /** Whether the memory is shared between threads (default true; false where SharedArrayBuffer is unavailable). */
  shared?: boolean;
}

/**
 * A module of functions that all use one imported shared memory `env.mem`. Every function is
 * exported under its name.
 */
export class ModuleBuilder {
  private readonly fns: Fn[] = [];

  /** Starts a new function; write its body through the returned {@link Fn}. */
  fn(name: string, params: ValType[], results: ValType[] = []): Fn {
    const f = new Fn(name, params, results, this.fns.length);
    this.fns.push(f);
    return f;
  }

  /** The module's bytes. */
  bytes(mem: MemoryLimits): Uint8Array<ArrayBuffer> {
    const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    const section = (id: number, content: number[]) => {
      out.push(id);
      uleb(out, content.length);
      out.push(...content);
    };
    // types: one per function (duplicates are allowed)
    const types: number[] = [];
    uleb(types, this.fns.length);
    for (const f of this.fns) {
      types.push(0x60);
      uleb(types, f.params.length);
      types.push(...f.params);
      uleb(types, f.results.length);
      types.push(...f.results);
    }
    section(1, types);
    const imports: number[] = [];
    uleb(imports, 1);
    str(imports, 'env');
    str(imports, 'mem');
    imports.push(0x02, mem.shared === false ? 0x01 : 0x03); // memory, limits: (shared) with maximum
    uleb(imports, mem.initial);
    uleb(imports, mem.maximum);
    section(2, imports);
    const funcs: number[] = [];
    uleb(funcs, this.fns.length);
    this.fns.forEach((_, i) => uleb(funcs, i));
    section(3, funcs);
    const exports: number[] = [];
    uleb(exports, this.fns.length);
    this.fns.forEach((f, i) => {
      str(exports, f.name);
      exports.push(0x00);
      uleb(exports, i);
    });
    section(7, exports);
    const code: number[] = [];
    uleb(code, this.fns.length);
    // large bodies: avoid spreading huge arrays into push()
    const bodies = this.fns.map((f) => f.body());
    const head = code;
    const total = head.length + bodies.reduce((n, b) => n + b.length, 0);
    out.push(10);
    uleb(out, total);
    const res = new Uint8Array(out.length + total);
    res.set(out, 0);
    let at = out.length;
    res.set(head, at);
    at += head.length;
    for (const b of bodies) {
      res.set(b, at);
      at += b.length;
    }
    return res;
  }
}
