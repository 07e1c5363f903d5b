// `npm pack` / `npm publish` hooks: the published package.json carries no `prepare` script (the
// repository's build step; a consumer's npm would list it among the package's install scripts).
//   prepack:  node scripts/pack-manifest.mjs strip     (keeps the original in .package.json.pack)
//   postpack: node scripts/pack-manifest.mjs restore
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const pkg = fileURLToPath(new URL('../package.json', import.meta.url));
const saved = fileURLToPath(new URL('../.package.json.pack', import.meta.url));
const mode = process.argv[2];
if (mode === 'strip') {
  const text = readFileSync(pkg, 'utf8');
  if (!existsSync(saved)) writeFileSync(saved, text);
  const m = JSON.parse(text);
  delete m.scripts.prepare;
  // replaced atomically: tests running beside a pack read package.json
  writeFileSync(`${pkg}.tmp`, JSON.stringify(m, null, 2) + '\n');
  renameSync(`${pkg}.tmp`, pkg);
} else if (mode === 'restore') {
  if (existsSync(saved)) renameSync(saved, pkg);
} else {
  throw new Error(`usage: pack-manifest.mjs strip|restore (got ${mode})`);
}
