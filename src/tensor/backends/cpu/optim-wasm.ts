/**
 * WebAssembly paths of the optimizer step (src/train/optim.ts): the gradients' scaling, squared
 * norm and clip in two passes over every gradient at once, and fairseq Adam over every parameter
 * at once, parameters and moments kept in persistent blocks of the wasm memory (no copies of them
 * per step). Kernels:
 * wasm/optim.ts; the TypeScript loops in optim.ts stay the reference (bitwise the same results).
 * Each function returns null / false when its path does not apply (no wasm kernels, dtypes).
 */
import type { FloatStorage } from '../../dtype.js';
import { fromStorage, type Tensor } from '../../tensor.js';
import { allocateOut, isPersistent, persistentStorage } from './resident.js';
import { inPlace, runMap, stage, storageAddr } from './simd.js';
import { settleJobs, wasmArena, wasmRuntime, type Arena } from './wasm/runtime.js';

type FDT = 'f32' | 'f64';

/** The common float dtype of `ts` (all on the CPU), or null. */
function floatDType(ts: readonly Tensor[]): FDT | null {
  if (!ts.length) return null;
  const dt = ts[0].dtype;
  if (dt !== 'f32' && dt !== 'f64') return null;
  return ts.every((t) => t.dtype === dt && !t.device) ? dt : null;
}

/** Byte address of `t`'s row-major elements in wasm memory: in place when resident, else staged into the arena (after `commit`). */
function source(ar: Arena, t: Tensor, E: number, staged: [Tensor, number][]): number {
  const at = inPlace(t);
  if (at >= 0) return at;
  const a = ar.alloc(t.size * E);
  staged.push([t, a]);
  return a;
}

/**
 * Scaling and clipping of the gradients `grads` as `clipGradNorm` does it: `g' = dt(g·scale)`
 * (scale 1: g itself), `norm = √Σ g'²` (float64, in order), and when `maxNorm > 0` and the clip
 * coefficient `c = min(1, maxNorm / (norm + 1e-6))` is not 1, `g'' = dt(g'·dt(c))`. Returns the
 * norm and the new gradients (null where a gradient is unchanged), or null when the path does not
 * apply.
 */
export function scaleClipWasm(grads: readonly Tensor[], scale: number, maxNorm: number): { norm: number; grads: (Tensor | null)[] } | null {
  const dt = floatDType(grads);
  const rt = dt ? wasmRuntime() : null;
  if (!rt || !dt) return null;
  const E = dt === 'f32' ? 4 : 8;
  const ex = rt.main.ex;
  const P = grads.length;
  const ar = wasmArena(rt);
  const outs: (FloatStorage | null)[] = grads.map(() => null);
  const outAddr = new Array<number>(P).fill(-1);
  /** Fresh outputs for every gradient: resident blocks, or arena space (copied out at the end). */
  const allocOuts = () =>
    grads.forEach((g, i) => {
      const o = allocateOut(dt, g.size, false) as FloatStorage;
      outs[i] = o;
      outAddr[i] = storageAddr(o);
    });
  // fresh outputs when anything is written (a gradient may be shared: never in place)
  const writes = scale !== 1 || maxNorm > 0;
  if (writes) allocOuts();
  ar.reset();
  const table = ar.alloc(12 * P);
  const staged: [Tensor, number][] = [];
  const src = grads.map((g) => source(ar, g, E, staged));
  if (writes) grads.forEach((g, i) => (outAddr[i] = outAddr[i] >= 0 ? outAddr[i] : ar.alloc(g.size * E)));
  ar.commit();
  const view = dt === 'f32' ? ar.f32 : ar.f64;
  for (const [t, a] of staged) stage(view, a, E, t);
  const writeTable = (from: number[], to: number[]) => {
    const tab = new Int32Array(rt.memory.buffer, table, 3 * P);
    for (let i = 0; i < P; i++) {
      tab[3 * i] = from[i];
      tab[3 * i + 1] = to[i];
      tab[3 * i + 2] = grads[i].size;
    }
  };
  settleJobs(); // the sums below run here, on gradients that queued jobs may still write
  let ss: number;
  if (scale !== 1) {
    writeTable(src, outAddr);
    ss = ex[`grad_scale_sumsq_${dt}`](table, P, dt === 'f32' ? Math.fround(scale) : scale);
  } else {
    writeTable(src, src);
    ss = ex[`grad_sumsq_${dt}`](table, P);
  }
  const norm = Math.sqrt(ss);
  const coef = maxNorm > 0 ? Math.min(1, maxNorm / (norm + 1e-6)) : 1;
  if (coef !== 1) {
    writeTable(scale !== 1 ? outAddr : src, outAddr);
    ex[`grad_scale_${dt}`](table, P, dt === 'f32' ? Math.fround(coef) : coef);
  } else if (scale === 1) outs.fill(null); // nothing changed
  const result = grads.map((g, i) => {
    const o = outs[i];
    if (!o) return null;
    if (storageAddr(o) < 0) o.set(view.subarray(outAddr[i] / E, outAddr[i] / E + g.size));
    return fromStorage(o, g.shape);
  });
  ar.close();
  return { norm, grads: result };
}

/** Hyper-parameters of one Adam update (see optim.ts). */
export interface AdamArgs {
  beta1: number;
  beta2: number;
  eps: number;
  /** weight decay × lr (0: none) */
  decay: number;
  stepSize: number;
}

/** Zeros of `t`'s shape and float dtype in a persistent block of the wasm memory (optimizer state), or null (other dtypes, no wasm kernels). */
export function persistentZeros(t: Tensor): Tensor | null {
  if ((t.dtype !== 'f32' && t.dtype !== 'f64') || !wasmRuntime()) return null;
  const s = persistentStorage(t.dtype, t.size);
  return s ? fromStorage(s, t.shape) : null;
}

/** A persistent copy of `t` (moments moved into the wasm memory), or null when the memory is unavailable. */
function persistentCopy(t: Tensor): Tensor | null {
  const c = persistentZeros(t);
  c?.storage.set(t.toTypedArray() as FloatStorage);
  return c;
}

/**
 * Moves parameter `p`'s values into a persistent block of the wasm memory (`p` is rebound to it),
 * so that the kernels read it and the update writes it in place instead of copying it in (and
 * out) at every use. False, `p` unchanged, where that does not apply: a device tensor, another
 * dtype, a view of a larger storage, no wasm kernels or a full memory.
 */
export function persistParameter(p: Tensor): boolean {
  if (p.device || (p.dtype !== 'f32' && p.dtype !== 'f64') || !wasmRuntime()) return false;
  if (isPersistent(p.storage) || p.offset !== 0 || p.storage.length !== p.size || !p.isContiguous()) return false;
  const s = persistentStorage(p.dtype, p.size);
  if (!s) return false;
  s.set(p.storage as FloatStorage);
  p.rebind(s);
  return true;
}

/** Elements per entry of the Adam kernel's table (a multiple of the vector width). */
const ADAM_PIECE = 8192;

/** One parameter of an Adam update: the parameter (contiguous), its gradient and its moments. */
export interface AdamItem {
  p: Tensor;
  g: Tensor;
  m: Tensor;
  v: Tensor;
}

/**
 * One fairseq Adam update of the parameters `items` (one dtype, one step size, see
 * {@link AdamArgs}) in one kernel call, the moments updated in place. Moments not yet in
 * persistent wasm blocks are moved there first: the returned pairs replace them, in order. Null
 * (nothing done) when the path does not apply.
 */
export function adamWasm(items: readonly AdamItem[], a: AdamArgs): [Tensor, Tensor][] | null {
  const dt = floatDType(items.flatMap(({ p, g, m, v }) => [p, g, m, v]));
  const rt = dt ? wasmRuntime() : null;
  if (!rt || !dt || items.some(({ p, g }) => !p.isContiguous() || g.size !== p.size)) return null;
  const moments = items.map(({ m, v }) => [m, v].map((t) => (isPersistent(t.storage) && t.offset === 0 ? t : (persistentCopy(t) ?? t))) as [Tensor, Tensor]);
  if (moments.some((mv) => mv.some((t) => !isPersistent(t.storage)))) return null;
  const E = dt === 'f32' ? 4 : 8;
  // the table's entries: pieces of at most ADAM_PIECE elements, so that the pool's tasks (runs of
  // entries) are about equal
  const pieces = items.reduce((s, { p }) => s + Math.ceil(p.size / ADAM_PIECE), 0);
  const ar = wasmArena(rt);
  ar.reset();
  const cfg = ar.alloc(7 * 8),
    table = ar.alloc(20 * pieces);
  const staged: [Tensor, number][] = [];
  const at = items.map(({ p, g }) => [source(ar, g, E, staged), source(ar, p, E, staged)]);
  ar.commit();
  const view = dt === 'f32' ? ar.f32 : ar.f64;
  for (const [t, addr] of staged) stage(view, addr, E, t);
  new Float64Array(rt.memory.buffer, cfg, 7).set([a.beta1, 1 - a.beta1, a.beta2, 1 - a.beta2, a.eps, a.decay, a.stepSize]);
  const tab = new Int32Array(rt.memory.buffer, table, 5 * pieces);
  let e = 0;
  items.forEach(({ p }, i) => {
    const [ag, ap] = at[i],
      am = storageAddr(moments[i][0].storage),
      av = storageAddr(moments[i][1].storage);
    for (let o = 0; o < p.size; o += ADAM_PIECE, e += 5) {
      const b = o * E;
      tab.set([ag + b, am + b, av + b, ap + b, Math.min(ADAM_PIECE, p.size - o)], e);
    }
  });
  const elements = items.reduce((s, { p }) => s + p.size, 0);
  runMap(rt, `adam_${dt}${a.decay !== 0 ? '_decay' : ''}`, pieces, 7 * elements, [table, cfg]); // 7 values per element read or written
  items.forEach(({ p }, i) => {
    if (inPlace(p) < 0) (p.storage as FloatStorage).set(view.subarray(at[i][1] / E, at[i][1] / E + p.size), p.offset);
  });
  ar.close();
  return moments;
}
