/**
 * The gpu.js backend: gpu.js kernels on the GPU (WebGPU through Dawn, or headless-gl), device
 * resident tensors, deterministic release (`tidy`, `dispose`, `keep`), backend selection and
 * visible CPU fallbacks. Importing this module registers the `gpujs` kernels (the device starts
 * only when the backend is selected).
 */
import './register.js';
export { dispose, GpuData, GpuDevice, GpuError, keep, moveToDevice, tidy, type GpuInfo, type GpuMode, type GpuOptions } from './device.js';
export { fallbacks, resetFallbacks } from './kernels.js';
export { clearUploadCache } from './launch.js';
export { backendInfo, selectBackend, type BackendRequest, type Selection } from './select.js';
