/**
 * A/B of whole training steps between two builds in one process:
 * `node --expose-gc dist/bench/ab-train.js <other-tree> <case> [steps]` loads `<other-tree>/dist/
 * bench/train.js` (e.g. a checkout of main, built) next to this tree's, makes both `trainStepOf`
 * steps (same data, model and seed) and alternates them, `steps` each (default 60) after 6
 * warm-up steps. On a shared machine the two sides then see the same load, which separate
 * processes do not. Each build has its own modules, wasm memory and pool; the V8 heap is shared.
 * Prints one JSON line: median and mean CPU ms per step (user + system) of each side, and the
 * ratios this tree / other; the same for wall ms, and the median of the per-pair wall ratios
 * (each step of this tree over the other side's step next to it).
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { trainStepOf } from './train.js';

type StepOf = typeof trainStepOf;

/** Runs the A/B; `argv` = [other tree, case, steps?]. */
export async function abTrain(argv: string[]): Promise<void> {
  const [tree, name, n] = argv;
  if (!tree || !name) throw new Error('usage: ab-train.js <other-tree> <case> [steps]');
  const steps = Number(n ?? 60);
  const other = (await import(pathToFileURL(path.resolve(tree, 'dist/bench/train.js')).href)) as { trainStepOf: StepOf };
  const sides = { other: other.trainStepOf(name).step, this: trainStepOf(name).step };
  for (let i = 0; i < 6; i++) for (const s of Object.values(sides)) s();
  const cpu: Record<keyof typeof sides, number[]> = { other: [], this: [] };
  const wall: Record<keyof typeof sides, number[]> = { other: [], this: [] };
  for (let i = 0; i < steps; i++) {
    // alternate which side goes first
    for (const k of (i % 2 ? ['other', 'this'] : ['this', 'other']) as (keyof typeof sides)[]) {
      const c0 = process.cpuUsage(),
        t0 = performance.now();
      sides[k]();
      wall[k].push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      cpu[k].push((c.user + c.system) / 1000);
    }
  }
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const r = (x: number) => Math.round(x * 1000) / 1000;
  const out = {
    case: name,
    other: { median: r(med(cpu.other)), mean: r(mean(cpu.other)) },
    this: { median: r(med(cpu.this)), mean: r(mean(cpu.this)) },
    ratioMedian: r(med(cpu.this) / med(cpu.other)),
    ratioMean: r(mean(cpu.this) / mean(cpu.other)),
    wall: { other: r(med(wall.other)), this: r(med(wall.this)) },
    wallRatioMedian: r(med(wall.this) / med(wall.other)),
    wallPairedMedian: r(med(wall.this.map((t, i) => t / wall.other[i]))),
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await abTrain(process.argv.slice(2));
