/**
 * Registers the gpu.js kernels under backend name `gpujs`. Registration is cheap; the device
 * starts when the backend is selected (`setBackend('gpujs')` or {@link selectBackend}).
 */
import { registerBackendStart, registerKernel, type KernelName, type Kernels } from '../../backend.js';
import '../cpu/register.js';
import { GpuDevice } from './device.js';
import { gpujsKernels } from './kernels.js';
import { startOptions } from './select.js';

for (const name of Object.keys(gpujsKernels) as KernelName[]) {
  registerKernel(name, 'gpujs', gpujsKernels[name] as Kernels[typeof name]);
}
registerBackendStart('gpujs', () => {
  GpuDevice.open(startOptions());
});
