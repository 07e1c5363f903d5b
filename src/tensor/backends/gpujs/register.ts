/**
 * Registers the gpu.js kernels under backend name `gpujs`. Registration is cheap; the device
 * starts when the backend is selected (`setBackend('gpujs')` or {@link selectBackend}).
 */
import { registerBackendStart, registerKernel, type AllKernels, type AnyKernelName } from '../../backend.js';
import '../cpu/register.js';
import { GpuDevice } from './device.js';
import { gpujsFusedKernels, gpujsKernels } from './kernels.js';
import { startOptions } from './select.js';

const all: AllKernels = { ...gpujsKernels, ...gpujsFusedKernels };
for (const name of Object.keys(all) as AnyKernelName[]) {
  registerKernel(name, 'gpujs', all[name] as AllKernels[typeof name]);
}
registerBackendStart('gpujs', () => {
  GpuDevice.open(startOptions());
});
