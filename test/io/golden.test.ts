import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Packr, unpack } from 'msgpackr';
import { afterAll, describe, expect, it } from 'vitest';
import { FormatError } from '../../src/io/errors.js';
import { type GoldenCase, decodeGolden, encodeGolden, readGoldenFile } from '../../src/io/golden.js';
import { type RawTensor, rawTensorsEqual } from '../../src/io/raw.js';

const GOLDEN = fileURLToPath(new URL('../golden/', import.meta.url));
const CK = join(GOLDEN, 'checkpoints');
const LM = join(CK, 'mega_lm_tiny.expected.msgpack');
const tmp = mkdtempSync(join(tmpdir(), 'mega-golden-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Every golden file present in test/golden (the two checkpoint companions at least). */
function goldenFiles(): string[] {
  const list = (d: string): string[] =>
    existsSync(d)
      ? readdirSync(d)
          .filter((f) => f.endsWith('.msgpack'))
          .map((f) => join(d, f))
      : [];
  return [...list(GOLDEN), ...list(CK)];
}

const packr = new Packr({ useRecords: false });
const raw = (): Record<string, unknown> => unpack(readFileSync(LM)) as Record<string, unknown>;
const enc = (o: unknown): Uint8Array => packr.pack(o);
const tensor = (dtype: string, shape: number[], data: Uint8Array): Record<string, unknown> => ({ dtype, shape, data });

function expectSameCase(a: GoldenCase, b: GoldenCase): void {
  // structure (tensor data replaced by its length), then every tensor bit for bit
  const strip = (c: GoldenCase): unknown => JSON.parse(JSON.stringify(c, (_k, v: unknown) => (ArrayBuffer.isView(v) ? v.byteLength : v)));
  expect(strip(a)).toEqual(strip(b));
  const maps = (c: GoldenCase): Array<Record<string, RawTensor>> => [
    c.params,
    c.inputs,
    c.outputs,
    c.cotangent ?? {},
    c.grads ?? {},
    ...(c.steps ?? []).flatMap((s) => [s.inputs, s.outputs]),
  ];
  const mb = maps(b);
  maps(a).forEach((m, i) => {
    for (const [n, t] of Object.entries(m)) expect(rawTensorsEqual(t, mb[i][n]), n).toBe(true);
  });
}

describe('readGoldenFile', () => {
  it('decodes every golden file present', () => {
    const files = goldenFiles();
    expect(files.length).toBeGreaterThanOrEqual(2);
    for (const f of files) {
      const c = readGoldenFile(f);
      expect(c.format).toBe('mega-golden/1');
      expect(f.endsWith(`${c.case}.msgpack`) || f.endsWith(`${c.case}.expected.msgpack`)).toBe(true);
      const all: RawTensor[] = [
        c.params,
        c.inputs,
        c.outputs,
        c.cotangent ?? {},
        c.grads ?? {},
        ...(c.steps ?? []).flatMap((s) => [s.inputs, s.outputs]),
      ].flatMap((m) => Object.values(m));
      for (const t of all) expect(t.data.length).toBe(t.shape.reduce((x, y) => x * y, 1));
    }
  });

  it('decodes the LM companion: f32 params, i64 → i32 inputs, aligned copies', () => {
    const c = readGoldenFile(LM);
    expect(c).toMatchObject({ case: 'mega_lm_tiny', module: 'MegaLanguageModel', mode: 'eval', procedure: 'forward' });
    expect(c.task?.dictionary_size).toBe(30);
    expect(c.tied_params).toEqual([['decoder.embed_tokens.weight', 'decoder.output_projection.weight']]);
    const w = c.params['decoder.embed_tokens.weight'];
    expect(w.dtype).toBe('f32');
    expect(w.shape).toEqual([30, 16]);
    expect(w.data.byteOffset).toBe(0);
    expect(c.inputs.src_tokens).toMatchObject({ dtype: 'i32', shape: [2, 11] });
    expect(c.inputs.src_tokens.data).toBeInstanceOf(Int32Array);
    expect(c.outputs.logits.shape).toEqual([2, 11, 30]);
    // bytes agree with the file's (unaligned) bin payload
    const bin = (raw().params as Record<string, { data: Uint8Array }>)['decoder.embed_tokens.weight'].data;
    expect(new Uint8Array(w.data.buffer)).toEqual(new Uint8Array(bin));
  });

  it('decodes f64 tensors from unaligned offsets', () => {
    const vals = new Float64Array([1.5, -2.25, Math.PI]);
    const o = { ...raw(), params: { x: tensor('f64', [3], new Uint8Array(vals.buffer)) }, inputs: { m: tensor('bool', [2], new Uint8Array([1, 0])) } };
    const bytes = enc(o);
    const shifted = new Uint8Array(bytes.length + 1).subarray(1); // odd byteOffset for every bin view
    shifted.set(bytes);
    const c = decodeGolden(shifted);
    expect(Array.from(c.params.x.data)).toEqual(Array.from(vals));
    expect(c.inputs.m).toEqual({ dtype: 'bool', shape: [2], data: new Uint8Array([1, 0]) });
  });

  it('reports malformed files as FormatError naming the problem', () => {
    const bad = (o: unknown, re: RegExp): void => {
      expect(() => decodeGolden(enc(o))).toThrow(FormatError);
      expect(() => decodeGolden(enc(o))).toThrow(re);
    };
    bad({ ...raw(), format: 'mega-golden/2' }, /format is "mega-golden\/2", expected "mega-golden\/1"/);
    const { desc: _d, params: _p, ...noKeys } = raw();
    bad(noKeys, /missing required key\(s\) params, desc/);
    bad({ ...raw(), params: { w: tensor('f64', [2, 2], new Uint8Array(24)) } }, /params\.w: tensor data has 24 bytes, expected 32/);
    bad({ ...raw(), params: { w: tensor('f16', [1], new Uint8Array(2)) } }, /unknown tensor dtype "f16"/);
    bad({ ...raw(), params: { w: tensor('f32', [-1], new Uint8Array(0)) } }, /invalid dimension -1/);
    bad({ ...raw(), inputs: { m: tensor('bool', [1], new Uint8Array([2])) } }, /bool element 0 is 2/);
    bad({ ...raw(), inputs: { t: tensor('i64', [1], new Uint8Array(new BigInt64Array([1n << 33n]).buffer)) } }, /8589934592 does not fit in int32/);
    bad({ ...raw(), outputs: { y: 3 } }, /outputs\.y: expected a tensor/);
    bad({ ...raw(), mode: 'test' }, /mode: expected one of "train", "eval"/);
    bad({ ...raw(), steps: [{ inputs: {} }] }, /steps\[0\]: expected keys inputs and outputs/);
    bad([1, 2], /top level must be a msgpack map/);
    expect(() => decodeGolden(new Uint8Array([0xc1]))).toThrow(FormatError);
    expect(() => decodeGolden(new Uint8Array([0x85]))).toThrow(FormatError);
  });

  it('readGoldenFile wraps unreadable / malformed files in FormatError with the path', () => {
    expect(() => readGoldenFile(join(tmp, 'missing.msgpack'))).toThrow(FormatError);
    const p = join(tmp, 'bad.msgpack');
    writeFileSync(p, enc({ format: 'nope' }));
    expect(() => readGoldenFile(p)).toThrow(new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: `));
  });
});

describe('encodeGolden', () => {
  it('round-trips real files (i32 written back as i64)', () => {
    for (const f of goldenFiles().slice(0, 6)) {
      const c = readGoldenFile(f);
      const bytes = encodeGolden(c);
      const back = decodeGolden(bytes);
      expectSameCase(back, c);
      expect(Buffer.compare(encodeGolden(back), bytes)).toBe(0); // deterministic re-encoding
    }
    const wire = unpack(encodeGolden(readGoldenFile(LM))) as { inputs: Record<string, { dtype: string; data: Uint8Array }> };
    expect(wire.inputs.src_tokens.dtype).toBe('i64');
    expect(wire.inputs.src_tokens.data.length).toBe(2 * 11 * 8);
  });

  it('encodes a new case with steps and negative i32 values', () => {
    const c: GoldenCase = {
      format: 'mega-golden/1',
      case: 'tiny',
      module: 'MultiHeadEMA',
      config: { embed_dim: 2, bidirectional: false, seed: 2 ** 40 + 1, eps: 1e-5 },
      mode: 'eval',
      procedure: 'incremental',
      options: {},
      params: { w: { dtype: 'f64', shape: [2], data: new Float64Array([1, -0]) } },
      inputs: { t: { dtype: 'i32', shape: [3], data: new Int32Array([-1, 0, 2147483647]) } },
      outputs: {},
      steps: [{ inputs: { x: { dtype: 'f32', shape: [], data: new Float32Array([0.5]) } }, outputs: {} }],
      desc: 'hand-made',
    };
    const back = decodeGolden(encodeGolden(c));
    expectSameCase(back, c);
    expect(back.steps?.[0].inputs.x).toEqual({ dtype: 'f32', shape: [], data: new Float32Array([0.5]) });
    expect(Object.is(back.params.w.data[1], -0)).toBe(true);
    expect(back.config).toEqual({ embed_dim: 2, bidirectional: false, seed: 2 ** 40 + 1, eps: 1e-5 });
    expect(Buffer.from(encodeGolden(c)).includes(Buffer.from([0xd3, 0, 0, 1, 0, 0, 0, 0, 1]))).toBe(true); // int64, not float64
    const broken = { ...c, params: { w: { dtype: 'f64', shape: [3], data: new Float64Array(2) } } } as GoldenCase;
    expect(() => encodeGolden(broken)).toThrow(FormatError);
  });
});
