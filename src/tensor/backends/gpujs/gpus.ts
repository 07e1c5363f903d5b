/**
 * Telling identical GPUs apart. Dawn selects adapters by name, so on a node of identical cards
 * (8 of one model) the name cannot pick card r. What differs between identical cards is their PCI
 * bus address, and Mesa's Vulkan device-select layer (an implicit layer, installed with Mesa's
 * Vulkan drivers, applied to every Vulkan driver including NVIDIA's) can expose exactly one card
 * to a process chosen by it: `DRI_PRIME=pci-DDDD_BB_DD_F` names the card,
 * `MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE=1` hides the others. Vulkan drivers list cards in
 * PCI bus order, so the k-th adapter of a repeated name is the k-th card of that vendor by bus.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TensorError } from '../../errors.js';

/** A PCI display device (class 0x03xxxx) from sysfs. */
export interface PciGpu {
  address: string;
  vendor: number;
  device: number;
}

/** PCI vendor ids of the vendors whose adapters Dawn names. */
const VENDORS: [RegExp, number][] = [
  [/nvidia/i, 0x10de],
  [/amd|radeon/i, 0x1002],
  [/intel/i, 0x8086],
];

/** The PCI vendor id an adapter name implies, or null. */
export function vendorOf(adapterName: string): number | null {
  for (const [re, id] of VENDORS) if (re.test(adapterName)) return id;
  return null;
}

/** Display-class PCI devices (of `vendor`, if given), sorted by bus address. */
export function pciGpus(vendor: number | null = null, root = '/sys/bus/pci/devices'): PciGpu[] {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  const out: PciGpu[] = [];
  for (const address of names) {
    try {
      const read = (f: string) => parseInt(readFileSync(join(root, address, f), 'utf8').trim(), 16);
      if (read('class') >> 16 !== 0x03) continue;
      const v = read('vendor');
      if (vendor !== null && v !== vendor) continue;
      out.push({ address, vendor: v, device: read('device') });
    } catch {
      // a device without readable ids is not a candidate
    }
  }
  return out.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
}

/** The environment that exposes only the card at PCI `address` (`DDDD:BB:DD.F`) to Vulkan. */
export function visibilityEnv(address: string): Record<string, string> {
  const m = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i.exec(address);
  if (!m) throw new TensorError(`not a PCI address: '${address}' (expected DDDD:BB:DD.F)`);
  return { DRI_PRIME: `pci-${m[1]}_${m[2]}_${m[3]}_${m[4]}`, MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE: '1' };
}
