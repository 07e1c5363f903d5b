/**
 * Optional WebAssembly features the CPU kernels can use, detected once per process.
 *
 * Relaxed SIMD (`f32x4.relaxed_madd`: a·b + c, fused where the hardware has FMA) lets the gemm
 * micro-kernel issue one instruction per multiply-add instead of two. Node 22+ and recent
 * browsers have it on; Node 20 (V8 11.3) has it behind `--experimental-wasm-relaxed-simd`, which
 * the Node platform turns on at run time (`v8.setFlagsFromString`, process-wide, before the
 * kernels' module is compiled). Where it stays unavailable the kernels use plain SIMD128.
 * Env `MEGA_RELAXED_SIMD=0` keeps plain SIMD128 (the flag is then not touched either).
 */
import { platform } from '../../../platform/node.js';

/** `(func (param v128 v128 v128) (result v128) local.get 0 local.get 1 local.get 2 f32x4.relaxed_madd)` */
const PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x01, 0x60, 0x03, 0x7b, 0x7b, 0x7b, 0x01, 0x7b, 0x03, 0x02, 0x01, 0x00, 0x0a, 0x0d, 0x01, 0x0b,
  0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfd, 0x85, 0x02, 0x0b,
]);

let relaxed: boolean | undefined;

/** Whether relaxed SIMD validates here (without switching anything on). */
export function relaxedSimdValidates(): boolean {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(PROBE);
  } catch {
    return false;
  }
}

/**
 * Whether the kernels use relaxed SIMD: it is wanted (env `MEGA_RELAXED_SIMD` is not `0`/`off`)
 * and it validates, after the platform's switch where it has one. Decided once per process.
 */
export function relaxedSimd(): boolean {
  if (relaxed !== undefined) return relaxed;
  const off = ['0', 'false', 'off', 'no'].includes((platform.env('MEGA_RELAXED_SIMD') ?? '').toLowerCase());
  if (off) return (relaxed = false);
  if (!relaxedSimdValidates()) {
    try {
      platform.enableRelaxedSimd?.();
    } catch {
      // a host that refuses the switch keeps plain SIMD128
    }
  }
  return (relaxed = relaxedSimdValidates());
}
