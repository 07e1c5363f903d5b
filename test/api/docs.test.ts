/**
 * docs/API.md: every ```js example runs, as a user would run it — `node` on the block, importing
 * `mega-ts` from a node_modules link to this package (dist/, so `npm run build` first), in a
 * folder holding the models the examples name. The browser example is bundled with esbuild for
 * the browser and run with a `self` stand-in, loading its model over HTTP.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { tinyRun } from '../tiny.js';

const repo = resolve(__dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'mega-docs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const blocks = [...readFileSync(join(repo, 'docs/API.md'), 'utf8').matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);

beforeAll(async () => {
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const small = tinyRun(2);
  expect(await main(['train', '--listops-train', '32', '--listops-valid', '8', '--listops-test', '8', ...small, '--save-dir', join(dir, 'checkpoints')])).toBe(
    0,
  );
  expect(await main(['export', join(dir, 'checkpoints', 'checkpoint_last.safetensors'), join(dir, 'my-model')])).toBe(0);
  writeFileSync(join(dir, 'lm.txt'), 'hello there, the quick brown fox\n'.repeat(40));
  expect(await main(['train', '--task', 'lm', '--data', join(dir, 'lm.txt'), '--tokens-per-sample', '32', ...small, '--save-dir', join(dir, 'lm-run')])).toBe(
    0,
  );
  expect(await main(['export', join(dir, 'lm-run', 'checkpoint_last.safetensors'), join(dir, 'lm-model')])).toBe(0);
  vi.restoreAllMocks();
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(repo, join(dir, 'node_modules', 'mega-ts'), 'dir');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'docs-examples', private: true, type: 'module' }));
  cpSync(join(dir, 'my-model'), join(dir, 'served', 'my-model'), { recursive: true });
}, 300_000);

async function node(file: string): Promise<{ out: string; err: string }> {
  const { stdout, stderr } = await promisify(execFile)('node', [file], { cwd: dir, encoding: 'utf8' });
  return { out: stdout, err: stderr };
}

describe('docs/API.md examples', () => {
  it('has examples', () => expect(blocks.length).toBeGreaterThanOrEqual(8));

  blocks.forEach((code, i) => {
    const first = code.split('\n').find((l) => l.trim() !== '' && !l.startsWith('import')) ?? '';
    it(`example ${i + 1}: ${first.slice(0, 60)}`, async () => {
      const file = join(dir, `example-${i + 1}.mjs`);
      if (code.includes('self.onmessage')) {
        // the browser example: bundle for the browser, run with a stand-in `self`, model over HTTP
        const server = createServer((req, res) => {
          try {
            res.writeHead(200).end(readFileSync(join(dir, 'served', decodeURIComponent(new URL(req.url!, 'http://x').pathname))));
          } catch {
            res.writeHead(404).end();
          }
        });
        await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
        try {
          const r = await build({
            stdin: { contents: code, resolveDir: dir, sourcefile: 'worker.js' },
            bundle: true,
            format: 'esm',
            platform: 'browser',
            write: false,
            logLevel: 'silent',
          });
          const page = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
          writeFileSync(
            file,
            `globalThis.self = { postMessage: (m) => console.log(JSON.stringify(m)) ` +
              `};\n${r.outputFiles[0].text}\nawait self.onmessage({ data: { page: '${page}', text: '[MAX 2 9 ]' } });\n`,
          );
          const { out, err } = await node(file);
          expect(err).toBe('');
          expect(JSON.parse(out)).toMatchObject({ label: expect.any(Number), scores: expect.any(Array) });
        } finally {
          server.close();
        }
        return;
      }
      writeFileSync(file, code);
      const { out, err } = await node(file);
      expect(err).toBe('');
      expect(out.trim()).not.toBe('');
      if (code.includes('isUserError')) expect(out).toMatch(/^true .*no-such-model/);
    });
  });
});
