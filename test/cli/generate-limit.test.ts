/**
 * `mega generate` on an LM whose positions are limited (unchunked, max_target_positions 64), in
 * real processes: asking for more tokens than the model can see generates up to the limit with a
 * note (instead of failing at the end with nothing printed), and the text streams to a terminal
 * token by token.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../src/io/atomic.js';
import type { TaskInfo } from '../../src/mega/models/common.js';
import type { MegaLanguageModel } from '../../src/mega/models/lm.js';
import { archArgs, buildModel } from '../../src/mega/models/presets.js';
import { Generator } from '../../src/tensor/random.js';
import { encodeWeights } from '../../src/train/checkpoint.js';
import { loadModelFile } from '../../src/train/fairseq-import.js';
import { sampleLm } from '../../src/train/generate.js';
import { buildForChildren, run, type Built } from '../dist/helpers.js';
import { have } from '../system.js';

let built: Built;
let cli: string;
const tmp = mkdtempSync(join(tmpdir(), 'mega-generate-limit-'));
const TASK: TaskInfo = { dictionary_size: 14, pad: 1, bos: 0, eos: 2, unk: 3 };
const args = archArgs('mega_lm', {
  decoder_layers: 1,
  decoder_embed_dim: 16,
  decoder_hidden_dim: 24,
  decoder_ffn_embed_dim: 24,
  decoder_z_dim: 8,
  decoder_n_dim: 4,
  decoder_chunk_size: -1,
  rel_pos_bias: 'simple',
  truncation_length: null,
  max_target_positions: 64,
  activation_dropout: 0,
  dropout: 0,
  normalize_before: true,
  no_affine_final_norm: true,
  share_decoder_input_output_embed: true,
});
const ckpt = join(tmp, 'lm.safetensors');
beforeAll(async () => {
  built = await buildForChildren();
  cli = built.js('src/cli/main.ts');
  const m = buildModel('mega_lm', args, TASK, { dtype: 'f64', gen: new Generator(3) });
  const g = new Generator(103);
  for (const p of m.parameters()) for (let i = 0; i < p.size; i++) p.storage[p.offset + i] += 0.3 * g.normal();
  writeFileAtomic(ckpt, encodeWeights(m, { task: 'lm', arch: 'mega_lm', modelArgs: args, taskInfo: { ...TASK } }, {}, 0, 'test'));
}, 60000);
afterAll(() => {
  built?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

const PROMPT = [2, 5, 9, 4, 11, 7]; // </s> + 5 tokens

/** Greedy tokens of the checkpoint's model (f64), `n` of them, without any position limit. */
function greedy(n: number): number[] {
  const lm = loadModelFile(ckpt, { dtype: 'f64' }).model as MegaLanguageModel;
  return sampleLm((t, s) => lm.forward(t, s), PROMPT, { maxNewTokens: n, greedy: true, eos: null, chunkSize: -1 }).tokens[0]!;
}

describe('mega generate at the model position limit', () => {
  it('--max-new-tokens 2000 on a 64-position LM generates the 59 tokens that fit, with a note', async () => {
    const r = await run('node', [
      cli,
      'generate',
      ckpt,
      '--prompt-ids',
      '5 9 4 11 7',
      '--greedy',
      '--no-stop-at-eos',
      '--max-new-tokens',
      '2000',
      '--dtype',
      'f64',
      '--json',
    ]).done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /note: the model sees at most 64 positions \(max_target_positions\) and the prompt takes 6: generating at most 59 of the 2000 tokens/,
    );
    const j = JSON.parse(r.stdout.trim());
    expect(j.stopped_at_max_positions).toBe(true);
    expect(j.samples[0].tokens).toHaveLength(64 - 6 + 1);
    expect(j.samples[0].tokens).toEqual(greedy(59));
  }, 60000);

  it('a prompt longer than the model sees is refused up front (exit 2)', async () => {
    const long = Array.from({ length: 70 }, (_, i) => 4 + (i % 9)).join(' ');
    const r = await run('node', [cli, 'generate', ckpt, '--prompt-ids', long, '--max-new-tokens', '5']).done;
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.trim()).toBe(
      'mega generate: the prompt has 71 tokens (with the leading </s>) but the model sees at most 64 positions (max_target_positions)',
    );
  }, 60000);

  it('on a terminal the tokens stream to stderr before the final line', () => {
    if (!have('script')) {
      if (process.env.CI) throw new Error('script (util-linux) is needed for the terminal test');
      return;
    }
    const cmd = `node ${cli} generate ${ckpt} --prompt-ids '5 9 4 11 7' --greedy --no-stop-at-eos --max-new-tokens 12 --dtype f64`;
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 60000, env: { ...process.env, MEGA_THREADS: '1' } });
    expect(r.status, r.stdout).toBe(0);
    const text = greedy(12).join(' ');
    const out = r.stdout.replace(/\r/g, '');
    const streamed = out.indexOf(`${text}\n`);
    const final = out.indexOf('H-0\t');
    expect(streamed, out).toBeGreaterThanOrEqual(0);
    expect(final).toBeGreaterThan(streamed);
    expect(out.slice(final)).toContain(`\t${text}`);
  }, 60000);
});
