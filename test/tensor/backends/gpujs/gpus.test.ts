/**
 * One GPU per rank: the PCI mapping that tells identical cards apart (a sysfs fixture), and the
 * mechanism on a machine with two identical adapters — two lavapipe Vulkan drivers, which Dawn
 * lists under one name, as it lists 8 identical cards — in child processes (the Vulkan
 * environment is per process; `src/` transpiled for them): local rank r takes adapter r (round
 * robin), an identical card without a PCI address is an explicit error, and the device-select
 * layer's visibility variables leave Dawn one adapter.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pciGpus, vendorOf, visibilityEnv } from '../../../../src/tensor/backends/gpujs/gpus.js';
import { buildForChildren, type Built } from '../../../dist/helpers.js';
import { skipWithout } from '../../../system.js';
import { gpuAvailable } from '../gpu-probe.js';

const tmp = mkdtempSync(join(tmpdir(), 'mega-gpus-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('PCI display devices (sysfs)', () => {
  it('lists the display-class devices of a vendor by bus address, and the variables that expose one', () => {
    const root = join(tmp, 'sys');
    const dev = (addr: string, cls: string, vendor: string, device: string) => {
      mkdirSync(join(root, addr), { recursive: true });
      writeFileSync(join(root, addr, 'class'), `${cls}\n`);
      writeFileSync(join(root, addr, 'vendor'), `${vendor}\n`);
      writeFileSync(join(root, addr, 'device'), `${device}\n`);
    };
    dev('0000:c1:00.0', '0x030200', '0x10de', '0x2335'); // 3D controller (NVIDIA)
    dev('0000:41:00.0', '0x030200', '0x10de', '0x2335');
    dev('0000:02:00.0', '0x030000', '0x1a03', '0x2000'); // the BMC's VGA
    dev('0000:00:1f.0', '0x060100', '0x8086', '0x1234'); // a bridge
    expect(pciGpus(0x10de, root).map((g) => g.address)).toEqual(['0000:41:00.0', '0000:c1:00.0']);
    expect(pciGpus(null, root).map((g) => g.address)).toEqual(['0000:02:00.0', '0000:41:00.0', '0000:c1:00.0']);
    expect(pciGpus(0x10de, join(tmp, 'missing'))).toEqual([]);
    expect(vendorOf('NVIDIA H200')).toBe(0x10de);
    expect(vendorOf('llvmpipe (LLVM 15.0.6, 256 bits)')).toBeNull();
    expect(visibilityEnv('0000:c1:00.0')).toEqual({ DRI_PRIME: 'pci-0000_c1_00_0', MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE: '1' });
    expect(() => visibilityEnv('c1:00.0')).toThrow(/PCI address/);
  });
});

const lvp = ['/usr/share/vulkan/icd.d/lvp_icd.json', '/usr/share/vulkan/icd.d/lvp_icd.x86_64.json'].find((f) => existsSync(f));

describe.skipIf(skipWithout({ gpu: gpuAvailable() && lvp !== undefined }))('two identical adapters (two lavapipe drivers)', () => {
  let built: Built;
  beforeAll(async () => {
    built = await buildForChildren();
  }, 120_000);
  afterAll(() => built?.cleanup());

  /** Starts gpujs in a child with two lavapipe drivers; returns its JSON answer. */
  function child(opts: Record<string, unknown>, env: Record<string, string> = {}): { adapters?: string[]; adapter?: string; notes?: string[]; error?: string } {
    const icd = readFileSync(lvp!, 'utf8');
    const a = join(tmp, 'a.json'),
      b = join(tmp, 'b.json');
    writeFileSync(a, icd);
    writeFileSync(b, icd);
    const entry = built.js('src/tensor/backends/gpujs/index.ts');
    const script =
      `import(${JSON.stringify(entry)}).then((g) => {
      try { const s = g.selectBackend('gpujs', ${JSON.stringify(opts)}); console.log(JSON.stringify({ adapters: s.gpu.adapters.map((x) => x.name), ` +
      `adapter: s.gpu.adapter.description, notes: s.gpu.notes })); }
      catch (e) { console.log(JSON.stringify({ error: e.message })); }
      process.exit(0);
    });`;
    const out = execFileSync(process.execPath, ['-e', script], {
      env: { ...process.env, VK_ICD_FILENAMES: `${a}:${b}`, MEGA_GPU: '', ...env },
      encoding: 'utf8',
      timeout: 120_000,
    });
    return JSON.parse(out.trim().split('\n').pop()!);
  }

  it('Dawn lists both under one name; local rank 0 and rank 2 (round robin) take the first', () => {
    const r0 = child({ rank: 0 });
    expect(r0.error).toBeUndefined();
    expect(r0.adapters).toHaveLength(2);
    expect(r0.adapters![0]).toBe(r0.adapters![1]);
    expect(child({ rank: 2 }).error).toBeUndefined();
  }, 120_000);

  it('local rank 1 needs a PCI address to tell its card apart: an explicit error, not card 0', () => {
    expect(child({ rank: 1 }).error).toMatch(/adapter 1 .* no PCI bus address to tell it apart/);
    expect(child({ gpu: 1 }).error).toMatch(/adapter 1 .* no PCI bus address/);
  }, 120_000);

  it('the device-select layer variables leave Dawn exactly one adapter', () => {
    const r = child({}, visibilityEnv('0000:00:00.0'));
    expect(r.error).toBeUndefined();
    expect(r.adapters).toHaveLength(1);
  }, 120_000);
});
