/** The gpujs batched matrix product. */
import { sizeOf } from '../../shape.js';
import type { Tensor } from '../../tensor.js';
import { matmulShape } from '../checks.js';
import { matmulCpu } from '../cpu/matmul.js';
import type { GpuData } from './device.js';
import { gpuKernels, matmulWgsl } from './wgsl.js';
import { bstrides, coalesce, dev, done, emptyHost, fallback, fn, grid, MAX_XY, MAX_Z, operandOf, types, wrap } from './launch.js';

/** gpujs `matmul`: the WGSL tiled shader (wgsl.ts) where selected and suitable, else the gpu.js kernel. */
export function matmulGpu(a: Tensor, b: Tensor): Tensor {
  const { batch, M, K, N } = matmulShape(a, b);
  const cpu = () => matmulCpu(a, b);
  if (a.dtype === 'f64') return fallback('matmul', 'f64', cpu);
  const outShape = [...batch, M, N];
  if (sizeOf(outShape) === 0) return emptyHost(outShape, a.dtype);
  if (K === 0) return fallback('matmul', 'K = 0', cpu);
  if (M > MAX_XY || N > MAX_XY) return fallback('matmul', 'grid limits', cpu);
  return (gpuKernels() === 'wgsl' ? matmulWgsl(a, b, batch, M, K, N) : null) ?? matmulGpujs(a, b, batch, M, K, N);
}

/** The gpu.js matmul: one thread per output element, a K loop, batch axes folded into z. */
export function matmulGpujs(a: Tensor, b: Tensor, batch: number[], M: number, K: number, N: number): Tensor {
  const cpu = () => matmulCpu(a, b);
  const outShape = [...batch, M, N];
  const temps: GpuData[] = [];
  try {
    const A = operandOf(a, temps),
      B = operandOf(b, temps);
    const ab = bstrides({ shape: a.shape.slice(0, -2) }, A.strides.slice(0, -2), batch);
    const bb = bstrides({ shape: b.shape.slice(0, -2) }, B.strides.slice(0, -2), batch);
    const c = coalesce(batch, [ab, bb]);
    const nb = c.shape.length;
    let coords: string[],
      pre = '',
      foldArgs: string[] = [],
      foldVals: number[] = [];
    const Z = sizeOf(c.shape);
    if (Z > MAX_Z) return fallback('matmul', 'grid limits', cpu);
    if (nb <= 1) coords = nb === 1 ? ['this.thread.z'] : [];
    else {
      const g = grid([...c.shape, 1, 1])!; // folds the batch axes into z
      coords = g.coords.slice(0, nb);
      pre = g.pre;
      foldArgs = g.foldArgs;
      foldVals = g.foldVals;
    }
    const abn = coords.map((_, i) => `ab${i}`),
      bbn = coords.map((_, i) => `bb${i}`);
    const aIdx = ['o0', 'this.thread.y * am', 'k * ak', ...coords.map((cc, i) => `${cc} * ab${i}`)].join(' + ');
    const bIdx = ['o1', 'k * bk', 'this.thread.x * bn', ...coords.map((cc, i) => `${cc} * bb${i}`)].join(' + ');
    const key = `matmul:${coords.length}`;
    const ints = ['o0', 'o1', 'am', 'ak', 'bk', 'bn', 'K', ...abn, ...bbn, ...foldArgs];
    const src = () =>
      fn(['t0', 't1', ...ints], [pre, 'let acc = 0;', `for (let k = 0; k < K; k++) {\nacc += t0[${aIdx}] * t1[${bIdx}];\n}`, 'return acc;'].join('\n'));
    const nd = a.ndim,
      mdb = b.ndim;
    const args = [
      A.data,
      B.data,
      A.offset,
      B.offset,
      A.strides[nd - 2],
      A.strides[nd - 1],
      B.strides[mdb - 2],
      B.strides[mdb - 1],
      K,
      ...(nb ? c.strides[0] : []),
      ...(nb ? c.strides[1] : []),
      ...foldVals,
    ];
    const out = dev().run(key, src, types(['t0', 't1'], ints), [N, M, Math.max(1, Z)], args, a.dtype);
    return wrap(out, outShape);
  } finally {
    done(temps);
  }
}
