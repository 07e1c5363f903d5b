/**
 * Generated elementwise loops. Each (op, dtypes) pair gets its own function instance built with
 * `new Function`, so V8 sees one typed-array class per call site (docs/BACKENDS.md: a function that
 * has seen both Float32Array and Float64Array runs up to 2x slower).
 *
 * A loop walks the output row-major; inputs are addressed through their own strides (0 for
 * broadcast axes), so views need no copy.
 */
import { ERF32_SOURCE, ERF_SOURCE } from '../../special.js';

/** Strided operand: storage, offset, strides aligned to the output's axes. */
export interface Operand {
  data: ArrayLike<number>;
  offset: number;
  strides: readonly number[];
  /** True when the operand is laid out exactly like the (contiguous) output. */
  contig: boolean;
}

/** A generated n-ary elementwise loop: writes `out[0..size)` from operands over `shape`. */
export type Loop = (out: { [i: number]: number }, shape: readonly number[], ops: Operand[]) => void;

const cache = new Map<string, Loop>();

/**
 * A loop computing `expr` (in terms of `v0, v1, ...`, the operand values) for `arity` operands.
 * `key` must identify expr and the operand/output array classes.
 */
export function elementwiseLoop(key: string, arity: number, expr: string): Loop {
  let fn = cache.get(key);
  if (fn) return fn;
  const names = Array.from({ length: arity }, (_, i) => i);
  // the erf table is built only by the loops that call erf
  const src = `
${expr.includes('erf(') ? ERF_SOURCE : ''}
${expr.includes('erf32(') ? ERF32_SOURCE : ''}
return function loop(out, shape, ops) {
  ${names.map((i) => `const d${i} = ops[${i}].data, s${i} = ops[${i}].strides; let p${i} = ops[${i}].offset;`).join('\n  ')}
  const nd = shape.length;
  if (nd === 0) { ${names.map((i) => `const v${i} = d${i}[p${i}];`).join(' ')} out[0] = ${expr}; return; }
  const n = shape[nd - 1];
  let total = 1; for (let i = 0; i < nd; i++) total *= shape[i];
  if (total === 0) return;
  ${names.map((i) => `const t${i} = s${i}[nd - 1];`).join(' ')}
  if (${names.map((i) => `ops[${i}].contig`).join(' && ') || 'false'}) {
    for (let o = 0; o < total; o++) { ${names.map((i) => `const v${i} = d${i}[p${i} + o];`).join(' ')} out[o] = ${expr}; }
    return;
  }
  const idx = new Int32Array(nd);
  const outer = total / n;
  let o = 0;
  for (let r = 0; r < outer; r++) {
    ${names.map((i) => `let q${i} = p${i};`).join(' ')}
    for (let j = 0; j < n; j++) {
      ${names.map((i) => `const v${i} = d${i}[q${i}]; q${i} += t${i};`).join(' ')}
      out[o++] = ${expr};
    }
    for (let a = nd - 2; a >= 0; a--) {
      idx[a]++;
      ${names.map((i) => `p${i} += s${i}[a];`).join(' ')}
      if (idx[a] < shape[a]) break;
      ${names.map((i) => `p${i} -= s${i}[a] * shape[a];`).join(' ')}
      idx[a] = 0;
    }
  }
};`;
  fn = new Function(src)() as Loop;
  cache.set(key, fn);
  return fn;
}
