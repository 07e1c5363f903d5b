/**
 * The package as a user gets it: `npm pack` of the built tree, then `npm install --omit=dev` of
 * the tarball into a fresh project. Checks what ships, the footprint (≤ 10 MB, no native build, no
 * install script), imports of the root (ESM and require) and a subpath, types, and a forward
 * pass whose outputs equal the ones computed here from the sources.
 *
 * Needs `npm run build` first (dist/, as every CLI test) and the npm registry for the one runtime
 * dependency (fft.js; the npm cache is preferred).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { classify, loadModel } from '../../src/index.js';
import { tinyRun } from '../tiny.js';

const repo = resolve(__dirname, '../..');
const work = mkdtempSync(join(tmpdir(), 'mega-pack-'));
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  execFileSync('node', [join(repo, 'scripts/pack-manifest.mjs'), 'restore']); // in case a pack stopped half-way
});
const LIMIT = 10 * 1024 * 1024;
const EXPR = '[MAX 2 9 [MIN 4 7 ] 0 ]';

function run(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_update_notifier: 'false' } });
}

/** Total bytes of the files under `dir` (what `du -sb` reports, without directory blocks). */
function bytesUnder(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) n += bytesUnder(p);
    else if (e.isFile()) n += statSync(p).size;
  }
  return n;
}

let tarball = '';
let project = '';
let installLog = '';
const model = join(work, 'model');

beforeAll(async () => {
  expect(existsSync(join(repo, 'dist/src/index.js')), 'dist/ missing: run npm run build').toBe(true);
  // the model the consumer will load: a tiny ListOps run exported as a model folder
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const save = join(work, 'run');
  expect(await main(['train', '--listops-train', '32', '--listops-valid', '8', '--listops-test', '8', ...tinyRun(2), '--save-dir', save])).toBe(0);
  expect(await main(['export', join(save, 'checkpoint_last.safetensors'), model])).toBe(0);
  vi.restoreAllMocks();
  // with its prepack/postpack hooks, as `npm publish` packs (they drop the repository's `prepare`)
  const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], repo)) as { filename: string }[];
  tarball = join(work, packed[0].filename);
  project = join(work, 'consumer');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  const inst = spawnSync('npm', ['install', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: project, encoding: 'utf8' });
  expect(inst.status, inst.stderr).toBe(0);
  installLog = `${inst.stdout}${inst.stderr}`;
}, 600_000);

describe('npm pack + npm install --omit=dev of the tarball', () => {
  it('ships the compiled library and CLI, types, README and LICENSE, nothing else', () => {
    const files = (JSON.parse(run('npm', ['pack', '--dry-run', '--ignore-scripts', '--json'], repo)) as { files: { path: string }[] }[])[0].files.map(
      (f) => f.path,
    );
    for (const f of files) expect(f, f).toMatch(/^(dist\/src\/.*\.(js|d\.ts)|package\.json|README\.md|LICENSE)$/);
    for (const f of ['LICENSE', 'README.md', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/cli/main.js', 'dist/src/tensor/platform/browser.js'])
      expect(files).toContain(f);
    expect(files.some((f) => f.startsWith('dist/bench') || f.startsWith('test/'))).toBe(false);
  });

  it('is at most 10 MB, without native code or install scripts', () => {
    const nm = join(project, 'node_modules');
    const size = bytesUnder(nm);
    expect(size).toBeLessThanOrEqual(LIMIT);
    const pkgs = readdirSync(nm).filter((n) => !n.startsWith('.'));
    expect(pkgs.sort()).toEqual(['fft.js', 'mega-ts']);
    for (const p of pkgs) {
      const pj = JSON.parse(readFileSync(join(nm, p, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
      for (const s of ['preinstall', 'install', 'postinstall', 'prepare']) expect(pj.scripts?.[s], `${p} ${s}`).toBeUndefined();
      expect(existsSync(join(nm, p, 'binding.gyp')), `${p} binding.gyp`).toBe(false);
    }
    expect(installLog).not.toMatch(/install.scripts|gyp/i);
    process.stdout.write(`footprint: tarball ${statSync(tarball).size} B, node_modules ${size} B (${pkgs.length} packages)\n`);
  });

  it('imports the root (ESM and require) and a subpath; loads the model folder; predicts as the sources do', async () => {
    const want = classify(await loadModel(model), EXPR);
    writeFileSync(
      join(project, 'run.mjs'),
      `
import { createRequire } from 'node:module';
import { loadModel, classify, tidy } from 'mega-ts';
import { zeros } from 'mega-ts/tensor';
const cjs = createRequire(import.meta.url)('mega-ts');
const m = await loadModel(process.argv[2]);
const r = tidy(() => classify(m, process.argv[3]));
console.log(JSON.stringify({ kind: m.kind, logits: r.logits, label: r.label, cjs: typeof cjs.loadModel, zeros: zeros([2]).size }));
`,
    );
    const got = JSON.parse(run('node', ['run.mjs', model, EXPR], project)) as { kind: string; logits: number[]; label: number; cjs: string; zeros: number };
    expect(got).toEqual({ kind: 'classifier', logits: want.logits, label: want.label, cjs: 'function', zeros: 2 });
  });

  it('the types check: typed forward per model class, every export declared', () => {
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: false, types: [] },
        files: ['use.ts'],
      }),
    );
    writeFileSync(
      join(project, 'use.ts'),
      `
import { loadModel, generate, type Pretrained } from 'mega-ts';
import type { Tensor } from 'mega-ts/tensor';
import { MegaLanguageModel } from 'mega-ts/models';
export async function f(src: string, ids: Tensor): Promise<number[]> {
  const m: Pretrained = await loadModel(src);
  if (m.kind === 'lm') {
    const logits: Tensor = m.forward(ids);
    const lm: MegaLanguageModel = m.model;
    void lm;
    const out: number[] = [];
    for await (const t of generate(m, 'hi', { maxNewTokens: 2 })) out.push(t.id);
    return [...logits.shape, ...out];
  }
  return [];
}
`,
    );
    const tsc = join(repo, 'node_modules/typescript/bin/tsc');
    let out: string;
    try {
      out = run('node', [tsc, '-p', 'tsconfig.json'], project);
    } catch (e) {
      out = String((e as { stdout?: string }).stdout ?? e);
    }
    expect(out).toBe('');
  });

  it('optional pieces name the packages to install: gpujs (gpu.js, webgpu), mega verify (msgpackr)', () => {
    writeFileSync(
      join(project, 'gpu.mjs'),
      `
import { useBackend } from 'mega-ts';
try { await useBackend('gpujs'); console.log('started'); } catch (e) { console.log(e.message.split('\\n')[0]); }
`,
    );
    const gpu = run('node', ['gpu.mjs'], project);
    expect(gpu).toMatch(/gpu\.js/);
    expect(gpu).toMatch(/webgpu/);
    const bin = join(project, 'node_modules/.bin/mega');
    expect(run(bin, ['--version'], project).trim()).toBe(JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')).version);
    let verify = '';
    try {
      run(bin, ['verify', join(repo, 'test/golden/ema_uni.msgpack')], project);
    } catch (e) {
      const x = e as { stdout?: string; stderr?: string; status?: number };
      verify = `${x.stdout}${x.stderr}`;
      expect(x.status).not.toBe(0);
    }
    expect(verify).toMatch(/optional package msgpackr: npm install msgpackr/);
  });
});
