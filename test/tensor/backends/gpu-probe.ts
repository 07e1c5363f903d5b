/** Whether the gpujs backend can start here (a GPU mode for gpu.js); the active backend is restored. */
import { getBackend, setBackend } from '../../../src/tensor/backend.js';
import { selectBackend } from '../../../src/tensor/backends/gpujs/index.js';

/** True when `selectBackend('gpujs')` succeeds (memoized). */
export function gpuAvailable(): boolean {
  if (known === undefined) {
    const before = getBackend();
    try {
      selectBackend('gpujs');
      known = true;
    } catch {
      known = false;
    } finally {
      setBackend(before);
    }
  }
  return known;
}

let known: boolean | undefined;
