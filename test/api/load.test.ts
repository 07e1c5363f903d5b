/**
 * The library API from code: loadModel from a checkpoint of every family, from a model folder
 * written by `mega export` (path and URL), from a fairseq .pt; classify / generate / embed against
 * the independent paths (the training code's tokenization + a direct forward, `mega generate`).
 */
import { readFileSync, mkdtempSync, rmSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { classify, embed, generate, loadModel, tidy } from '../../src/index.js';
import { encodeListOps, listOpsDictionary } from '../../src/data/listops.js';
import { loadModelFile } from '../../src/train/fairseq-import.js';
import { fromStorage } from '../../src/tensor/tensor.js';
import { noGrad } from '../../src/autograd/engine.js';
import { LRAModel } from '../../src/mega/models/lra.js';
import { tinyRun } from '../tiny.js';

const root = mkdtempSync(join(tmpdir(), 'mega-api-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const SMALL = tinyRun(2);

let stdout: string[] = [];
beforeEach(() => {
  vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (stdout.push(String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
});
afterEach(() => vi.restoreAllMocks());
async function mega(...argv: string[]): Promise<{ code: number; out: string }> {
  stdout = [];
  const code = await main(argv);
  return { code, out: stdout.join('') };
}

const listops = join(root, 'listops');
const lm = join(root, 'lm');
const EXPR = '( [MAX 2 9 ( [MIN 4 7 ] ) 0 ] )';

beforeAll(async () => {
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  expect(await main(['train', '--listops-train', '32', '--listops-valid', '8', '--listops-test', '8', ...SMALL, '--save-dir', listops])).toBe(0);
  const text = join(root, 'lm.txt');
  writeFileSync(text, 'the quick brown fox jumps over the lazy dog\n'.repeat(40));
  expect(await main(['train', '--task', 'lm', '--data', text, '--tokens-per-sample', '32', ...SMALL, '--save-dir', lm])).toBe(0);
  vi.restoreAllMocks();
});

/** The logits of the training code's path: ListOps encoding + the model of loadModelFile. */
function referenceLogits(ckpt: string, expr: string): number[] {
  const m = loadModelFile(ckpt).model as LRAModel;
  const [ex] = encodeListOps([{ source: expr, label: 0 }], listOpsDictionary());
  const t = fromStorage(Int32Array.from(ex.tokens), [1, ex.tokens.length]);
  return Array.from(noGrad(() => m.forward(t, fromStorage(Int32Array.of(ex.tokens.length), [1]))).toTypedArray());
}

describe('loadModel', () => {
  it('a ListOps checkpoint (CPU preset): typed classifier, classify equals the training path bitwise', async () => {
    const ck = join(listops, 'checkpoint_last.safetensors');
    const m = await loadModel(ck);
    expect(m.kind).toBe('classifier');
    if (m.kind !== 'classifier') return;
    expect(m.config.arch).toBe('mega_lra_listop_tiny');
    expect(m.numClasses).toBe(10);
    const r = classify(m, EXPR);
    expect(r.logits).toEqual(referenceLogits(ck, EXPR));
    expect(r.scores.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(r.label).toBe(r.logits.indexOf(Math.max(...r.logits)));
    const e = embed(m, EXPR);
    expect(e.length).toBe(16);
  });

  it('mega export writes a folder that loads by path and by URL with the same predictions', async () => {
    const ck = join(listops, 'checkpoint_last.safetensors');
    const dir = join(root, 'listops-model');
    const r = await mega('export', ck, dir, '--json');
    expect(r.code).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'dict.txt', 'model.safetensors']);
    const dict = readFileSync(join(dir, 'dict.txt'), 'utf8').trim().split('\n');
    expect(dict.slice(0, 4)).toEqual(['<s> 1 #fairseq:overwrite', '<pad> 1 #fairseq:overwrite', '</s> 1 #fairseq:overwrite', '<unk> 1 #fairseq:overwrite']);
    expect(dict).toHaveLength(20); // 4 specials, 15 ListOps symbols, <CLS>
    expect(dict[19]).toBe('<CLS> 1');
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(cfg).toMatchObject({ format: 'mega-ts-model/1', arch: 'mega_lra_listop_tiny', task: 'listops', tokenizer: { type: 'words', append_eos: true } });
    expect(cfg.model_args.encoder_layers).toBe(1);

    const want = referenceLogits(ck, EXPR);
    const fromDir = await loadModel(dir);
    expect(classify(fromDir, EXPR).logits).toEqual(want);
    const server = await serve(dir);
    try {
      const fromUrl = await loadModel(`${server.url}/`);
      expect(classify(fromUrl, EXPR).logits).toEqual(want);
    } finally {
      server.close();
    }
    // refuses to overwrite without --force
    expect((await mega('export', ck, dir)).code).toBe(2);
  });

  it('an LM checkpoint: generate() yields the tokens of mega generate (greedy and sampled)', async () => {
    const ck = join(lm, 'checkpoint_last.safetensors');
    const m = await loadModel(ck);
    expect(m.kind).toBe('lm');
    for (const flags of [['--greedy'], ['--temperature', '0.8', '--top-k', '5', '--seed', '3']]) {
      const g = await mega('generate', ck, '--prompt', 'the qu', '--max-new-tokens', '8', '--json', ...flags);
      expect(g.code).toBe(0);
      const want = JSON.parse(g.out.trim()).samples[0];
      const got: number[] = [];
      let text = '';
      let lp = 0;
      const opts = flags[0] === '--greedy' ? { greedy: true } : { temperature: 0.8, topK: 5, seed: 3 };
      for await (const t of generate(m, 'the qu', { maxNewTokens: 8, ...opts })) {
        got.push(t.id);
        text += t.text;
        lp += t.logprob;
      }
      expect(got).toEqual(want.tokens);
      expect(text).toBe(want.text);
      expect(lp).toBeCloseTo(want.logprob, 9);
    }
  });

  it("a fairseq .pt loads and classifies like mega import-fairseq's model", async () => {
    const pt = join('test', 'golden', 'checkpoints', 'mega_lra_listops_tiny.pt');
    const m = await loadModel(pt);
    expect(m.kind).toBe('classifier');
    const ref = loadModelFile(pt).model as LRAModel;
    const ids = [4, 9, 12, 18, 2];
    const got = classify(m, ids).logits;
    const want = Array.from(noGrad(() => ref.forward(fromStorage(Int32Array.from(ids), [1, 5]), fromStorage(Int32Array.of(5), [1]))).toTypedArray());
    expect(got).toEqual(want);
  });

  it('bytes and {config.json, model.safetensors, dict.txt} load too; tidy passes results through on the CPU', async () => {
    const dir = join(root, 'listops-model');
    const files = {
      'config.json': readFileSync(join(dir, 'config.json'), 'utf8'),
      'model.safetensors': readFileSync(join(dir, 'model.safetensors')),
      'dict.txt': readFileSync(join(dir, 'dict.txt')),
    };
    const a = await loadModel(files);
    const b = await loadModel(new Uint8Array(readFileSync(join(listops, 'checkpoint_last.safetensors'))));
    const ra = tidy(() => classify(a, EXPR));
    expect(ra.logits).toEqual(classify(b, EXPR).logits);
    a.dispose();
    expect(() => classify(a, EXPR)).toThrow(/mega_lra_listop_tiny model was disposed/);
    a.dispose(); // idempotent
  });
});

describe('bad input: one clear error naming the file, nothing loaded', () => {
  const good = () => join(root, 'listops-model');
  function variant(name: string, edit: (dir: string) => void): string {
    const d = join(root, `bad-${name}`);
    mkdirSync(d);
    for (const f of readdirSync(good())) writeFileSync(join(d, f), readFileSync(join(good(), f)));
    edit(d);
    return d;
  }
  const cases: { name: string; edit: (d: string) => void; re: RegExp }[] = [
    { name: 'missing-config', edit: (d) => rmSync(join(d, 'config.json')), re: /config\.json: no such file/ },
    { name: 'malformed-config', edit: (d) => writeFileSync(join(d, 'config.json'), '{"format": "mega-ts-model/1", '), re: /config\.json: not valid JSON/ },
    {
      name: 'config-field',
      edit: (d) => writeFileSync(join(d, 'config.json'), JSON.stringify({ format: 'mega-ts-model/1', arch: 'x' })),
      re: /config\.json: field "task" missing/,
    },
    {
      name: 'unknown-arch',
      edit: (d) => {
        const c = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
        c.model_args.arch = 'mega_huge_imaginary';
        writeFileSync(join(d, 'config.json'), JSON.stringify(c));
      },
      re: /config\.json: unknown arch 'mega_huge_imaginary' \(expected one of .*mega_lra_listop/,
    },
    {
      name: 'vocab-size',
      edit: (d) => writeFileSync(join(d, 'dict.txt'), readFileSync(join(d, 'dict.txt'), 'utf8') + 'extra 1\n'),
      re: /dict\.txt: 21 symbols \(specials included\) but the embedding in .*model\.safetensors has 20 rows/,
    },
    { name: 'missing-dict', edit: (d) => rmSync(join(d, 'dict.txt')), re: /dict\.txt: no such file/ },
    {
      name: 'truncated-weights',
      edit: (d) => writeFileSync(join(d, 'model.safetensors'), readFileSync(join(d, 'model.safetensors')).subarray(0, 100)),
      re: /model\.safetensors: truncated/,
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const d = variant(c.name, c.edit);
      const err = await loadModel(d).then(
        () => null,
        (e: Error) => e,
      );
      expect(err).not.toBeNull();
      expect(err!.message).toMatch(c.re);
      expect(err!.message.split('\n')).toHaveLength(1);
      expect((err as { kind?: string }).kind ?? (err!.constructor as { kind?: string }).kind).toBe('user');
    });
  }

  it('a failed URL names the URL and what was expected', async () => {
    const server = await serve(join(root, 'bad-missing-config'));
    try {
      await expect(loadModel(`${server.url}/`)).rejects.toThrow(new RegExp(`${server.url}/config\\.json: HTTP 404.*expected the model folder's config\\.json`));
    } finally {
      server.close();
    }
    // nothing listening: the request itself fails
    await expect(loadModel('http://127.0.0.1:9/model/')).rejects.toThrow(
      /http:\/\/127\.0\.0\.1:9\/model\/config\.json: request failed .*expected the model folder's config\.json/,
    );
  });
});

describe('mega export: bad input exits 2 and writes nothing', () => {
  it('missing checkpoint, a --dict of the wrong size, a malformed --dict', async () => {
    const ck = join(listops, 'checkpoint_last.safetensors');
    const small = join(root, 'small-dict.txt');
    writeFileSync(small, 'a 1\nb 1\n');
    const bad = join(root, 'bad-dict.txt');
    writeFileSync(bad, 'no-count-here\n');
    const cases: [string[], RegExp][] = [
      [[join(root, 'nope.safetensors'), join(root, 'x1')], /nope\.safetensors: no such checkpoint file/],
      [['--dict', small, ck, join(root, 'x2')], /small-dict\.txt: 6 symbols \(specials included\) but the model's vocabulary has 20/],
      [['--dict', bad, ck, join(root, 'x3')], /bad-dict\.txt:1: expected "<symbol> <count>"/],
    ];
    for (const [args, re] of cases) {
      const errs: string[] = [];
      vi.spyOn(process.stderr, 'write').mockImplementation((e: string | Uint8Array) => (errs.push(String(e)), true));
      const r = await mega('export', ...args);
      expect(r.code).toBe(2);
      expect(errs.join('')).toMatch(re);
      expect(errs.join('').trim().split('\n')).toHaveLength(1);
      expect(readdirSync(root).includes(args[args.length - 1].split('/').pop()!)).toBe(false);
    }
  });
});

/** A static file server over `dir` on a free port. */
async function serve(dir: string): Promise<{ url: string; close(): void }> {
  const server: Server = createServer((req, res) => {
    try {
      const body = readFileSync(join(dir, decodeURIComponent(new URL(req.url!, 'http://x').pathname)));
      res.writeHead(200).end(body);
    } catch {
      res.writeHead(404, 'Not Found').end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, close: () => server.close() };
}
