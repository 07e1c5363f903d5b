// Bundles the browser example's compute worker (mega-ts included) with esbuild for the browser:
// the package.json `browser` map swaps the platform modules, and the build fails if any Node
// built-in is left on the path. Needs `npm run build` first (it bundles dist/).
//   node scripts/build-browser.mjs   → examples/browser/build/mega-worker.js (prints its size)
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

/** Builds the bundle; returns its path, size in bytes and the bundled input files. */
export async function buildBrowser({ minify = true } = {}) {
  const out = fileURLToPath(new URL('../examples/browser/build/mega-worker.js', import.meta.url));
  const r = await build({
    entryPoints: [fileURLToPath(new URL('../examples/browser/worker.js', import.meta.url))],
    // identifiers keep their names: the CPU kernels generate code from function sources (erf, ...)
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minifyWhitespace: minify,
    minifySyntax: minify,
    outfile: out,
    metafile: true,
    logLevel: 'silent',
  });
  const inputs = Object.keys(r.metafile.inputs);
  const node = inputs.filter((i) => i.startsWith('node:') || /(^|\/)(fs|os|path|worker_threads|module|url|crypto|zlib)$/.test(i));
  if (node.length) throw new Error(`browser bundle pulls Node built-ins: ${node.join(', ')}`);
  return { path: out, bytes: r.metafile.outputs[Object.keys(r.metafile.outputs)[0]].bytes, inputs };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = await buildBrowser();
  console.log(`${r.path}: ${r.bytes} bytes (${r.inputs.length} modules)`);
}
