/**
 * The loops of the matmul ceiling micro-benchmark (bench/ceiling.ts), written with the CPU
 * backend's wasm writer: each measures how many f32 multiply-adds per second one thread can
 * issue with one instruction set, with enough independent accumulators to hide the latency.
 *
 * - `chain<N>`: N accumulators, `acc = acc·s + t` (registers only, no memory access).
 * - `outer<R>x<V>`: the register-tile loop of a gemm micro-kernel over packed panels that stay
 *   in L1: per step V vector loads and R `load32_splat`s, then R·V `acc[r][v] += a_r · b_v`,
 *   pointers advancing as in the kernel — the most a kernel of that tile could do if packing,
 *   cache misses and C traffic cost nothing.
 *
 * Each comes in `simd128` form (f32x4.mul then f32x4.add) and, where relaxed SIMD validates, in
 * `relaxed` form (one f32x4.relaxed_madd). A loop `fn(iters)` runs `iters` iterations and returns
 * a lane of the summed accumulators (so the work cannot be dropped); {@link fillOperands} writes
 * the values it reads.
 */
import { F32, I32, V128, type Fn, ModuleBuilder } from '../src/tensor/backends/cpu/wasm/builder.js';

/** Instruction sets a loop may use. */
export type Isa = 'simd128' | 'relaxed';

/** One loop of the module. */
export interface CeilingLoop {
  /** export name, e.g. `simd128_outer4x2` */
  name: string;
  isa: Isa;
  /** register-only chains, or the tile loop over L1 panels */
  kind: 'chain' | 'outer';
  /** accumulator rows × vectors per row (chain: CHAINS × 1) */
  R: number;
  V: number;
  /** flops (2 per multiply-add per lane) of one iteration */
  flopsPerIter: number;
}

/** Copies of the chain step per loop iteration. */
const CHAIN_UNROLL = 4;
/** Steps (k) of one pass over the outer-product panels. */
const OUTER_STEPS = 64;
/** Byte addresses: the chains' s and t; the A panel (≤ 8 floats per step); the B panel (≤ 4 vectors per step). */
const CHAIN_ST = 0;
const PANEL_A = 64;
const PANEL_B = PANEL_A + OUTER_STEPS * 32;
const PANEL_END = PANEL_B + OUTER_STEPS * 64;
/** Where the loops read (byte addresses), for tests that recompute their results. */
export const CEILING_LAYOUT = { CHAIN_ST, PANEL_A, PANEL_B } as const;

/** Register-tile shapes (rows × vectors) tried: those a 15-register x64 file can hold. */
const OUTER_SIMD128: [number, number][] = [
  [4, 2],
  [3, 3],
  [2, 4],
  [3, 4],
];
const OUTER_RELAXED: [number, number][] = [
  [4, 2],
  [3, 3],
  [2, 4],
  [3, 4],
  [6, 2],
];
const CHAINS = 12;

/** `acc = acc·s + t` (chain step) in the loop's instruction set. */
function chainStep(f: Fn, isa: Isa, acc: number, s: number, t: number): void {
  f.get(acc).get(s);
  if (isa === 'relaxed') f.get(t).f32x4_relaxed_madd();
  else f.f32x4_mul().get(t).f32x4_add();
  f.set(acc);
}

/** `acc = acc + a·b` (kernel step) in the loop's instruction set. */
function kernelStep(f: Fn, isa: Isa, acc: number, a: number, b: number): void {
  if (isa === 'relaxed') f.get(a).get(b).get(acc).f32x4_relaxed_madd();
  else f.get(acc).get(a).get(b).f32x4_mul().f32x4_add();
  f.set(acc);
}

/** Sets every accumulator to a distinct small value. */
function initAccs(f: Fn, accs: number[]): void {
  accs.forEach((a, i) =>
    f
      .f32_const(0.25 + i / 64)
      .f32x4_splat()
      .set(a),
  );
}

/** Leaves lane 0 of the sum of `accs` on the stack (the function's result). */
function reduceAccs(f: Fn, accs: number[]): void {
  f.get(accs[0]);
  for (let i = 1; i < accs.length; i++) f.get(accs[i]).f32x4_add();
  f.f32x4_extract_lane(0);
}

function emitChain(mb: ModuleBuilder, isa: Isa): CeilingLoop {
  const name = `${isa}_chain${CHAINS}`;
  const f = mb.fn(name, [I32], [F32]);
  const s = f.local(V128),
    t = f.local(V128),
    k = f.local(I32);
  const accs = Array.from({ length: CHAINS }, () => f.local(V128));
  // s, t from memory so that nothing is a compile-time constant; every acc converges to t / (1 - s)
  f.i32_const(CHAIN_ST).v128_load32_splat(0).set(s);
  f.i32_const(CHAIN_ST).v128_load32_splat(4).set(t);
  initAccs(f, accs);
  f.get(0).set(k);
  f.block().loop();
  f.get(k).i32_eqz().br_if(1);
  for (let u = 0; u < CHAIN_UNROLL; u++) for (const a of accs) chainStep(f, isa, a, s, t);
  f.get(k).i32_const(1).i32_sub().set(k);
  f.br(0);
  f.end().end();
  reduceAccs(f, accs);
  return { name, isa, kind: 'chain', R: CHAINS, V: 1, flopsPerIter: CHAIN_UNROLL * CHAINS * 8 };
}

function emitOuter(mb: ModuleBuilder, isa: Isa, R: number, V: number): CeilingLoop {
  const name = `${isa}_outer${R}x${V}`;
  const f = mb.fn(name, [I32], [F32]);
  const it = f.local(I32),
    k = f.local(I32),
    ap = f.local(I32),
    bp = f.local(I32);
  const accs = Array.from({ length: R * V }, () => f.local(V128));
  const b = Array.from({ length: V }, () => f.local(V128));
  const a = f.local(V128);
  initAccs(f, accs);
  f.get(0).set(it);
  f.block().loop();
  {
    f.get(it).i32_eqz().br_if(1);
    f.i32_const(PANEL_A).set(ap);
    f.i32_const(PANEL_B).set(bp);
    f.i32_const(OUTER_STEPS).set(k);
    f.block().loop();
    {
      f.get(k).i32_eqz().br_if(1);
      for (let v = 0; v < V; v++)
        f.get(bp)
          .v128_load(16 * v)
          .set(b[v]);
      for (let r = 0; r < R; r++) {
        f.get(ap)
          .v128_load32_splat(4 * r)
          .set(a);
        for (let v = 0; v < V; v++) kernelStep(f, isa, accs[r * V + v], a, b[v]);
      }
      f.get(ap)
        .i32_const(4 * R)
        .i32_add()
        .set(ap);
      f.get(bp)
        .i32_const(16 * V)
        .i32_add()
        .set(bp);
      f.get(k).i32_const(1).i32_sub().set(k);
      f.br(0);
    }
    f.end().end();
    f.get(it).i32_const(1).i32_sub().set(it);
    f.br(0);
  }
  f.end().end();
  reduceAccs(f, accs);
  return { name, isa, kind: 'outer', R, V, flopsPerIter: OUTER_STEPS * R * V * 8 };
}

/** The module bytes (one imported, unshared memory of one page) and its loops. */
export function buildCeilingModule(relaxed: boolean): { bytes: Uint8Array<ArrayBuffer>; loops: CeilingLoop[] } {
  const mb = new ModuleBuilder();
  const loops: CeilingLoop[] = [];
  for (const isa of relaxed ? (['simd128', 'relaxed'] as const) : (['simd128'] as const)) {
    loops.push(emitChain(mb, isa));
    for (const [R, V] of isa === 'relaxed' ? OUTER_RELAXED : OUTER_SIMD128) loops.push(emitOuter(mb, isa, R, V));
  }
  return { bytes: mb.bytes({ initial: 1, maximum: 1, shared: false }), loops };
}

/**
 * Fills the operands: s = 0.5, t = 0.25 for the chains (each converges to 0.5), small positive
 * floats in the panels (sums grow by < 1e-3 per step: no overflow in any run).
 */
export function fillOperands(memory: WebAssembly.Memory): void {
  const v = new Float32Array(memory.buffer, 0, PANEL_END / 4);
  for (let i = PANEL_A / 4; i < v.length; i++) v[i] = 1e-2 * (1 + (i % 16) / 16);
  v[CHAIN_ST / 4] = 0.5;
  v[CHAIN_ST / 4 + 1] = 0.25;
}
