// A static server for the example with the headers that make the page cross-origin isolated
// (COOP same-origin + COEP require-corp: SharedArrayBuffer, so the kernels can use Web Workers).
//   node examples/browser/serve.mjs [MODEL_DIR] [PORT]   → http://localhost:PORT/ (model at ./model/)
import { readFile, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.json': 'application/json', '.txt': 'text/plain', '.png': 'image/png' };

/**
 * Starts the server: the example folder at `/`, `models` (URL prefix → folder) beside it.
 * @returns its origin and a close function
 */
export async function serveExample({ models = {}, port = 0, isolate = true } = {}) {
  const root = fileURLToPath(new URL('.', import.meta.url));
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    let base = root,
      rel = path;
    for (const [prefix, dir] of Object.entries(models)) {
      if (path.startsWith(prefix)) {
        base = resolve(dir);
        rel = path.slice(prefix.length);
      }
    }
    const file = normalize(join(base, rel.endsWith('/') || rel === '' ? `${rel}index.html` : rel));
    const headers = isolate ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } : {};
    try {
      if (!file.startsWith(base) || !(await stat(file)).isFile()) throw new Error('not found');
      res.writeHead(200, { ...headers, 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(await readFile(file));
    } catch {
      res.writeHead(404, headers).end('not found');
    }
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { origin: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const s = await serveExample({ models: process.argv[2] ? { '/model/': process.argv[2] } : {}, port: Number(process.argv[3] ?? 8080) });
  console.log(`serving ${s.origin}/ (model folder: ${process.argv[2] ?? 'none'})`);
}
