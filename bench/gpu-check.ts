/**
 * The GPU check of `bench/gpu-check.sh`: one JSON object per line —
 *
 * - `device`: the adapter, the gpu.js mode and kernel class, Dawn's adapter list, limits;
 * - `golden`: each golden case on the gpujs backend (f32, FORMAT.md's f32 tolerances), with the
 *   CPU fallbacks it took; then `golden-summary`;
 * - `matmul`: GFLOP/s at n³ (MEGA_BENCH_MATMUL_SIZES, default 1024,2048,4096) for the CPU backend,
 *   the gpu.js kernel and the WGSL shader;
 * - `mega-layer`: tokens/s of one Mega layer forward + backward: CPU, gpu.js kernels, WGSL kernels;
 * - `train-step`: a training step of `mega_lra_imdb` size (B × L = MEGA_CHECK_TRAIN_B ×
 *   MEGA_CHECK_TRAIN_L, default 2 × 4000) on gpujs and (MEGA_CHECK_CPU_TRAIN=1, default) the CPU:
 *   ms per step, tokens/s, and the host↔device transfers of a step;
 * - `summary`: passed / failed. Exit code 1 on any failure.
 *
 * Environment: MEGA_GPU (adapter index), MEGA_EXPECT_GPU_MODE (webgpu | headlessgl: fail if
 * another mode ran), MEGA_EXPECT_HARDWARE=1 (fail on a software adapter such as lavapipe),
 * MEGA_GOLDEN_DIR, MEGA_CHECK_SKIP (comma list of sections to skip: golden, matmul, layer, train).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fallbacks, GpuDevice, resetFallbacks, selectBackend, tidy } from '../src/tensor/backends/gpujs/index.js';
import { runFile } from '../src/verify/index.js';
import { LAYER, layerMs, matmulGflops } from './gpu.js';
import { trainStep } from './gpu-train.js';

const line = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);
const skip = new Set((process.env.MEGA_CHECK_SKIP ?? '').split(',').filter(Boolean));
const int = (name: string, dflt: number) => {
  const v = Number(process.env[name] ?? dflt);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name}=${process.env[name]}: expected a positive integer`);
  return v;
};

async function main(): Promise<number> {
  const sel = selectBackend('gpujs');
  const info = sel.gpu!;
  const software = info.adapter.architecture === 'software' || /llvmpipe|lavapipe|swiftshader/i.test(`${info.adapter.description} ${info.adapter.device}`);
  line({ check: 'device', mode: info.mode, kernelClass: info.kernelClass, adapter: info.adapter, software, adapters: info.adapters, limits: info.limits });
  let failed = 0,
    passed = 0;
  const expected = process.env.MEGA_EXPECT_GPU_MODE;
  if (expected && info.mode !== expected) {
    line({ check: 'mode', pass: false, expected, got: info.mode });
    return 1;
  }
  if (software && process.env.MEGA_EXPECT_HARDWARE === '1') {
    line({ check: 'hardware', pass: false, reason: 'a hardware GPU adapter was expected (MEGA_EXPECT_HARDWARE=1)' });
    return 1;
  }
  if (!skip.has('golden')) {
    const dir = process.env.MEGA_GOLDEN_DIR ?? fileURLToPath(new URL('../../test/golden', import.meta.url));
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.msgpack'))
      .sort();
    const t0 = performance.now();
    for (const f of files) {
      resetFallbacks();
      const t = performance.now();
      const r = tidy(() => runFile(join(dir, f), 'f32'));
      const bad =
        r.error ??
        r.tensors
          .filter((x) => !x.pass)
          .map((x) => `${x.name} err ${x.maxErr.toExponential(2)} > ${x.tol.toExponential(2)}`)
          .join('; ');
      line({
        check: 'golden',
        case: f.replace('.msgpack', ''),
        pass: r.pass,
        ms: Math.round(performance.now() - t),
        fallbacks: fallbacks(),
        ...(r.pass ? {} : { error: bad }),
      });
      if (r.pass) passed++;
      else failed++;
    }
    line({ check: 'golden-summary', passed, failed, s: Math.round((performance.now() - t0) / 100) / 10 });
  }
  if (!skip.has('matmul')) {
    const sizes = (process.env.MEGA_BENCH_MATMUL_SIZES ?? '1024,2048,4096')
      .split(',')
      .map(Number)
      .filter((n) => n > 0);
    for (const n of sizes) {
      const cpu = matmulGflops('cpu', n);
      const gpujs = matmulGflops('gpujs', n, 'gpujs');
      const wgsl = info.mode === 'webgpu' ? matmulGflops('gpujs', n, 'wgsl') : null;
      line({
        check: 'matmul',
        n,
        gflops: { cpu, gpujs, wgsl },
        wgslOverGpujs: wgsl === null ? null : wgsl / gpujs,
        gpuOverCpu: Math.max(gpujs, wgsl ?? 0) / cpu,
      });
    }
  }
  if (!skip.has('layer')) {
    const tokens = LAYER.L * LAYER.B;
    const cpu = tokens / (layerMs('cpu') / 1000),
      gpujs = tokens / (layerMs('gpujs', 'gpujs') / 1000);
    const wgsl = info.mode === 'webgpu' ? tokens / (layerMs('gpujs', 'wgsl') / 1000) : null;
    line({ check: 'mega-layer', layer: LAYER, tokensPerS: { cpu, gpujs, wgsl }, gpuOverCpu: Math.max(gpujs, wgsl ?? 0) / cpu });
  }
  if (!skip.has('train')) {
    const B = int('MEGA_CHECK_TRAIN_B', 2),
      L = int('MEGA_CHECK_TRAIN_L', 4000);
    const g = trainStep('mega_lra_imdb', 'gpujs', B, L);
    line({ check: 'train-step', ...g });
    // the batch in (tokens, targets, the embedding gradient's index lists: at most 3 uploads,
    // fewer when the upload cache already holds equal values, e.g. the same targets) and the loss out
    const maxBytes = 4 * (B * L + B + (256 + 1 + B * L));
    const t = g.transfers;
    const ok = t !== null && t.uploads <= 3 && t.uploadBytes <= maxBytes && t.readbacks === 1 && t.readbackBytes === 4;
    line({ check: 'transfers-per-step', pass: ok, expected: { uploads: '<= 3', uploadBytes: `<= ${maxBytes}`, readbacks: 1, readbackBytes: 4 }, got: t });
    if (ok) passed++;
    else failed++;
    if (process.env.MEGA_CHECK_CPU_TRAIN !== '0') {
      const c = trainStep('mega_lra_imdb', 'cpu', B, L, 1);
      line({ check: 'train-step', ...c, gpuOverCpu: c.msPerStep / g.msPerStep });
    }
  }
  line({ check: 'summary', passed, failed, counters: GpuDevice.get()!.counters });
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
