/**
 * WebAssembly SIMD elementwise kernels ("map" functions: every one takes a task range `[s, e)`
 * first, so the pool can split it; see runtime.ts `mapTask`). The row reductions and softmax
 * (reduce.ts) are map functions too; {@link emitElementwise} emits them all, in dispatch order.
 *
 * - `un_<op>_<dt>(s, e, x, out)`: out[i] = op(x[i]), contiguous, for i ∈ [s, e).
 * - `bin_<op>_<dt>_<pat>(s, e, a, b, out, inner, aso, bso)`: output row-major outer × inner,
 *   flat indices [s, e); operand element (o, j) at `a + (o·aso + j·[pat='v'])·es` — `v` walks the
 *   inner axis, `s` repeats one value per row (a column broadcast).
 *
 * exp is a range-reduced polynomial (see vector.ts `emitExp`): within 2 ulp of Math.exp.
 */
import { I32, V128, type ModuleBuilder } from './builder.js';
import { emitLaplaceMaps } from './laplace.js';
import { emitLogSoftmaxMaps } from './logsoftmax.js';
import { emitColSum, emitRowSum, emitSoftmax, emitSoftmaxGrad } from './reduce.js';
import { emitExp, expLocals, inc, rowSegment, Simd, whileLt, type DT, type ExpLocals } from './vector.js';

/** Unary ops with SIMD code. */
export const SIMD_UNARY = ['neg', 'exp', 'sigmoid', 'silu', 'square', 'abs', 'relu', 'recip', 'sqrt', 'rsqrt', 'step'] as const;
/** A unary op with SIMD code. */
export type SimdUnary = (typeof SIMD_UNARY)[number];
/** Binary ops with SIMD code. */
export const SIMD_BINARY = ['add', 'sub', 'mul', 'div'] as const;
/** A binary op with SIMD code. */
export type SimdBinary = (typeof SIMD_BINARY)[number];
/** Broadcast patterns of the binary kernels (inner stride of a, of b: v = 1, s = 0). */
export const PATTERNS = ['vv', 'vs', 'sv'] as const;
/** A broadcast pattern of the binary kernels. */
export type Pattern = (typeof PATTERNS)[number];

/** Emits op(x) for the v128 on the stack. */
function emitUnary(v: Simd, op: SimdUnary, L: ExpLocals, t: number): void {
  const f = v.f;
  switch (op) {
    case 'neg':
      v.neg();
      return;
    case 'abs':
      v.abs();
      return;
    case 'square':
      f.tee(t).get(t);
      v.mul();
      return;
    case 'sqrt':
      v.sqrt();
      return;
    case 'recip':
      f.set(t);
      v.c(1);
      f.get(t);
      v.div();
      return;
    case 'rsqrt':
      v.sqrt();
      f.set(t);
      v.c(1);
      f.get(t);
      v.div();
      return;
    case 'relu':
      // x > 0 or NaN ? x : +0
      f.set(t);
      f.get(t);
      v.c(0);
      f.get(t);
      v.c(0);
      v.gt();
      f.get(t).get(t);
      v.ne();
      f.v128_or();
      f.v128_bitselect();
      return;
    case 'step':
      f.set(t);
      v.c(1);
      f.get(t);
      v.c(0);
      v.gt();
      f.v128_and();
      return;
    case 'exp':
      emitExp(v, L);
      return;
    case 'sigmoid':
      // 1 / (1 + exp(-x))
      v.neg();
      emitExp(v, L);
      v.c(1);
      v.add();
      f.set(t);
      v.c(1);
      f.get(t);
      v.div();
      return;
    case 'silu':
      // x / (1 + exp(-x))
      f.tee(t);
      v.neg();
      emitExp(v, L);
      v.c(1);
      v.add();
      f.set(L.n); // reuse as temp
      f.get(t).get(L.n);
      v.div();
      return;
  }
}

/** `un_<op>_<dt>(s, e, x, out)`. */
function emitUnaryMap(mb: ModuleBuilder, dt: DT, op: SimdUnary): string {
  const name = `un_${op}_${dt}`;
  const f = mb.fn(name, [I32, I32, I32, I32]);
  const v = new Simd(f, dt);
  const [s, e, x, out] = [0, 1, 2, 3];
  const px = f.local(I32),
    po = f.local(I32),
    pe = f.local(I32),
    pv = f.local(I32);
  const L = expLocals(f);
  const t = f.local(V128);
  // byte pointers
  f.get(x).get(s).i32_const(v.E).i32_mul().i32_add().set(px);
  f.get(out).get(s).i32_const(v.E).i32_mul().i32_add().set(po);
  f.get(out).get(e).i32_const(v.E).i32_mul().i32_add().set(pe);
  // vector end: po + floor((e - s)/lanes)*16 (whole vectors only: never past e)
  f.get(po).get(e).get(s).i32_sub().i32_const(-v.lanes).i32_and().i32_const(v.E).i32_mul().i32_add().set(pv);
  whileLt(f, po, pv, () => {
    f.get(po).get(px).v128_load(0);
    emitUnary(v, op, L, t);
    f.v128_store(0);
    inc(f, px, 16);
    inc(f, po, 16);
  });
  whileLt(f, po, pe, () => {
    f.get(po).get(px);
    v.splat();
    emitUnary(v, op, L, t);
    v.store0();
    inc(f, px, v.E);
    inc(f, po, v.E);
  });
  return name;
}

function emitBinaryOp(v: Simd, op: SimdBinary): void {
  switch (op) {
    case 'add':
      v.add();
      return;
    case 'sub':
      v.sub();
      return;
    case 'mul':
      v.mul();
      return;
    case 'div':
      v.div();
      return;
  }
}

/** `bin_<op>_<dt>_<pat>(s, e, a, b, out, inner, aso, bso)`. */
function emitBinaryMap(mb: ModuleBuilder, dt: DT, op: SimdBinary, pat: Pattern): string {
  const name = `bin_${op}_${dt}_${pat}`;
  const f = mb.fn(name, [I32, I32, I32, I32, I32, I32, I32, I32]);
  const v = new Simd(f, dt);
  const E = v.E;
  const [s, e, a, b, out, inner, aso, bso] = [0, 1, 2, 3, 4, 5, 6, 7];
  const i = f.local(I32),
    o = f.local(I32),
    j = f.local(I32),
    len = f.local(I32);
  const pa = f.local(I32),
    pb = f.local(I32),
    po = f.local(I32),
    pv = f.local(I32),
    pe = f.local(I32);
  const va = f.local(V128),
    vb = f.local(V128);
  const av = pat[0] === 'v',
    bv = pat[1] === 'v';
  /** Pushes the operands a, b: `load()` from the pointer of a `v` operand, the splat of an `s` one. */
  const operands = (load: () => void): void => {
    if (av) {
      f.get(pa);
      load();
    } else f.get(va);
    if (bv) {
      f.get(pb);
      load();
    } else f.get(vb);
  };
  f.get(s).set(i);
  whileLt(f, i, e, () => {
    rowSegment(f, i, e, inner, o, j, len);
    f.get(a).get(o).get(aso).i32_mul();
    if (av) f.get(j).i32_add();
    f.i32_const(E).i32_mul().i32_add().set(pa);
    f.get(b).get(o).get(bso).i32_mul();
    if (bv) f.get(j).i32_add();
    f.i32_const(E).i32_mul().i32_add().set(pb);
    f.get(out).get(i).i32_const(E).i32_mul().i32_add().set(po);
    f.get(po).get(len).i32_const(E).i32_mul().i32_add().set(pe);
    v.vectorEnd(po, len, pv);
    if (!av) {
      f.get(pa);
      v.splat();
      f.set(va);
    }
    if (!bv) {
      f.get(pb);
      v.splat();
      f.set(vb);
    }
    // vector part
    whileLt(f, po, pv, () => {
      f.get(po);
      operands(() => f.v128_load(0));
      emitBinaryOp(v, op);
      f.v128_store(0);
      if (av) inc(f, pa, 16);
      if (bv) inc(f, pb, 16);
      inc(f, po, 16);
    });
    // tail
    whileLt(f, po, pe, () => {
      f.get(po);
      operands(() => v.splat());
      emitBinaryOp(v, op);
      v.store0();
      if (av) inc(f, pa, E);
      if (bv) inc(f, pb, E);
      inc(f, po, E);
    });
    f.get(i).get(len).i32_add().set(i);
  });
  return name;
}

/** Emits every map function; returns their names in dispatch-table order. */
export function emitElementwise(mb: ModuleBuilder): string[] {
  const names: string[] = [];
  for (const dt of ['f32', 'f64'] as const) {
    for (const op of SIMD_UNARY) names.push(emitUnaryMap(mb, dt, op));
    for (const op of SIMD_BINARY) for (const pat of PATTERNS) names.push(emitBinaryMap(mb, dt, op, pat));
    names.push(emitRowSum(mb, dt));
    names.push(emitColSum(mb, dt));
    names.push(emitSoftmax(mb, dt));
    names.push(emitSoftmaxGrad(mb, dt));
  }
  names.push(...emitLaplaceMaps(mb), ...emitLogSoftmaxMaps(mb));
  return names;
}
