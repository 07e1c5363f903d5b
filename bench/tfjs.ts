/** Shared bench helpers: deterministic fill, and loading TF.js (cpu + wasm backends) offline. */
import { createRequire } from 'node:module';
import path from 'node:path';
import { note } from './report.js';

/** The part of the TF.js namespace every bench needs; each bench extends it with its ops. */
export interface TfCore {
  setBackend(name: string): Promise<boolean>;
  ready(): Promise<void>;
  enableProdMode(): void;
}

/** Deterministic pseudo-random values in [-1, 1) (an LCG; the same values for every impl). */
export function fill<T extends { length: number; [i: number]: number }>(x: T, seed: number): T {
  let s = seed >>> 0;
  for (let i = 0; i < x.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = s / 2147483648 - 1;
  }
  return x;
}

/** Load TF.js core + cpu + wasm backends; undefined (with a note) when they are not installed. */
export async function loadTf<T extends TfCore>(): Promise<{ tf: T; backends: string[] } | undefined> {
  try {
    const tf = (await import('@tensorflow/tfjs-core')) as unknown as T;
    await import('@tensorflow/tfjs-backend-cpu');
    const backends = ['cpu'];
    try {
      const wasm = (await import('@tensorflow/tfjs-backend-wasm')) as unknown as { setWasmPaths(prefix: string): void };
      // Offline: point the loader at the .wasm files shipped in the package (a file path prefix).
      const require = createRequire(import.meta.url);
      const dist = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;
      wasm.setWasmPaths(dist);
      backends.push('wasm');
    } catch (e) {
      note(`tfjs-backend-wasm unavailable: ${(e as Error).message}`);
    }
    tf.enableProdMode(); // no debug checks, no "install tfjs-node" banner
    return { tf, backends };
  } catch (e) {
    note(`TF.js unavailable, reporting mega-ts only: ${(e as Error).message}`);
    return undefined;
  }
}
