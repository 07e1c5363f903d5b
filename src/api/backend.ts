/**
 * Backend and thread settings of the library. The gpujs backend (Node) is loaded only when asked
 * for, with its optional packages `gpu.js` and `webgpu`.
 */
import { threadStats } from '../tensor/backends/cpu/gemm.js';
import { getNumThreads, setNumThreads } from '../tensor/backends/cpu/pool.js';
import { simdStatus } from '../tensor/backends/cpu/wasm/runtime.js';
import { host } from './host/node.js';

export { getNumThreads, setNumThreads, simdStatus, threadStats };

/**
 * Selects the compute backend: `cpu`, `gpujs` (throws, naming the packages to install, when they
 * are missing or no GPU works) or `auto` (gpujs when it works, else the CPU, with the reason).
 */
export function useBackend(name: 'cpu' | 'gpujs' | 'auto'): Promise<{ backend: string; reason?: string }> {
  return host.useBackend(name);
}
