/**
 * The browser example in a real browser: Debian's chromium, headless, driven by playwright-core
 * (no browser download), served with COOP/COEP headers. The page's outputs must equal Node's for
 * the same model folder and input, bitwise (CPU kernels, same thread count): ListOps
 * classification, greedy LM generation, and a matrix product large enough to run on the Web
 * Worker pool (which must have done part of the work). Without isolation the page must run
 * single-threaded with the same results. A screenshot of the page is saved under test-artifacts/.
 *
 * Skips (with the reason) when /usr/bin/chromium is missing and CI is unset; fails under CI.
 * Needs `npm run build` (the page bundles dist/).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { classify, generate, getNumThreads, loadModel, setNumThreads } from '../../src/index.js';
import { matmul } from '../../src/tensor/kernels.js';
import { setSimd } from '../../src/tensor/backends/cpu/wasm/runtime.js';
import { fromStorage } from '../../src/tensor/tensor.js';
import { skipWithout } from '../system.js';
import { tinyRun } from '../tiny.js';

const CHROMIUM = '/usr/bin/chromium';
const repo = resolve(__dirname, '../..');
const artifacts = join(repo, 'test-artifacts');
const EXPR = '[MAX 2 9 [MIN 4 7 ] 0 ]';
const PROMPT = 'the qu';
const have = existsSync(CHROMIUM);

/** FNV-1a of bytes, as examples/browser/worker.js computes it. */
function fnv1a(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 16777619) >>> 0;
  return h.toString(16);
}

/** The same deterministic matrix as examples/browser/worker.js. */
function matrix(n: number, seed: number) {
  const a = new Float32Array(n * n);
  let s = seed >>> 0;
  for (let i = 0; i < a.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return fromStorage(a, [n, n]);
}

if (skipWithout({ chromium: have })) {
  it.skip(`browser test skipped: ${CHROMIUM} not found (apt-get install -y chromium); it runs, and must pass, when CI is set`, () => undefined);
} else {
  describe('examples/browser in headless chromium', () => {
    const work = mkdtempSync(join(tmpdir(), 'mega-browser-'));
    const listops = join(work, 'listops-model');
    const lm = join(work, 'lm-model');
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    let context: any;
    const servers: { origin: string; close(): Promise<unknown> }[] = [];
    const threads0 = getNumThreads();

    beforeAll(async () => {
      expect(existsSync(CHROMIUM), `${CHROMIUM} is missing (CI is set): apt-get install -y chromium`).toBe(true);
      expect(existsSync(join(repo, 'dist/src/index.js')), 'dist/ missing: run npm run build').toBe(true);
      const { buildBrowser } = (await import(join(repo, 'scripts/build-browser.mjs'))) as { buildBrowser(): Promise<{ bytes: number }> };
      const b = await buildBrowser();
      process.stdout.write(`browser bundle: ${b.bytes} bytes\n`);
      vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
      const small = tinyRun(3);
      expect(await main(['train', '--listops-train', '32', '--listops-valid', '8', '--listops-test', '8', ...small, '--save-dir', join(work, 'r1')])).toBe(0);
      expect(await main(['export', join(work, 'r1', 'checkpoint_last.safetensors'), listops])).toBe(0);
      writeFileSync(join(work, 'lm.txt'), 'the quick brown fox jumps over the lazy dog\n'.repeat(40));
      expect(await main(['train', '--task', 'lm', '--data', join(work, 'lm.txt'), '--tokens-per-sample', '32', ...small, '--save-dir', join(work, 'r2')])).toBe(
        0,
      );
      expect(await main(['export', join(work, 'r2', 'checkpoint_last.safetensors'), lm])).toBe(0);
      vi.restoreAllMocks();
      const { chromium } = await import('playwright-core');
      context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'mega-chromium-profile-')), {
        executablePath: CHROMIUM,
        headless: true,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
    }, 300_000);

    afterAll(async () => {
      setNumThreads(threads0);
      await context?.close();
      for (const s of servers) await s.close();
      rmSync(work, { recursive: true, force: true });
    });

    async function openPage(isolate: boolean) {
      const { serveExample } = (await import(join(repo, 'examples/browser/serve.mjs'))) as {
        serveExample(o: object): Promise<{ origin: string; close(): Promise<unknown> }>;
      };
      const s = await serveExample({ models: { '/model/': listops, '/lm/': lm }, isolate });
      servers.push(s);
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e: Error) => errors.push(e.message));
      await page.goto(`${s.origin}/`);
      await page.waitForFunction(() => (window as unknown as { mega?: unknown }).mega !== undefined);
      const info = (await page.evaluate(() => (window as unknown as { mega: { info(): Promise<unknown> } }).mega.info())) as {
        threads: number;
        crossOriginIsolated: boolean;
        simd: { enabled: boolean };
      };
      return { page, info, errors };
    }

    it(
      'cross-origin isolated: Web Workers + SIMD; classify, generate, pooled matmuls (SIMD, ' +
        'and plain TS whose pool restarts on buffer growth) equal Node bitwise; screenshot',
      async () => {
        const { page, info, errors } = await openPage(true);
        expect(info.crossOriginIsolated).toBe(true);
        expect(info.simd.enabled).toBe(true);
        expect(info.threads).toBeGreaterThanOrEqual(1);
        setNumThreads(info.threads); // results are bitwise equal for a given thread count
        const call = (fn: string, ...args: unknown[]) =>
          page.evaluate(
            ([f, a]: [string, unknown[]]) => (window as unknown as Record<string, Record<string, (...x: unknown[]) => unknown>>).mega[f](...a),
            [fn, args],
          );

        expect(await call('load', './model/')).toMatchObject({ kind: 'classifier', arch: 'mega_lra_listop_tiny' });
        const c = (await call('classify', './model/', EXPR)) as { label: number; logits: number[] };
        const node = classify(await loadModel(listops), EXPR);
        expect(c.logits).toEqual(node.logits);
        expect(c.label).toBe(node.label);

        expect(await call('load', './lm/')).toMatchObject({ kind: 'lm', arch: 'mega_lm_tiny' });
        const g = (await call('generate', './lm/', PROMPT, { maxNewTokens: 10, greedy: true })) as { ids: number[]; logprobs: number[] };
        const want: { id: number; logprob: number }[] = [];
        for await (const t of generate(await loadModel(lm), PROMPT, { maxNewTokens: 10, greedy: true })) want.push(t);
        expect(g.ids).toEqual(want.map((t) => t.id));
        // the ids are exact; a logprob goes through Math.exp / Math.log,
        // whose last bit differs between Node's V8 and the browser's (the language leaves their
        // precision to the engine: ~10 % of exp results differ by an ulp), hence 1e-14 relative
        expect(g.logprobs).toHaveLength(want.length);
        g.logprobs.forEach((lp, i) => expect(Math.abs(lp - want[i].logprob)).toBeLessThanOrEqual(1e-14 * Math.abs(want[i].logprob)));

        const n = 384;
        const workerTasks: number[] = [];
        for (const simd of [true, false]) {
          const mm = (await call('matmul', { n, simd })) as { hash: string; head: number[]; stats: { workersReady: number }; workerTasks: number };
          setSimd(simd);
          const ref = matmul(matrix(n, 1), matrix(n, 2)).toTypedArray() as Float32Array;
          setSimd(true);
          expect(mm.head, `simd ${simd}`).toEqual(Array.from(ref.subarray(0, 8)));
          expect(mm.hash, `simd ${simd}`).toBe(fnv1a(new Uint8Array(ref.buffer, ref.byteOffset, ref.byteLength)));
          if (info.threads > 1) {
            expect(mm.stats.workersReady, `simd ${simd}`).toBeGreaterThanOrEqual(info.threads - 1);
            expect(mm.workerTasks, `simd ${simd}: tasks run by pool workers`).toBeGreaterThan(0);
          }
          workerTasks.push(mm.workerTasks);
        }
        process.stdout.write(
          `browser: ${info.threads} threads, isolated; classify logits, ${g.ids.length} generated tokens and ` +
            `${n}×${n} matmuls (SIMD and plain) equal Node bitwise (pool worker tasks ${workerTasks.join(', ')})\n`,
        );

        // the page as a person uses it, for the screenshot
        await page.click('#load');
        await page.waitForFunction(() => document.getElementById('model')!.textContent!.includes('parameters'));
        await page.click('#classify');
        await page.waitForFunction(() => document.getElementById('out')!.textContent!.startsWith('class '));
        expect(await page.textContent('#out')).toContain(`class ${node.label}`);
        mkdirSync(artifacts, { recursive: true });
        await page.screenshot({ path: join(artifacts, 'browser-example.png'), fullPage: true });
        expect(errors).toEqual([]);
      },
    );

    it('not isolated: single-threaded, the same results', async () => {
      const { page, info, errors } = await openPage(false);
      expect(info.crossOriginIsolated).toBe(false);
      expect(info.threads).toBe(1);
      await page.evaluate(() => (window as unknown as { mega: { load(u: string): Promise<unknown> } }).mega.load('./model/'));
      const c = await page.evaluate(
        (e: string) => (window as unknown as { mega: { classify(u: string, t: string): Promise<{ logits: number[] }> } }).mega.classify('./model/', e),
        EXPR,
      );
      setNumThreads(1);
      expect(c.logits).toEqual(classify(await loadModel(listops), EXPR).logits);
      expect(errors).toEqual([]);
    });
  });
}
