/**
 * A/B of a library switch over whole training steps in one process:
 * `node --expose-gc dist/bench/ab-switch.js <switch> <case> [steps]` builds `trainStepOf(case)`
 * once and alternates the steps between the switch off and on (`steps` each, default 100, after
 * 20 warm-up steps; which side goes first alternates), so both sides see the same load and the
 * same model. Switches: `causal-products` (attention under a causal mask skips the masked
 * products, `setCausalProducts`), `fused-gates` (the Mega layer's fused gate kernels,
 * `setFusedGates`), `deferred-jobs` (kernels of the resident step queue their jobs and return,
 * `deferredJobs.allowed` in src/tensor/backends/cpu/wasm/runtime.ts). Prints one JSON line: median wall ms per step of each side and on / off.
 * The switch is left as it was.
 */
import { pathToFileURL } from 'node:url';
import { setCausalProducts, setFusedGates } from '../src/mega/attention.js';
import { deferredJobs } from '../src/tensor/backends/cpu/wasm/runtime.js';
import { trainStepOf } from './train.js';

/** The switches, each a setter returning the previous setting. */
export const SWITCHES: Readonly<Record<string, (on: boolean) => boolean>> = {
  'causal-products': setCausalProducts,
  'fused-gates': setFusedGates,
  'deferred-jobs': (on) => {
    const prev = deferredJobs.allowed;
    deferredJobs.allowed = on;
    return prev;
  },
};

/** Runs the A/B; `argv` = [switch, case, steps?]. */
export function abSwitch(argv: string[]): { switch: string; case: string; off: number; on: number; ratio: number } {
  const [name, kase, n] = argv;
  const set = SWITCHES[name ?? ''];
  if (!set || !kase) throw new Error(`usage: ab-switch.js <switch> <case> [steps]; switches: ${Object.keys(SWITCHES).join(', ')}`);
  const steps = Number(n ?? 100);
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`ab-switch: steps must be a positive integer, got '${n}'`);
  const { step } = trainStepOf(kase);
  const prev = set(true);
  const ms: Record<'off' | 'on', number[]> = { off: [], on: [] };
  try {
    for (let i = 0; i < 20; i++) {
      set(i % 2 === 1);
      step();
    }
    for (let i = 0; i < steps; i++) {
      for (const side of (i % 2 ? ['off', 'on'] : ['on', 'off']) as ('off' | 'on')[]) {
        set(side === 'on');
        const t0 = performance.now();
        step();
        ms[side].push(performance.now() - t0);
      }
    }
  } finally {
    set(prev);
  }
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return { switch: name!, case: kase, off: r(med(ms.off)), on: r(med(ms.on)), ratio: r(med(ms.on) / med(ms.off)) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) process.stdout.write(JSON.stringify(abSwitch(process.argv.slice(2))) + '\n');
