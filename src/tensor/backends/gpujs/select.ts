/**
 * Backend selection: `cpu`, `gpujs` or `auto`, from the command line (`--backend`) or the
 * environment (`MEGA_BACKEND`), and the GPU (adapter index) from `--gpu` / `MEGA_GPU`.
 *
 * - `gpujs`: WebGPU through Dawn when an adapter exists, else headless-gl when an X display
 *   exists, else an explicit error (a GPU was asked for).
 * - `auto`: the same, but without a GPU the CPU backend, with the reason reported.
 */
import { getBackend, setBackend } from '../../backend.js';
import { TensorError } from '../../errors.js';
import { GpuDevice, GpuError, type GpuInfo, type GpuMode, type GpuOptions } from './device.js';
import { fallbacks } from './kernels.js';

/** What the user may ask for. */
export type BackendRequest = 'cpu' | 'gpujs' | 'auto';

let options: GpuOptions = {};

/** Device options used when the gpujs backend starts (from {@link selectBackend} or the environment). */
export function startOptions(): GpuOptions {
  return { ...envOptions(), ...options };
}

function envOptions(): GpuOptions {
  const o: GpuOptions = {};
  const g = process.env.MEGA_GPU;
  if (g !== undefined && g !== '') o.adapterIndex = parseAdapter(g, 'MEGA_GPU=');
  const m = process.env.MEGA_GPU_MODE;
  if (m) o.mode = parseMode(m, 'MEGA_GPU_MODE=');
  if (process.env.MEGA_DAWN_FLAGS) o.dawnFlags = process.env.MEGA_DAWN_FLAGS.split(',').filter(Boolean);
  return o;
}

/** An adapter index; `label` names where it came from (`--gpu `, `MEGA_GPU=`). A bad one is the user's error. */
function parseAdapter(s: string, label: string): number {
  const n = s.trim() === '' ? NaN : Number(s);
  if (!Number.isInteger(n) || n < 0)
    throw new TensorError(`${label}${s}: invalid GPU adapter index (expected 0, 1, ...; mega info --backend gpujs lists the adapters)`, { kind: 'user' });
  return n;
}

function parseMode(s: string, label: string): GpuMode {
  if (s !== 'webgpu' && s !== 'headlessgl' && s !== 'auto')
    throw new TensorError(`${label}${s}: invalid gpu.js mode (expected webgpu, headlessgl or auto)`, { kind: 'user' });
  return s;
}

/** The result of a selection. */
export interface Selection {
  backend: 'cpu' | 'gpujs';
  /** The gpu.js device (mode, kernel class, adapter) when gpujs is active. */
  gpu?: GpuInfo;
  /** Why `auto` chose the CPU. */
  reason?: string;
}

/**
 * Selects the backend (`request` is the `--backend` value; default: `MEGA_BACKEND`, else `cpu`).
 * `gpu` is the `--gpu` adapter index (default `MEGA_GPU`, else adapter `rank` modulo the adapter
 * count when `rank`, the local rank of a data-parallel process, is given, else Dawn's first). Throws a
 * user-kind TensorError for an unknown backend or a bad adapter index, a GpuError when `gpujs` was
 * asked for and no GPU mode works.
 */
export function selectBackend(request?: string, opts: { gpu?: number | string; rank?: number; mode?: GpuMode; dawnFlags?: string[] } = {}): Selection {
  const req = (request ?? process.env.MEGA_BACKEND ?? 'cpu').toLowerCase();
  if (req !== 'cpu' && req !== 'gpujs' && req !== 'auto') {
    const from = request === undefined ? `MEGA_BACKEND=${process.env.MEGA_BACKEND}` : `--backend ${request}`;
    throw new TensorError(`${from}: unknown backend '${request ?? process.env.MEGA_BACKEND}' (expected cpu, gpujs or auto)`, { kind: 'user' });
  }
  options = {};
  if (opts.gpu !== undefined) options.adapterIndex = parseAdapter(String(opts.gpu), '--gpu ');
  if (opts.rank !== undefined) options.rank = opts.rank;
  if (opts.mode) options.mode = opts.mode;
  if (opts.dawnFlags) options.dawnFlags = opts.dawnFlags;
  if (req === 'cpu') {
    setBackend('cpu');
    return { backend: 'cpu' };
  }
  try {
    setBackend('gpujs');
  } catch (e) {
    if (req === 'gpujs' || !(e instanceof GpuError)) throw e;
    setBackend('cpu');
    return { backend: 'cpu', reason: (e as Error).message };
  }
  return { backend: 'gpujs', gpu: GpuDevice.get()!.info };
}

/** A summary for `mega info` and logs: backend, gpu.js mode and class, adapter, fallbacks, memory. */
export function backendInfo(): Record<string, unknown> {
  const d = GpuDevice.get();
  const out: Record<string, unknown> = { backend: getBackend() };
  if (d) {
    out.gpujs = {
      mode: d.info.mode,
      kernelClass: d.info.kernelClass,
      adapter: d.info.adapter.description || d.info.adapter.device,
      adapters: d.info.adapters.map((a) => `${a.backend}: ${a.name}`),
      precision: 'f32',
      fallbacks: fallbacks(),
      liveBuffers: d.liveBuffers,
      liveBytes: d.liveBytes,
      counters: { ...d.counters },
    };
  }
  return out;
}
