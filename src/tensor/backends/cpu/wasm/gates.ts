/**
 * WebAssembly SIMD kernels of the Mega layer's gates (see `FusedKernels` in backend.ts): map
 * functions (runtime.ts `mapTask`) `gate_<kernel>_<dt>(s, e, tbl)` over rows of operands that
 * lie in the wasm memory in place (resident tensors, including the layer's strided pieces and
 * transposed views) or staged.
 *
 * The i32 table at `tbl`: `rows, nb, W`, then per operand `addr, sa, sb` (bytes): the operands
 * share the shape `rows × W` read as `(rows / nb) × nb` rows, row r = a·nb + b at
 * `addr + a·sa + b·sb`, W unit-stride elements each.
 *
 * - siluGrad, siluMul, siluMulGrad, gateOut, gateOutGrad (silu; `m` variants with a dropout
 *   mask): rows [s, e); operands the inputs in the order of the kernel's arguments (mask last),
 *   then the outputs.
 * - `gate_qk`: rows [s, e); operands z, out (rows of 2W: q then k), gb = [γ0 | γ1 | β0 | β1]
 *   (address only).
 * - `gate_qkgrad`: blocks [s, e) of {@link QK_BLOCK} rows; operands z, gq, gk, dz, gb = [γ0 | γ1]
 *   and acc (addresses only): per block the float64 sums `[Σ gq·silu(z) | Σ gk·silu(z) | Σ gq | Σ gk]`
 *   (4W values) at `acc + block·4W·8`. Blocks are fixed, so the parameter gradients do not depend
 *   on how the blocks are split among threads.
 *
 * Arithmetic in the element type; exp is vector.ts `emitExp` (within 2 ulp).
 */
import { I32, V128, type Fn, type ModuleBuilder } from './builder.js';
import { emitExp, expLocals, HIGH_HALF, inc, Simd, whileLt, type DT, type ExpLocals } from './vector.js';

/** Rows per partial-sum block of `gate_qkgrad`. */
export const QK_BLOCK = 32;

/** The flat gate kernels: inputs and outputs (mask variants add one input). */
const FLAT = {
  siluGrad: { ins: 2, outs: 1 },
  siluMul: { ins: 2, outs: 1 },
  siluMulGrad: { ins: 3, outs: 2 },
  gateOut: { ins: 4, outs: 1 },
  gateOutGrad: { ins: 5, outs: 3 },
} as const;
/** A flat gate kernel. */
export type FlatGate = keyof typeof FLAT;

/** Map function name of a flat gate kernel. */
export function flatGateName(kernel: FlatGate, masked: boolean, dt: DT): string {
  return `gate_${kernel}${masked ? '_m' : ''}_${dt}`;
}

/** σ(x) of the v128 on the stack: 1 / (1 + exp(−x)). */
function sigmoid(v: Simd, L: ExpLocals, t: number): void {
  v.neg();
  emitExp(v, L);
  v.c(1);
  v.add();
  v.f.set(t);
  v.c(1);
  v.f.get(t);
  v.div();
}

/**
 * The body of one flat kernel on v128 values: `ld(k)` pushes input k, `st(k, push)` stores what
 * `push` leaves as output k. Temporaries are v128 locals.
 */
function flatBody(
  v: Simd,
  kernel: FlatGate,
  masked: boolean,
  L: ExpLocals,
  T: number[],
  ld: (k: number) => void,
  st: (k: number, push: () => void) => void,
): void {
  const f = v.f;
  const [a, sa, su, g, w, t] = T;
  /** sa = σ(a) for a on the stack (a kept in local `a`). */
  const sigOf = (dst: number) => {
    f.tee(a);
    sigmoid(v, L, t);
    f.set(dst);
  };
  /** 1 + a·(1 − sa): silu'(a)/σ(a). */
  const dsilu = () => {
    v.c(1);
    f.get(a);
    v.c(1);
    f.get(sa);
    v.sub();
    v.mul();
    v.add();
  };
  switch (kernel) {
    case 'siluGrad': // x, g → g·σ(x)·(1 + x(1 − σ(x)))
      ld(0);
      sigOf(sa);
      st(0, () => {
        ld(1);
        f.get(sa);
        v.mul();
        dsilu();
        v.mul();
      });
      return;
    case 'siluMul': // h, r → h·r·σ(r)
      ld(1);
      sigOf(sa);
      st(0, () => {
        ld(0);
        f.get(a);
        v.mul();
        f.get(sa);
        v.mul();
      });
      return;
    case 'siluMulGrad': // h, r, g → g·r·σ(r), g·h·σ(r)·(1 + r(1 − σ(r)))
      ld(1);
      sigOf(sa);
      ld(2);
      f.set(g);
      st(0, () => {
        f.get(g).get(a);
        v.mul();
        f.get(sa);
        v.mul();
      });
      st(1, () => {
        f.get(g);
        ld(0);
        v.mul();
        f.get(sa);
        v.mul();
        dsilu();
        v.mul();
      });
      return;
    case 'gateOut': // x, u, hx, y [, m] → x + σ(u)·(silu(hx + y)·m − x)
      ld(2);
      ld(3);
      v.add();
      sigOf(sa);
      ld(1);
      sigmoid(v, L, t);
      f.set(su);
      // w = silu(a)·m − x
      f.get(a).get(sa);
      v.mul();
      if (masked) {
        ld(4);
        v.mul();
      }
      ld(0);
      v.sub();
      f.set(w);
      st(0, () => {
        ld(0);
        f.get(su).get(w);
        v.mul();
        v.add();
      });
      return;
    case 'gateOutGrad': // x, u, hx, y, g [, m] → dx, du, da
      ld(2);
      ld(3);
      v.add();
      sigOf(sa);
      ld(1);
      sigmoid(v, L, t);
      f.set(su);
      ld(4);
      f.set(g);
      // dx = g·(1 − su)
      st(0, () => {
        f.get(g);
        v.c(1);
        f.get(su);
        v.sub();
        v.mul();
      });
      // w = g·su (·m)
      f.get(g).get(su);
      v.mul();
      if (masked) {
        ld(5);
        v.mul();
      }
      f.set(w);
      // da = w·σ(a)·(1 + a(1 − σ(a)))
      st(2, () => {
        f.get(w).get(sa);
        v.mul();
        dsilu();
        v.mul();
      });
      // du = g·(silu(a)·m − x)·su·(1 − su)
      st(1, () => {
        f.get(a).get(sa);
        v.mul();
        if (masked) {
          ld(5);
          v.mul();
        }
        ld(0);
        v.sub();
        f.get(g);
        v.mul();
        f.get(su);
        v.mul();
        v.c(1);
        f.get(su);
        v.sub();
        v.mul();
      });
      return;
  }
}

/** Locals of one operand: table entry (address, strides of the two row axes, bytes) and its row pointer. */
interface RowOperand {
  addr: number;
  sa: number;
  sb: number;
  p: number;
}

/** Loads the table header (rows, nb, W) and `n` operand entries into locals. */
function loadTable(f: Fn, tbl: number, n: number): { rows: number; nb: number; W: number; ops: RowOperand[] } {
  const loc = () => f.local(I32);
  const rows = loc(),
    nb = loc(),
    W = loc();
  f.get(tbl).i32_load(0).set(rows);
  f.get(tbl).i32_load(4).set(nb);
  f.get(tbl).i32_load(8).set(W);
  const ops = Array.from({ length: n }, (_, k) => {
    const o = { addr: loc(), sa: loc(), sb: loc(), p: loc() };
    f.get(tbl)
      .i32_load(12 + 12 * k)
      .set(o.addr);
    f.get(tbl)
      .i32_load(16 + 12 * k)
      .set(o.sa);
    f.get(tbl)
      .i32_load(20 + 12 * k)
      .set(o.sb);
    return o;
  });
  return { rows, nb, W, ops };
}

/** Row pointers of row r (= a·nb + b): p = addr + a·sa + b·sb for every operand. */
function rowPointers(f: Fn, r: number, nb: number, ops: readonly RowOperand[], a: number, b: number): void {
  f.get(r).get(nb).i32_div_s().set(a);
  f.get(r).get(a).get(nb).i32_mul().i32_sub().set(b);
  for (const o of ops) f.get(o.addr).get(a).get(o.sa).i32_mul().i32_add().get(b).get(o.sb).i32_mul().i32_add().set(o.p);
}

/** Loops the byte offset `j` over a row of `W` elements: whole vectors, then the tail one by one. */
function rowLoop(v: Simd, W: number, j: number, jv: number, je: number, vec: () => void, tail: () => void): void {
  const f = v.f;
  f.get(W).i32_const(v.E).i32_mul().set(je);
  f.get(W).i32_const(-v.lanes).i32_and().i32_const(v.E).i32_mul().set(jv);
  f.i32_const(0).set(j);
  whileLt(f, j, jv, () => {
    vec();
    inc(f, j, 16);
  });
  whileLt(f, j, je, () => {
    tail();
    inc(f, j, v.E);
  });
}

/** `gate_<kernel>[_m]_<dt>(s, e, tbl)`: rows [s, e). */
function emitFlat(mb: ModuleBuilder, dt: DT, kernel: FlatGate, masked: boolean): string {
  const name = flatGateName(kernel, masked, dt);
  const f = mb.fn(name, [I32, I32, I32]);
  const v = new Simd(f, dt);
  const [s, e, tbl] = [0, 1, 2];
  const ins = FLAT[kernel].ins + (masked ? 1 : 0),
    outs = FLAT[kernel].outs;
  const { nb, W, ops } = loadTable(f, tbl, ins + outs);
  const r = f.local(I32),
    a = f.local(I32),
    b = f.local(I32),
    j = f.local(I32),
    jv = f.local(I32),
    je = f.local(I32);
  const L = expLocals(f);
  const T = Array.from({ length: 6 }, () => f.local(V128));
  const at = (k: number) => f.get(ops[k].p).get(j).i32_add();
  f.get(s).set(r);
  whileLt(f, r, e, () => {
    rowPointers(f, r, nb, ops, a, b);
    rowLoop(
      v,
      W,
      j,
      jv,
      je,
      () =>
        flatBody(
          v,
          kernel,
          masked,
          L,
          T,
          (k) => at(k).v128_load(0),
          (k, push) => {
            at(ins + k);
            push();
            f.v128_store(0);
          },
        ),
      () =>
        flatBody(
          v,
          kernel,
          masked,
          L,
          T,
          (k) => {
            at(k);
            v.splat();
          },
          (k, push) => {
            at(ins + k);
            push();
            v.store0();
          },
        ),
    );
    inc(f, r, 1);
  });
  return name;
}

/** `gate_qk_<dt>(s, e, tbl)`: rows [s, e); operands z, out (2W per row), gb. */
function emitQK(mb: ModuleBuilder, dt: DT): string {
  const name = `gate_qk_${dt}`;
  const f = mb.fn(name, [I32, I32, I32]);
  const v = new Simd(f, dt);
  const [s, e, tbl] = [0, 1, 2];
  const { nb, W, ops } = loadTable(f, tbl, 3);
  const [oz, oo, og] = ops;
  const r = f.local(I32),
    a = f.local(I32),
    b = f.local(I32),
    j = f.local(I32),
    jv = f.local(I32),
    je = f.local(I32),
    zb = f.local(I32);
  const L = expLocals(f);
  const x = f.local(V128),
    sv = f.local(V128),
    t = f.local(V128);
  f.get(W).i32_const(v.E).i32_mul().set(zb);
  /** s = silu(z[j]); out[j] = s·γ0 + β0, out[Z + j] = s·γ1 + β1 (byte offsets). */
  const body = (load: () => void, store: () => void) => {
    f.get(oz.p).get(j).i32_add();
    load();
    f.tee(x);
    sigmoid(v, L, t);
    f.get(x);
    v.mul();
    f.set(sv);
    for (const half of [0, 1]) {
      f.get(oo.p).get(j).i32_add();
      if (half) f.get(zb).i32_add();
      f.get(sv);
      f.get(og.addr).get(j).i32_add();
      if (half) f.get(zb).i32_add();
      load();
      v.mul();
      f.get(og.addr)
        .get(j)
        .i32_add()
        .get(zb)
        .i32_const(2 + half)
        .i32_mul()
        .i32_add();
      load();
      v.add();
      store();
    }
  };
  f.get(s).set(r);
  whileLt(f, r, e, () => {
    rowPointers(f, r, nb, [oz, oo], a, b);
    rowLoop(
      v,
      W,
      j,
      jv,
      je,
      () =>
        body(
          () => f.v128_load(0),
          () => f.v128_store(0),
        ),
      () =>
        body(
          () => v.splat(),
          () => v.store0(),
        ),
    );
    inc(f, r, 1);
  });
  return name;
}

/** `gate_qkgrad_<dt>(s, e, tbl)`: blocks [s, e) of {@link QK_BLOCK} rows; operands z, gq, gk, dz, gb, acc. */
function emitQKGrad(mb: ModuleBuilder, dt: DT): string {
  const name = `gate_qkgrad_${dt}`;
  const f = mb.fn(name, [I32, I32, I32]);
  const v = new Simd(f, dt);
  const E = v.E;
  const [s, e, tbl] = [0, 1, 2];
  const { rows, nb, W, ops } = loadTable(f, tbl, 6);
  const [oz, oq, ok, od, og, oacc] = ops;
  const r = f.local(I32),
    rEnd = f.local(I32),
    a = f.local(I32),
    b = f.local(I32),
    j = f.local(I32),
    jv = f.local(I32),
    je = f.local(I32),
    zb = f.local(I32),
    pa = f.local(I32);
  const L = expLocals(f);
  const x = f.local(V128),
    sg = f.local(V128),
    q = f.local(V128),
    k = f.local(V128),
    sv = f.local(V128),
    t = f.local(V128);
  f.get(W).i32_const(E).i32_mul().set(zb);
  f.get(s).i32_const(QK_BLOCK).i32_mul().set(r);
  f.get(e).i32_const(QK_BLOCK).i32_mul().set(rEnd);
  f.get(rEnd).get(rows).get(rEnd).get(rows).i32_lt_s().select().set(rEnd);
  /** Byte address of acc slot c at element j of the block. */
  const slot = (c: number) => f.get(pa).get(W).i32_const(c).i32_mul().get(j).i32_const(E).i32_div_s().i32_add().i32_const(8).i32_mul().i32_add();
  /** Adds the float64 value(s) of v128 `val` (lanes j…) into acc slot c (a vector step). */
  const addVec = (c: number, val: number) => {
    if (dt === 'f32') {
      slot(c);
      slot(c).v128_load(0);
      f.get(val).f64x2_promote_low_f32x4().f64x2_add().v128_store(0);
      slot(c);
      slot(c).v128_load(16);
      f.get(val).get(val).i8x16_shuffle(HIGH_HALF).f64x2_promote_low_f32x4().f64x2_add().v128_store(16);
    } else {
      slot(c);
      slot(c).v128_load(0);
      f.get(val).f64x2_add().v128_store(0);
    }
  };
  /** Adds lane 0 of `val` into acc slot c (a tail element). */
  const addLane = (c: number, val: number) => {
    slot(c);
    slot(c).f64_load(0);
    if (dt === 'f32') f.get(val).f32x4_extract_lane(0).f64_promote_f32();
    else f.get(val).f64x2_extract_lane(0);
    f.f64_add().f64_store(0);
  };
  const body = (load: () => void, store: () => void, add: (c: number, val: number) => void) => {
    const at = (o: RowOperand) => f.get(o.p).get(j).i32_add();
    at(oz);
    load();
    f.tee(x);
    sigmoid(v, L, t);
    f.set(sg);
    at(oq);
    load();
    f.set(q);
    at(ok);
    load();
    f.set(k);
    // dz = (q·γ0 + k·γ1)·σ·(1 + z(1 − σ))
    at(od);
    f.get(q).get(og.addr).get(j).i32_add();
    load();
    v.mul();
    f.get(k).get(og.addr).get(j).i32_add().get(zb).i32_add();
    load();
    v.mul();
    v.add();
    f.get(sg);
    v.mul();
    v.c(1);
    f.get(x);
    v.c(1);
    f.get(sg);
    v.sub();
    v.mul();
    v.add();
    v.mul();
    store();
    // parameter sums: s = z·σ
    f.get(x).get(sg);
    v.mul();
    f.set(sv);
    f.get(q).get(sv);
    v.mul();
    f.set(t);
    add(0, t);
    f.get(k).get(sv);
    v.mul();
    f.set(t);
    add(1, t);
    add(2, q);
    add(3, k);
  };
  whileLt(f, r, rEnd, () => {
    // the block's accumulators: acc + (r / QK_BLOCK)·4W·8
    f.get(oacc.addr).get(r).i32_const(QK_BLOCK).i32_div_s().get(W).i32_const(32).i32_mul().i32_mul().i32_add().set(pa);
    rowPointers(f, r, nb, [oz, oq, ok, od], a, b);
    rowLoop(
      v,
      W,
      j,
      jv,
      je,
      () =>
        body(
          () => f.v128_load(0),
          () => f.v128_store(0),
          addVec,
        ),
      () =>
        body(
          () => v.splat(),
          () => v.store0(),
          addLane,
        ),
    );
    inc(f, r, 1);
  });
  return name;
}

/** Emits every gate map function; returns their names in dispatch-table order. */
export function emitGates(mb: ModuleBuilder): string[] {
  const names: string[] = [];
  for (const dt of ['f32', 'f64'] as const) {
    for (const k of Object.keys(FLAT) as FlatGate[]) {
      names.push(emitFlat(mb, dt, k, false));
      if (k === 'gateOut' || k === 'gateOutGrad') names.push(emitFlat(mb, dt, k, true));
    }
    names.push(emitQK(mb, dt));
    names.push(emitQKGrad(mb, dt));
  }
  return names;
}
