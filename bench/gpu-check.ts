/**
 * The GPU check of `bench/gpu-check.sh`: prints the adapter and the gpu.js mode, runs the golden
 * suite on the gpujs backend (f32, FORMAT.md's f32 tolerances), then the gpu bench (matmul and a
 * Mega layer forward/backward beside the CPU backend). Exit code 1 on any failure.
 *
 * Environment: MEGA_GPU (adapter index), MEGA_EXPECT_GPU_MODE (webgpu | headlessgl: fail if
 * another mode ran), MEGA_EXPECT_HARDWARE=1 (fail on a software adapter such as lavapipe),
 * MEGA_BENCH_MATMUL_SIZES (e.g. `1024,2048,4096`), MEGA_GOLDEN_DIR.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fallbacks, GpuDevice, resetFallbacks, selectBackend, tidy } from '../src/tensor/backends/gpujs/index.js';
import { runFile } from '../src/verify/index.js';
import { runGpuBench } from './gpu.js';
import { setReportFormat } from './report.js';

async function main(): Promise<number> {
  const sel = selectBackend('gpujs');
  const info = sel.gpu!;
  process.stdout.write(`gpu.js mode: ${info.mode} (kernel class ${info.kernelClass})\n`);
  process.stdout.write(`adapter: ${JSON.stringify(info.adapter)}\n`);
  process.stdout.write(`adapters seen by Dawn: ${info.adapters.map((a, i) => `${i}: ${a.backend} ${a.name}`).join('; ') || '(list unavailable)'}\n`);
  process.stdout.write(`limits: ${JSON.stringify(info.limits)}\n`);
  const expected = process.env.MEGA_EXPECT_GPU_MODE;
  if (expected && info.mode !== expected) {
    process.stdout.write(`FAIL: expected gpu.js mode ${expected}, got ${info.mode}\n`);
    return 1;
  }
  const software = info.adapter.architecture === 'software' || /llvmpipe|lavapipe|swiftshader/i.test(`${info.adapter.description} ${info.adapter.device}`);
  if (software) process.stdout.write('note: this adapter is a software (CPU) Vulkan implementation\n');
  if (software && process.env.MEGA_EXPECT_HARDWARE === '1') {
    process.stdout.write('FAIL: a hardware GPU adapter was expected (MEGA_EXPECT_HARDWARE=1)\n');
    return 1;
  }
  const dir = process.env.MEGA_GOLDEN_DIR ?? fileURLToPath(new URL('../../test/golden', import.meta.url));
  const files = readdirSync(dir).filter((f) => f.endsWith('.msgpack')).sort();
  let passed = 0, failed = 0;
  const t0 = performance.now();
  for (const f of files) {
    resetFallbacks();
    const t = performance.now();
    const r = tidy(() => runFile(join(dir, f), 'f32'));
    const fb = Object.entries(fallbacks()).map(([k, n]) => `${k} ×${n}`).join(', ');
    const bad = r.error ?? r.tensors.filter((x) => !x.pass).map((x) => `${x.name} err ${x.maxErr.toExponential(2)} > ${x.tol.toExponential(2)}`).join('; ');
    process.stdout.write(`${r.pass ? 'PASS' : 'FAIL'} ${f.replace('.msgpack', '')} [gpujs f32] ${(performance.now() - t).toFixed(0)} ms${fb ? ` (CPU fallbacks: ${fb})` : ''}${r.pass ? '' : `: ${bad}`}\n`);
    if (r.pass) passed++;
    else failed++;
  }
  process.stdout.write(`golden on gpujs (${info.kernelClass}): ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  setReportFormat({ json: false });
  await runGpuBench({ json: false });
  const d = GpuDevice.get()!;
  process.stdout.write(`device counters: ${JSON.stringify(d.counters)}\n`);
  return failed === 0 ? 0 : 1;
}

main().then((code) => {
  process.exitCode = code;
}, (e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
