/**
 * The floors of ARCHITECTURE.md, checked over the import graph of src/: a module imports only
 * modules of its own floor or lower ones (type-only imports and dynamic `import()` included).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(__dirname, '../src');

/** Floor of a file under src/ (path relative to src/, forward slashes); undefined = not placed yet. */
function floorOf(rel: string): number | undefined {
  if (rel === 'errors.ts') return 0;
  if (rel === 'index.ts') return 8; // the package's top-level entry may import every floor
  const top = rel.split('/')[0];
  const floors: Record<string, number> = { tensor: 1, autograd: 2, nn: 3, mega: 4, train: 5, data: 5, io: 5, verify: 5, dist: 6, cli: 7, api: 7 };
  return floors[top];
}

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (/\.(ts|mts|cts)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Relative module specifiers of a source file: `import … from`, `export … from`, side-effect `import '…'`, `import('…')`. */
export function importSpecifiers(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const specs: string[] = [];
  const patterns = [/\b(?:import|export)\s[^'"`;]*?\sfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g];
  for (const re of patterns) for (const m of code.matchAll(re)) specs.push(m[1]);
  return specs;
}

/** Every upward import in src/, as `from → to` lines. */
function upwardImports(): string[] {
  const bad: string[] = [];
  for (const file of sources(SRC)) {
    const rel = relative(SRC, file).replace(/\\/g, '/');
    const floor = floorOf(rel);
    if (floor === undefined) {
      bad.push(`${rel}: in no floor (add its folder to floorOf in test/floors.test.ts)`);
      continue;
    }
    for (const spec of importSpecifiers(readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.')) continue; // node: builtins and packages
      const target = relative(SRC, resolve(dirname(file), spec))
        .replace(/\\/g, '/')
        .replace(/\.js$/, '.ts');
      if (target.startsWith('..')) {
        bad.push(`${rel} → ${spec}: outside src/`);
        continue;
      }
      const to = floorOf(target);
      if (to === undefined || to > floor) bad.push(`${rel} (floor ${floor}) → ${target} (floor ${to ?? '?'})`);
    }
  }
  return bad;
}

describe('floors', () => {
  it('finds every kind of import statement', () => {
    const text = [
      "import { a } from './a.js';",
      "import type { B } from '../b/b.js';",
      "import {\n  c,\n  d,\n} from './cd.js';",
      "export * from './e.js';",
      "export { f } from './f.js';",
      "import './side-effect.js';",
      "const g = await import('./g.js');",
      "// import { h } from './commented.js';",
      "/* import { i } from './block.js'; */",
      "import { readFileSync } from 'node:fs';",
    ].join('\n');
    expect(importSpecifiers(text)).toEqual(['./a.js', '../b/b.js', './cd.js', './e.js', './f.js', 'node:fs', './side-effect.js', './g.js']);
  });

  it('no module of src/ imports a higher floor', () => {
    expect(upwardImports()).toEqual([]);
  });
});
