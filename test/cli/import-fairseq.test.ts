import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { noGrad } from '../../src/autograd/engine.js';
import { importCommand } from '../../src/cli/import-fairseq.js';
import { main } from '../../src/cli/main.js';
import { encodeGolden, readGoldenFile } from '../../src/io/golden.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { ZipArchive } from '../../src/io/zip.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { loadModelFile } from '../../src/train/fairseq-import.js';
import { compareTensor, getAdapter, toInputs } from '../../src/verify/index.js';
import { makeZip } from '../io/fixtures.js';

const CK = fileURLToPath(new URL('../golden/checkpoints/', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'mega-import-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function run(argv: string[]): { rc: number; lines: string[] } {
  const lines: string[] = [];
  const rc = importCommand(argv, (s) => lines.push(s));
  return { rc, lines };
}

const FIXTURES = [
  { name: 'mega_lm_tiny', module: 'MegaLanguageModel', arch: 'mega_lm_enwik8_base', task: 'lm', vocab: 30, ignored: 3 },
  { name: 'mega_lra_listops_tiny', module: 'LRAModel', arch: 'mega_lra_listop', task: 'listops', vocab: 20, ignored: 0 },
];

describe.each(FIXTURES)('import-fairseq $name', (fx) => {
  const pt = join(CK, `${fx.name}.pt`);
  const companion = join(CK, `${fx.name}.expected.msgpack`);
  const out = join(tmp, `${fx.name}.safetensors`);

  it('imports, saves, and the reloaded OUT reproduces the companion logits (f32 rule)', () => {
    const { rc, lines } = run([pt, out, '--json']);
    expect(rc).toBe(0);
    expect(lines).toHaveLength(1);
    const j = JSON.parse(lines[0]);
    expect(j).toMatchObject({ model: fx.module, arch: fx.arch, task: fx.task, vocab: fx.vocab, written: true, update: 2, dtype: 'f32' });
    expect(j.ignored).toHaveLength(fx.ignored);

    // the file is a mega-ts weights file
    const st = readSafetensors(out);
    expect(st.metadata.format).toBe('mega-ts/1');
    expect(st.metadata.arch).toBe(fx.arch);
    expect(JSON.parse(st.metadata.model_args).arch).toBe(fx.arch);
    const ck = loadCheckpoint(out);
    expect(ck.update).toBe(2);

    // reload it and run the companion case
    const c = readGoldenFile(companion);
    const loaded = loadModelFile(out);
    expect(loaded.source).toBe('mega-ts');
    expect(loaded.className).toBe(c.module);
    for (const [k, r] of Object.entries(c.params)) {
      const t = loaded.model.stateDict()[k];
      expect(t, k).toBeDefined();
      expect(Array.from(t.toTypedArray()), k).toEqual(Array.from(r.data));
    }
    const outs = noGrad(() => getAdapter(c.module)!.forward(loaded.model, toInputs(c.inputs, 'f32', Object.keys(c.inputs)), c));
    const rep = compareTensor('logits', outs.logits, c.outputs.logits, 'f32');
    expect(rep.tol).toBeGreaterThan(0);
    expect(rep.maxErr, `err ${rep.maxErr} tol ${rep.tol}`).toBeLessThanOrEqual(rep.tol);
  });

  it('--check runs the companion through the imported model (text output)', () => {
    const out2 = join(tmp, `${fx.name}.checked.safetensors`);
    const { rc, lines } = run([pt, out2, '--check', companion]);
    expect(rc).toBe(0);
    expect(lines[0]).toMatch(new RegExp(`^read .*${fx.name}\\.pt: ${fx.module} \\(arch ${fx.arch}`));
    expect(lines.some((l) => /check .*: PASS outputs\.logits err=/.test(l))).toBe(true);
    expect(lines[lines.length - 1]).toBe(`wrote ${out2}`);
  });

  it('the .pt also loads directly (imported on the fly), in f64', () => {
    const c = readGoldenFile(companion);
    const loaded = loadModelFile(pt, { dtype: 'f64' });
    expect(loaded.source).toBe('fairseq');
    const outs = noGrad(() => getAdapter(c.module)!.forward(loaded.model, toInputs(c.inputs, 'f64', Object.keys(c.inputs)), c));
    const rep = compareTensor('logits', outs.logits, c.outputs.logits, 'f32');
    expect(rep.maxErr).toBeLessThanOrEqual(rep.tol * 0.05);
  });
});

describe('import-fairseq: bad input', () => {
  let err: MockInstance;
  let outSpy: MockInstance;
  const SENTINEL = 'previous content\n';
  beforeEach(() => {
    err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    outSpy = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  });
  afterEach(() => {
    err.mockRestore();
    outSpy.mockRestore();
  });

  /** Rebuilds the LM fixture with `edit` applied to data.pkl (fresh CRCs). */
  function editedPickle(edit: (pkl: Uint8Array) => Uint8Array): Uint8Array {
    const zip = new ZipArchive(readFileSync(join(CK, 'mega_lm_tiny.pt')));
    return makeZip([...zip.entries.keys()].map((name) => ({ name, data: name.endsWith('/data.pkl') ? edit(zip.read(name)) : zip.read(name) })));
  }

  /** Replaces the pickled string `from` (opcode BINUNICODE: 'X', u32 length, UTF-8) by `to`. */
  function replaceString(pkl: Uint8Array, from: string, to: string): Uint8Array {
    const enc = (x: string) => {
      const b = Buffer.from(x, 'utf8');
      const h = Buffer.alloc(5);
      h[0] = 0x58;
      h.writeUInt32LE(b.length, 1);
      return Buffer.concat([h, b]);
    };
    const src = Buffer.from(pkl),
      a = enc(from),
      b = enc(to);
    const parts: Buffer[] = [];
    let pos = 0,
      n = 0;
    for (let i = src.indexOf(a); i >= 0; i = src.indexOf(a, pos)) {
      parts.push(src.subarray(pos, i), b);
      pos = i + a.length;
      n++;
    }
    expect(n, `pickled string ${from}`).toBeGreaterThan(0);
    parts.push(src.subarray(pos));
    return new Uint8Array(Buffer.concat(parts));
  }

  const good = readFileSync(join(CK, 'mega_lm_tiny.pt'));
  const cases: { name: string; make: () => string; re: RegExp }[] = [
    { name: 'missing file', make: () => join(tmp, 'nope.pt'), re: /no such file/ },
    {
      name: 'not a zip (wrong magic)',
      make: () => file('text.pt', new TextEncoder().encode('hello, this is not a checkpoint')),
      re: /not a PyTorch zip checkpoint/,
    },
    { name: 'empty file', make: () => file('empty.pt', new Uint8Array(0)), re: /empty file/ },
    { name: 'truncated checkpoint', make: () => file('trunc.pt', good.subarray(0, Math.floor(good.length / 2))), re: /trunc\.pt/ },
    {
      name: 'corrupt storage (CRC mismatch)',
      make: () => {
        const b = Uint8Array.from(good);
        const view = new ZipArchive(good).read('archive/data/5'); // a stored entry: a view into `good`
        b[view.byteOffset - good.byteOffset + 1] ^= 0xff;
        return file('crc.pt', b);
      },
      re: /crc\.pt.*CRC/i,
    },
    { name: 'a directory', make: () => tmp, re: /EISDIR|cannot read/ },
    {
      name: 'unsupported arch',
      make: () =>
        file(
          'arch.pt',
          editedPickle((p) => replaceString(p, 'mega_lm_enwik8_base', 'transformer_lm_gpt2')),
        ),
      re: /unsupported model: args\.arch = 'transformer_lm_gpt2'/,
    },
    {
      // an adaptive-input arch (args without the field get the arch's defaults) in a checkpoint whose
      // args hold adaptive_input_cutoff = None (as an enwik8 run stores it): the reference fails too
      name: 'adaptive-input arch without cutoffs',
      make: () =>
        file(
          'adaptive.pt',
          editedPickle((p) => replaceString(replaceString(p, 'mega_lm_enwik8_base', 'mega_lm_wiki103'), 'adaptive_input', 'adaptive_inpux')),
        ),
      re: /unsupported model \(arch mega_lm_wiki103\): args\.adaptive_input_cutoff = null: expected a comma separated list/,
    },
    {
      name: 'tensor of the wrong name',
      make: () =>
        file(
          'names.pt',
          editedPickle((p) => replaceString(p, 'decoder.layers.1.nffn.fc2.bias', 'decoder.layers.1.nffn.fc9.bias')),
        ),
      re: /state dict does not match arch mega_lm_enwik8_base; missing: decoder\.layers\.1\.nffn\.fc2\.bias; unexpected: decoder\.layers\.1\.nffn\.fc9\.bias/,
    },
  ];

  function file(name: string, data: Uint8Array): string {
    const p = join(tmp, name);
    writeFileSync(p, data);
    return p;
  }

  it.each(cases)('$name: one-line error, exit 2, OUT untouched', async ({ make, re }) => {
    const dir = mkdtempSync(join(tmp, 'out-'));
    const out = join(dir, 'model.safetensors');
    writeFileSync(out, SENTINEL);
    const rc = await main(['import-fairseq', make(), out]);
    const msg = err.mock.calls.map((c) => String(c[0])).join('');
    expect(rc, msg).toBe(2);
    expect(msg).toMatch(/^mega import-fairseq: /);
    expect(msg).toMatch(re);
    expect(msg.trim().split('\n')).toHaveLength(1);
    expect(readFileSync(out, 'utf8')).toBe(SENTINEL);
    expect(readdirSync(dir)).toEqual(['model.safetensors']);
  });

  it('usage errors exit 2 and write nothing', async () => {
    const pt = join(CK, 'mega_lm_tiny.pt');
    const out = join(tmp, 'usage.safetensors');
    for (const argv of [
      [pt],
      [pt, out, 'extra'],
      [pt, out, '--dtype', 'f16'],
      [pt, pt],
      [pt, out, '--check', join(tmp, 'nope.msgpack')],
      [pt, out, '--bogus'],
    ]) {
      err.mockClear();
      expect(await main(['import-fairseq', ...argv]), argv.join(' ')).toBe(2);
      expect(
        err.mock.calls
          .map((c) => String(c[0]))
          .join('')
          .trim()
          .split('\n'),
      ).toHaveLength(1);
    }
    expect(readdirSync(tmp)).not.toContain('usage.safetensors');
  });

  it('an unwritable OUT is a one-line error (exit 2)', async () => {
    const rc = await main(['import-fairseq', join(CK, 'mega_lm_tiny.pt'), join(tmp, 'no-such-dir', 'x.safetensors')]);
    expect(rc).toBe(2);
    expect(err.mock.calls.map((c) => String(c[0])).join('')).toMatch(/cannot write .*x\.safetensors/);
  });

  it('--check against a companion of another model: exit 2, nothing written', async () => {
    const out = join(tmp, 'wrong-check.safetensors');
    const rc = await main(['import-fairseq', join(CK, 'mega_lm_tiny.pt'), out, '--check', join(CK, 'mega_lra_listops_tiny.expected.msgpack')]);
    expect(rc).toBe(2);
    expect(err.mock.calls.map((c) => String(c[0])).join('')).toMatch(/LRAModel but the checkpoint holds a MegaLanguageModel/);
    expect(readdirSync(tmp)).not.toContain('wrong-check.safetensors');
  });

  it('--check mismatch: exit 1, OUT untouched', () => {
    const c = readGoldenFile(join(CK, 'mega_lra_listops_tiny.expected.msgpack'));
    const logits = c.outputs.logits;
    const bad = { ...c, outputs: { logits: { ...logits, data: (logits.data as Float32Array).map((x) => x * 1.01) } } };
    const companion = join(tmp, 'bad-companion.msgpack');
    writeFileSync(companion, encodeGolden(bad));
    const out = join(tmp, 'mismatch.safetensors');
    writeFileSync(out, SENTINEL);
    const { rc, lines } = run([join(CK, 'mega_lra_listops_tiny.pt'), out, '--check', companion, '--json']);
    expect(rc).toBe(1);
    expect(lines).toHaveLength(1);
    const j = JSON.parse(lines[0]);
    expect(j.written).toBe(false);
    expect(j.check.pass).toBe(false);
    expect(readFileSync(out, 'utf8')).toBe(SENTINEL);
  });

  it('--help', async () => {
    const lines: string[] = [];
    expect(importCommand(['--help'], (s) => lines.push(s))).toBe(0);
    expect(lines.join('\n')).toMatch(/^Usage: mega import-fairseq/);
  });
});
