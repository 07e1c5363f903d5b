/**
 * `mega train` with every default preset, then loading the checkpoint back: `mega generate` for
 * the LM and translation presets, `loadModelFile` for the ListOps one (the CPU preset names used to
 * be missing from the arch lookup: "unsupported model: arch 'mega_lm_tiny'").
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { loadModelFile } from '../../src/train/fairseq-import.js';
import { archTask, buildFromModelArgs, CPU_PRESETS, resolveModelArgs } from '../../src/train/arch.js';
import type { TaskInfo } from '../../src/mega/models/common.js';
import { encodeWeights } from '../../src/train/checkpoint.js';
import { loadModel } from '../../src/api/load.js';
import { tinyRun } from '../tiny.js';

const root = mkdtempSync(join(tmpdir(), 'mega-gen-presets-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let stdout: string[] = [];
let stderr: string[] = [];
beforeEach(() => {
  vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (stdout.push(String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (stderr.push(String(s)), true));
});
afterEach(() => vi.restoreAllMocks());

async function mega(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  stdout = [];
  stderr = [];
  const code = await main(argv);
  return { code, out: stdout.join(''), err: stderr.join('') };
}

const SMALL = tinyRun(2);

describe('train with a CPU preset, then load / generate', () => {
  it('mega_lm_tiny: mega train --task lm, then mega generate', async () => {
    const text = join(root, 'lm.txt');
    writeFileSync(text, 'the quick brown fox jumps over the lazy dog\n'.repeat(40));
    const save = join(root, 'lm');
    const t = await mega('train', '--task', 'lm', '--data', text, '--tokens-per-sample', '32', ...SMALL, '--save-dir', save);
    expect(t.err).toBe('');
    expect(t.code).toBe(0);
    const g = await mega('generate', join(save, 'checkpoint_last.safetensors'), '--prompt', 'the', '--max-new-tokens', '5', '--greedy', '--json');
    expect(g.err).toBe('');
    expect(g.code).toBe(0);
    const j = JSON.parse(g.out.trim());
    expect(j.mode).toBe('lm');
    expect(j.samples[0].tokens.length).toBeGreaterThan(0);
    expect(j.samples[0].tokens.length).toBeLessThanOrEqual(5);
  });

  it('mega_nmt_tiny: mega train --task translation, then mega generate', async () => {
    const dir = join(root, 'mt-data');
    mkdirSync(dir);
    const lines = Array.from({ length: 24 }, (_, i) => `abc ${i}\tcba ${i}`).join('\n') + '\n';
    for (const s of ['train', 'valid', 'test']) writeFileSync(join(dir, `${s}.tsv`), lines);
    const save = join(root, 'mt');
    const t = await mega('train', '--task', 'translation', '--data', dir, ...SMALL, '--save-dir', save);
    expect(t.err).toBe('');
    expect(t.code).toBe(0);
    const g = await mega('generate', join(save, 'checkpoint_last.safetensors'), '--src', 'abc 1', '--beam', '2', '--max-len-b', '6', '--json');
    expect(g.err).toBe('');
    expect(g.code).toBe(0);
    const j = JSON.parse(g.out.trim());
    expect(j.mode).toBe('translation');
    expect(j.results[0].hypotheses).toHaveLength(1);
  });

  it("mega_lra_listop_tiny: loadModelFile rebuilds the main job's model", async () => {
    const save = join(root, 'listops');
    const t = await mega('train', '--listops-train', '32', '--listops-valid', '8', '--listops-test', '8', ...SMALL, '--save-dir', save);
    expect(t.code).toBe(0);
    const m = loadModelFile(join(save, 'checkpoint_last.safetensors'));
    expect(m.className).toBe('LRAModel');
    expect(m.spec.arch).toBe('mega_lra_listop_tiny');
  });
});

describe('every CPU preset: a checkpoint loads back through loadModelFile and loadModel', () => {
  const KIND: Record<string, string> = { lra: 'classifier', sc_raw: 'audio', mega_lm: 'lm', mega: 'translation' };
  /** The task facts `mega train` records for each task (vocabulary with specials; ListOps: 10 classes). */
  const FACTS: Record<string, { taskInfo: Record<string, number>; numClasses?: number }> = {
    listops: { taskInfo: { dictionary_size: 20, pad: 1 }, numClasses: 10 },
    text: { taskInfo: { dictionary_size: 261, pad: 1 } },
    retrieval: { taskInfo: { dictionary_size: 261, pad: 1 } },
    image: { taskInfo: {} },
    speech: { taskInfo: {} },
    lm: { taskInfo: { dictionary_size: 260, pad: 1 } },
    translation: { taskInfo: { dictionary_size: 260, pad: 1 } },
  };
  for (const name of Object.keys(CPU_PRESETS)) {
    it(name, async () => {
      const task = archTask(name);
      const { taskInfo, numClasses } = FACTS[task];
      const modelArgs = resolveModelArgs(name, task, {}, numClasses);
      const model = buildFromModelArgs(modelArgs, 'dictionary_size' in taskInfo ? (taskInfo as unknown as TaskInfo) : null);
      const file = join(root, `${name}.safetensors`);
      writeFileSync(file, encodeWeights(model, { task, arch: name, modelArgs, taskInfo }, {}, 0, 'test'));
      const a = loadModelFile(file);
      expect(a.spec.arch).toBe(name);
      const b = await loadModel(file);
      expect(b.config.arch).toBe(name);
      expect(b.kind).toBe(KIND[a.kind]);
      expect(b.numParameters).toBe(model.parameters().reduce((n, p) => n + p.size, 0));
    });
  }
});
