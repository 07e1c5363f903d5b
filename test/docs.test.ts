/**
 * The docs stay true to the code: every `docs/MEGA.md §N.M` citation names a section that exists,
 * and docs/KERNELS.md has a row for every kernel of backend.ts whose files exist.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(__dirname, '..');
const read = (p: string): string => readFileSync(join(ROOT, p), 'utf8');

function files(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(join(ROOT, dir))) {
    const p = join(dir, name);
    if (statSync(join(ROOT, p)).isDirectory()) files(p, out);
    else if (/\.(ts|mjs|js|py|md)$/.test(name)) out.push(p);
  }
  return out;
}

/** Section numbers of the headings of a Markdown file (`## 5.`, `### 5.3 …`). */
export function sectionNumbers(md: string): Set<string> {
  const s = new Set<string>();
  for (const m of md.matchAll(/^#{2,4} (\d+(?:\.\d+)*)\.? /gm)) s.add(m[1]);
  return s;
}

/** Every `docs/MEGA.md §…` citation of a text: section numbers (ranges give both ends; `§10 item 7` gives 10). */
export function megaCitations(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/docs\/MEGA\.md`? §(\d+(?:\.\d+)*)(?:[–-](\d+(?:\.\d+)*))?/g)) {
    out.push(m[1]);
    if (m[2]) out.push(m[2]);
  }
  return out;
}

describe('docs/MEGA.md', () => {
  it('finds citations and sections in text', () => {
    expect(megaCitations('see docs/MEGA.md §6.2–6.7 and `docs/MEGA.md` §10 item 4, docs/MEGA.md §5')).toEqual(['6.2', '6.7', '10', '5']);
    expect([...sectionNumbers('## 5. MultiHeadEMA\n### 5.3 Kernel\n#### not a section\n')]).toEqual(['5', '5.3']);
  });

  it('every citation in src, test, bench, docs and README names an existing section', () => {
    const sections = sectionNumbers(read('docs/MEGA.md'));
    const bad: string[] = [];
    for (const f of [...files('src'), ...files('test'), ...files('bench'), ...files('docs'), 'README.md']) {
      for (const c of megaCitations(read(f))) if (!sections.has(c)) bad.push(`${f}: §${c}`);
    }
    expect(bad).toEqual([]);
  });
});

describe('docs/KERNELS.md', () => {
  const table = read('docs/KERNELS.md');
  const rows = table.split('\n').filter((l) => /^\| `\w+`/.test(l));

  it('has one row per kernel of backend.ts (primitive and fused)', () => {
    const src = read('src/tensor/backend.ts');
    const names: string[] = [];
    for (const iface of ['Kernels', 'FusedKernels']) {
      const body = new RegExp(`export interface ${iface} \\{([\\s\\S]*?)\\n\\}`).exec(src)![1];
      for (const m of body.matchAll(/^ {2}(\w+)\(/gm)) names.push(m[1]);
    }
    expect(names.length).toBeGreaterThan(15);
    const documented = rows.map((r) => /^\| `(\w+)`/.exec(r)![1]);
    expect([...documented].sort()).toEqual([...names].sort());
  });

  it('every file the table names exists', () => {
    const missing: string[] = [];
    for (const r of rows) {
      const cells = r.split('|').slice(2, -1); // kernel name cell dropped
      cells.forEach((cell, i) => {
        for (const m of cell.matchAll(/`([\w./-]+\.ts)`/g)) {
          const base = i === cells.length - 1 ? 'src/autograd/ops' : 'src/tensor/backends';
          const p = m[1].startsWith('src/') ? m[1] : join(base, m[1]);
          if (!existsSync(join(ROOT, p))) missing.push(p);
        }
      });
    }
    expect(missing).toEqual([]);
  });
});
