/**
 * Registers the gpu.js kernels under backend name `gpujs`. Registration is cheap; the device
 * starts when the backend is selected (`setBackend('gpujs')` or {@link selectBackend}).
 *
 * Integer bookkeeping stays on the host: a kernel whose tensor arguments are all host tensors of
 * integer or bool dtype (token ids, lengths, padding masks, positions) runs the CPU kernel, so the
 * host code that inspects such tensors (is anything padded? the index lists of an embedding
 * backward) never reads device memory back. Floating-point work always runs on the device.
 */
import { registerBackendStart, registerKernel, type AllKernels, type AnyKernelName, type KernelName, type Kernels } from '../../backend.js';
import { isFloat } from '../../dtype.js';
import { Tensor } from '../../tensor.js';
import { cpuKernels } from './host.js';
import '../cpu/register.js';
import { GpuDevice } from './device.js';
import { gpujsFusedKernels, gpujsKernels } from './kernels.js';
import { startOptions } from './select.js';

/** Whether every tensor argument is a host tensor of integer / bool dtype (and there is one). */
function hostIntegers(args: unknown[]): boolean {
  let n = 0;
  for (const a of args) {
    for (const t of Array.isArray(a) ? a : [a]) {
      if (!(t instanceof Tensor)) continue;
      if (t.device || isFloat(t.dtype)) return false;
      n++;
    }
  }
  return n > 0;
}

const onDevice: Kernels = { ...gpujsKernels };
for (const name of Object.keys(cpuKernels) as KernelName[]) {
  const gpu = gpujsKernels[name] as (...a: unknown[]) => Tensor,
    cpu = cpuKernels[name] as (...a: unknown[]) => Tensor;
  (onDevice as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => (hostIntegers(args) ? cpu(...args) : gpu(...args));
}
const all: AllKernels = { ...onDevice, ...gpujsFusedKernels };
for (const name of Object.keys(all) as AnyKernelName[]) {
  registerKernel(name, 'gpujs', all[name] as AllKernels[typeof name]);
}
registerBackendStart('gpujs', () => {
  GpuDevice.open(startOptions());
});
