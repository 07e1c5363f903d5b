/**
 * A checkpoint's stored model args are checked against its tensors before a model is built
 * (issue 15): inflated sizes fail fast in bounded memory, an unknown task is named.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckpointError } from '../../src/io/errors.js';
import { readFairseqCheckpoint } from '../../src/io/pt.js';
import { decodeSafetensors, encodeSafetensors } from '../../src/io/safetensors.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { importFairseq, importFairseqFile, saveImported } from '../../src/train/fairseq-import.js';
import { ARCHITECTURES, archArgs, archNames, buildModel } from '../../src/mega/models/presets.js';
import { checkModelArgs } from '../../src/train/model-args-check.js';
import { runBounded } from '../bounded.js';
import { tempDir } from '../data/helpers.js';

const t = tempDir('mega-args-trust-');
afterAll(() => t.cleanup());
const fixture = (n: string) => join(__dirname, '..', 'golden', 'checkpoints', `${n}.pt`);
const listops = fixture('mega_lra_listops_tiny');

/** The tiny listops model as a mega-ts weights file whose metadata `edit` rewrites. */
function weightsWith(name: string, edit: (meta: Record<string, string>) => void): string {
  const p = join(t.dir, `${name}.safetensors`);
  saveImported(p, importFairseqFile(listops), listops);
  const { tensors, metadata } = decodeSafetensors(readFileSync(p), p);
  const { tensor_sha256: _, ...meta } = metadata;
  edit(meta);
  writeFileSync(p, encodeSafetensors(tensors, meta, { checksums: true }));
  return p;
}

describe('model args vs stored tensors', () => {
  it('fairseq args with encoder_ffn_embed_dim 1e5: a CheckpointError naming the arg and the tensor', () => {
    const ck = readFairseqCheckpoint(listops);
    ck.args.encoder_ffn_embed_dim = 1e5;
    expect(() => importFairseq(ck, { label: listops })).toThrow(CheckpointError);
    expect(() => importFairseq(ck, { label: listops })).toThrow(
      `${listops}: model args encoder_ffn_embed_dim = 100000 but dimension 0 of tensor ` +
        `encoder.encoder.layers.0.nffn.fc1.weight is 32 (the args do not describe the stored tensors)`,
    );
  });

  it('fairseq args with encoder_ffn_embed_dim 1e8 fail fast in bounded memory', () => {
    const r = runBounded(
      `import { readFairseqCheckpoint } from '@src/io/pt.ts';\nimport { importFairseq } from '@src/train/fairseq-import.ts';`,
      `const ck = readFairseqCheckpoint(${JSON.stringify(listops)});\nck.args.encoder_ffn_embed_dim = 1e8;\nrun = () => importFairseq(ck, { label: 'x.pt' });`,
      { timeoutMs: 60_000, heapMB: 512 },
    );
    expect(r.error, r.output).toMatchObject({ name: 'CheckpointError', kind: 'user' });
    expect(r.error!.message).toMatch(/^x\.pt: model args encoder_ffn_embed_dim = 100000000 but/);
    expect(r.peakMB).toBeLessThan(600);
  });

  it('a layer count or z dim that disagrees with the tensors is refused', () => {
    const ck = readFairseqCheckpoint(listops);
    ck.args.encoder_layers = 4000;
    expect(() => importFairseq(ck, { label: 'l.pt' })).toThrow(
      'l.pt: model args encoder_layers = 4000 but the number of stored layers encoder.encoder.layers.<i> is 2',
    );
    const ck2 = readFairseqCheckpoint(listops);
    ck2.args.z_dim = 9;
    expect(() => importFairseq(ck2, { label: 'z.pt' })).toThrow(
      /^z\.pt: model args z_dim = 9 but dimension 1 of tensor encoder\.encoder\.layers\.0\.mega_layer\.gamma is 8/,
    );
  });

  it('a mega-ts weights file whose model_args say 1e8 fails fast in bounded memory', () => {
    const p = weightsWith('ffn', (m) => {
      m.model_args = JSON.stringify({ ...JSON.parse(m.model_args!), encoder_ffn_embed_dim: 1e8 });
    });
    const r = runBounded(`import { loadModelFile } from '@src/train/fairseq-import.ts';`, `run = () => loadModelFile(${JSON.stringify(p)});`, {
      timeoutMs: 60_000,
      heapMB: 512,
    });
    expect(r.error, r.output).toMatchObject({ name: 'CheckpointError', kind: 'user' });
    expect(r.error!.message).toMatch(/model args encoder_ffn_embed_dim = 100000000 but dimension 0 of tensor/);
    expect(r.peakMB).toBeLessThan(600);
  });

  it('a mega-ts weights file with task "nope" or max_positions 1e9 is refused by name', () => {
    const p = weightsWith('task', (m) => {
      m.task = 'nope';
    });
    expect(() => loadCheckpoint(p)).toThrow(CheckpointError);
    expect(() => loadCheckpoint(p)).toThrow(/task = "nope" \(expected one of listops, text, retrieval, image, lm, translation, speech\)/);
    const r = weightsWith('maxpos', (m) => {
      m.model_args = JSON.stringify({ ...JSON.parse(m.model_args!), max_positions: 1e9 });
    });
    expect(() => loadCheckpoint(r)).toThrow(/model args max_positions = 1000000000 \(expected an integer of magnitude at most 1048576\)/);
  });

  it('a mega-ts weights file whose task_info says dictionary_size 1e9 is refused before building', () => {
    const p = weightsWith('dict', (m) => {
      m.task_info = JSON.stringify({ ...JSON.parse(m.task_info!), dictionary_size: 1e9 });
    });
    expect(() => loadCheckpoint(p)).toThrow(CheckpointError);
    expect(() => loadCheckpoint(p)).toThrow(`${p}: task_info dictionary_size = 1000000000 but tensor encoder.encoder.embed_tokens.embed.weight has 20 rows`);
    const q = weightsWith('pad', (m) => {
      m.task_info = JSON.stringify({ ...JSON.parse(m.task_info!), pad: 20 });
    });
    expect(() => loadCheckpoint(q)).toThrow(`${q}: task_info pad = 20 (expected an integer in [0, 20))`);
  });

  it('the state dict of every buildable registered arch passes the check of its own args', () => {
    const small = {
      encoder_layers: 2,
      decoder_layers: 2,
      encoder_embed_dim: 16,
      decoder_embed_dim: 16,
      encoder_hidden_dim: 32,
      decoder_hidden_dim: 32,
      encoder_ffn_embed_dim: 24,
      decoder_ffn_embed_dim: 24,
      encoder_z_dim: 8,
      decoder_z_dim: 8,
      encoder_n_dim: 4,
      decoder_n_dim: 4,
      z_dim: 8,
      n_dim: 4,
      classifier_out_dim: 20,
      max_positions: 64,
      max_source_positions: 64,
      max_target_positions: 64,
      chunk_size: 8,
      decoder_chunk_size: 8,
      encoder_chunk_size: 8,
      activation_dropout: 0,
      norm_type: 'layernorm',
      decoder_input_dim: 16,
      classifier_in_dim: 16,
    };
    const task = { dictionary_size: 30, bos: 0, pad: 1, eos: 2, unk: 3 };
    let built = 0;
    for (const arch of archNames()) {
      const args = archArgs(arch, arch === 'mega_lra_aan' ? { ...small, classifier_in_dim: 32 } : small);
      let model;
      try {
        model = buildModel(arch, args, task);
      } catch (e) {
        expect((e as Error).message, arch).toMatch(/adaptive/); // the adaptive-input archs cannot be built
        continue;
      }
      const shapes = Object.fromEntries(Object.entries(model.stateDict()).map(([k, v]) => [k, { shape: v.shape }]));
      expect(() => checkModelArgs(ARCHITECTURES[arch]!.model, args, shapes, arch), arch).not.toThrow();
      const kind = ARCHITECTURES[arch]!.model;
      const ffn = kind === 'mega_lm' ? 'decoder_ffn_embed_dim' : 'encoder_ffn_embed_dim';
      expect(() => checkModelArgs(kind, { ...args, [ffn]: 25 }, shapes, arch), arch).toThrow(CheckpointError);
      built++;
    }
    expect(built).toBeGreaterThanOrEqual(15);
  });

  it('the untouched fixtures still import', () => {
    expect(importFairseqFile(listops).loaded).toBeGreaterThan(0);
    expect(importFairseqFile(fixture('mega_lm_tiny')).loaded).toBeGreaterThan(0);
  });
});
