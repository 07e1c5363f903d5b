/**
 * `mega eval` of a checkpoint converted by `mega import-fairseq` (its stored training options are
 * only `imported_from` / `format`), in real processes: the task's defaults fill what the release
 * did not store (generated ListOps, batch sizes), and a missing `--data` is named.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildForChildren, run, type Built } from '../dist/helpers.js';

const CK = fileURLToPath(new URL('../golden/checkpoints/', import.meta.url));
let built: Built;
let cli: string;
const tmp = mkdtempSync(join(tmpdir(), 'mega-eval-imported-'));
beforeAll(async () => {
  built = await buildForChildren();
  cli = built.js('src/cli/main.ts');
  for (const [pt, out] of [
    ['mega_lra_listops_tiny.pt', 'listops.safetensors'],
    ['mega_lm_tiny.pt', 'lm.safetensors'],
  ]) {
    const r = await run('node', [cli, 'import-fairseq', join(CK, pt!), join(tmp, out!)]).done;
    expect(r.code, r.stderr).toBe(0);
  }
}, 120000);
afterAll(() => {
  built?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

const mega = (...args: string[]) => run('node', [cli, 'eval', ...args], { timeoutMs: 120000 }).done;

describe('mega eval of an imported fairseq checkpoint', () => {
  it('listops without --data or --batch-size: the generated validation split of the task defaults', async () => {
    const r = await mega(join(tmp, 'listops.safetensors'), '--json');
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout.trim());
    expect(j).toMatchObject({ task: 'listops', split: 'valid', examples: 500 });
    expect(j.accuracy).toBeGreaterThanOrEqual(0);
    expect(j.accuracy).toBeLessThanOrEqual(1);
  }, 120000);

  it('lm: without --data, and with data of another vocabulary, one-line user errors (not a crash)', async () => {
    const none = await mega(join(tmp, 'lm.safetensors'));
    expect(none.code, none.stderr).toBe(2);
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
    expect(none.stderr).toMatch(/needs --data/);
    const text = join(tmp, 'corpus.txt');
    writeFileSync(text, 'abc def ghi '.repeat(400));
    const r = await mega(join(tmp, 'lm.safetensors'), '--data', text, '--json');
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    // the released tiny LM has a 30-symbol dictionary; a text file is read byte-level (260 ids)
    expect(r.stderr).toMatch(/the data's vocabulary \(260\) differs from the checkpoint's \(30\)/);
  }, 120000);
});
