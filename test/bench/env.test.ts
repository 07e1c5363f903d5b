/**
 * The PyTorch baselines' OpenBLAS (bench/env.ts): a fresh Debian with python3-torch alone links
 * the reference BLAS; the baselines put OpenBLAS's folder first on LD_LIBRARY_PATH when there is
 * one (`MEGA_OPENBLAS_DIR`, else the system's libopenblas0-pthread folder).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openblasDir, withOpenblas } from '../../bench/env.js';

const saved = process.env.MEGA_OPENBLAS_DIR;
afterEach(() => {
  if (saved === undefined) delete process.env.MEGA_OPENBLAS_DIR;
  else process.env.MEGA_OPENBLAS_DIR = saved;
});

describe('withOpenblas', () => {
  it("puts MEGA_OPENBLAS_DIR's folder first on LD_LIBRARY_PATH when it holds libblas.so.3", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'openblas-'));
    try {
      writeFileSync(path.join(dir, 'libblas.so.3'), '');
      process.env.MEGA_OPENBLAS_DIR = dir;
      expect(openblasDir()).toBe(dir);
      expect(withOpenblas({ PATH: '/bin' })).toEqual({ PATH: '/bin', LD_LIBRARY_PATH: dir });
      expect(withOpenblas({ LD_LIBRARY_PATH: '/opt/lib' }).LD_LIBRARY_PATH).toBe(`${dir}:/opt/lib`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('leaves the environment as it is without OpenBLAS', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'no-openblas-'));
    try {
      mkdirSync(path.join(dir, 'sub'));
      process.env.MEGA_OPENBLAS_DIR = dir; // no libblas.so.3 there
      const system = openblasDir();
      const env = { PATH: '/bin' };
      expect(withOpenblas(env)).toEqual(system ? { PATH: '/bin', LD_LIBRARY_PATH: system } : env);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
