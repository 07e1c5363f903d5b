import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckpointError } from '../../src/io/errors.js';
import { readGoldenFile } from '../../src/io/golden.js';
import { PyObject } from '../../src/io/pickle.js';
import { decodeFairseqCheckpoint, loadTorchZip, pyToPlain, readFairseqCheckpoint } from '../../src/io/pt.js';
import { rawTensorsEqual } from '../../src/io/raw.js';
import { PickleBuilder, type TensorSpec, leBytes, makeZip, torchPickle, torchZip } from './fixtures.js';

const CK = fileURLToPath(new URL('../golden/checkpoints/', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'mega-pt-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.each(['mega_lm_tiny', 'mega_lra_listops_tiny'])('fairseq fixture %s', (name) => {
  const ck = readFairseqCheckpoint(join(CK, `${name}.pt`));
  const exp = readGoldenFile(join(CK, `${name}.expected.msgpack`));

  it('model tensors equal the companion params bit for bit', () => {
    const names = Object.keys(exp.params);
    expect(names.length).toBeGreaterThan(40);
    for (const k of names) {
      expect(ck.model[k], k).toBeDefined();
      expect(rawTensorsEqual(ck.model[k], exp.params[k]), k).toBe(true);
    }
    // the .pt has exactly the extra buffers the golden schema omits
    const extra = Object.keys(ck.model).filter((k) => !(k in exp.params));
    expect(extra.every((k) => k.endsWith('.version') || k.endsWith('._float_tensor'))).toBe(true);
    if (name === 'mega_lm_tiny') {
      expect(extra.sort()).toEqual([
        'decoder.layers.0.mega_layer.rel_pos_bias._float_tensor',
        'decoder.layers.1.mega_layer.rel_pos_bias._float_tensor',
        'decoder.version',
      ]);
      const v = ck.model['decoder.version'];
      expect(v.dtype).toBe('f32');
      expect(v.shape).toEqual([1]);
      expect(Array.from(v.data)).toEqual([3]);
    } else {
      expect(extra).toEqual([]);
    }
    for (const t of Object.values(ck.model)) expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1));
  });

  it('args equal the companion config for every key', () => {
    const keys = Object.keys(exp.config);
    expect(keys.length).toBeGreaterThan(150);
    expect(Object.keys(ck.args).sort()).toEqual(keys.sort());
    for (const k of keys) expect(ck.args[k], k).toEqual(exp.config[k]);
    expect(Array.isArray(ck.args.lr)).toBe(true);
    expect(ck.args.adam_betas).toBe('(0.9,0.98)');
  });

  it('tied weights read identically (as separate copies)', () => {
    for (const group of exp.tied_params ?? []) {
      const [first, ...rest] = group.map((k) => ck.model[k]);
      for (const t of rest) {
        expect(rawTensorsEqual(first, t)).toBe(true);
        expect(t.data).not.toBe(first.data);
      }
    }
    if (name === 'mega_lm_tiny') {
      expect(exp.tied_params).toEqual([['decoder.embed_tokens.weight', 'decoder.output_projection.weight']]);
    }
  });

  it('raw keeps the rest of the pickle', () => {
    const raw = ck.raw as Map<string, unknown>;
    expect([...raw.keys()].sort()).toEqual(['args', 'extra_state', 'last_optimizer_state', 'model', 'optimizer_history']);
    const hist = raw.get('optimizer_history') as Array<Map<string, unknown>>;
    expect(hist[0].get('num_updates')).toBe(2);
    expect(hist[0].get('optimizer_name')).toBe('FairseqAdam');
    const opt = raw.get('last_optimizer_state') as Map<string, unknown>;
    const groups = opt.get('param_groups') as Array<Map<string, unknown>>;
    expect(groups[0].get('betas')).toEqual([0.9, 0.98]);
    const state = opt.get('state') as Map<number, Map<string, unknown>>;
    expect(state.size).toBe(name === 'mega_lm_tiny' ? 47 : 48);
    expect(state.get(0)?.get('step')).toBe(2);
  });
});

describe('readFairseqCheckpoint: rejects bad files with CheckpointError', () => {
  const good = readFileSync(join(CK, 'mega_lm_tiny.pt'));

  it('forbidden global (numpy array in the pickle)', () => {
    const pkl = new PickleBuilder()
      .proto(2)
      .emptyDict()
      .mark()
      .str('x')
      .global('numpy.core.multiarray', '_reconstruct')
      .global('numpy', 'ndarray')
      .emptyTuple()
      .tuple()
      .reduce()
      .setitems()
      .stop()
      .bytes();
    const path = join(tmp, 'numpy.pt');
    writeFileSync(path, torchZip(pkl, {}));
    expect(() => readFairseqCheckpoint(path)).toThrow(CheckpointError);
    expect(() => readFairseqCheckpoint(path)).toThrow(/refusing to load global numpy\.core\.multiarray\._reconstruct/);
  });

  it('truncated file', () => {
    for (const len of [good.length - 10, Math.floor(good.length / 2), 100]) {
      const path = join(tmp, `trunc${len}.pt`);
      writeFileSync(path, good.subarray(0, len));
      expect(() => readFairseqCheckpoint(path)).toThrow(CheckpointError);
      expect(() => readFairseqCheckpoint(path)).toThrow(/truncated/);
    }
  });

  it('non-zip, legacy pickle stream, missing file', () => {
    const path = join(tmp, 'text.pt');
    writeFileSync(path, 'this is not a checkpoint\n'.repeat(10));
    expect(() => readFairseqCheckpoint(path)).toThrow(CheckpointError);
    expect(() => readFairseqCheckpoint(path)).toThrow(/not a zip archive/);
    expect(() => decodeFairseqCheckpoint(new Uint8Array([0x80, 0x02, 0x8a, 0x0a]))).toThrow(/legacy/);
    expect(() => readFairseqCheckpoint(join(tmp, 'nope.pt'))).toThrow(CheckpointError);
  });

  it('corrupt content: CRC mismatch, truncated pickle, missing storage, view past the storage', () => {
    const bad = Uint8Array.from(good);
    bad[5000] ^= 0xff; // inside archive/data.pkl
    expect(() => decodeFairseqCheckpoint(bad)).toThrow(/CRC-32 mismatch/);
    const pkl = torchPickle([{ name: 'w', storageType: 'FloatStorage', key: '0', numel: 4, offset: 0, size: [4], stride: [1] }]);
    const cut = torchZip(pkl.subarray(0, pkl.length - 9), { 0: new Uint8Array(16) }, 'a/');
    expect(() => loadTorchZip(cut)).toThrow(/truncated pickle/);
    expect(() => loadTorchZip(torchZip(pkl, {}))).toThrow(/no entry "archive\/data\/0"/);
    expect(() => loadTorchZip(torchZip(pkl, { 0: new Uint8Array(8) }))).toThrow(/expected 16/);
    const past = torchPickle([{ name: 'w', storageType: 'FloatStorage', key: '0', numel: 4, offset: 2, size: [3], stride: [1] }]);
    expect(() => loadTorchZip(torchZip(past, { 0: new Uint8Array(16) }))).toThrow(/reaches element 4/);
    expect(() => loadTorchZip(makeZip([{ name: 'x.txt', data: new Uint8Array(3) }]))).toThrow(/no '<prefix>\/data\.pkl'/);
  });
});

describe('crafted torch checkpoints: storage types, strides, zip variants', () => {
  const f32 = new Float32Array(12).map((_, i) => i);
  const spec = (name: string, o: Partial<TensorSpec>): TensorSpec => ({
    name,
    storageType: 'FloatStorage',
    key: '0',
    numel: 12,
    offset: 0,
    size: [12],
    stride: [1],
    ...o,
  });

  it('strided views are copied to contiguous data', () => {
    const pkl = torchPickle(
      [
        spec('t', { offset: 1, size: [3, 2], stride: [1, 3] }), // (i,j) -> 1 + i + 3j
        spec('sub', { offset: 4, size: [2, 2], stride: [2, 1] }),
        spec('bcast', { size: [2, 3], stride: [0, 1] }),
        spec('scalar', { offset: 5, size: [], stride: [] }),
        spec('empty', { size: [0, 3], stride: [3, 1] }),
        spec('p', { parameter: true, size: [2, 6], stride: [6, 1] }),
      ],
      { lr: 5, arch: 'mega_lm' },
    );
    const ck = decodeFairseqCheckpoint(torchZip(pkl, { 0: leBytes(f32) }));
    expect(ck.args).toEqual({ lr: 5, arch: 'mega_lm' });
    const m = ck.model;
    expect(m.t.shape).toEqual([3, 2]);
    expect(Array.from(m.t.data)).toEqual([1, 4, 2, 5, 3, 6]);
    expect(Array.from(m.sub.data)).toEqual([4, 5, 6, 7]);
    expect(Array.from(m.bcast.data)).toEqual([0, 1, 2, 0, 1, 2]);
    expect(m.scalar).toMatchObject({ dtype: 'f32', shape: [] });
    expect(Array.from(m.scalar.data)).toEqual([5]);
    expect(m.empty.shape).toEqual([0, 3]);
    expect(m.empty.data.length).toBe(0);
    expect(m.p.data).toBeInstanceOf(Float32Array);
    expect(Array.from(m.p.data)).toEqual(Array.from(f32));
  });

  it('half, bfloat16, double, long, int, bool and byte storages', () => {
    const half = new Uint16Array([0x3c00, 0xc100, 0x7bff, 0x0001, 0x7c00, 0x7e00]); // 1, -2.5, 65504, 2^-24, inf, nan
    const bf16 = new Uint16Array([0x3f80, 0xc049]); // 1, -3.140625
    const f64 = new Float64Array([Math.PI, -1e300]);
    const i64 = new BigInt64Array([1n, -5n, 2147483647n, -2147483648n]);
    const i32 = new Int32Array([7, -8]);
    const pkl = torchPickle([
      spec('h', { storageType: 'HalfStorage', key: 'h', numel: 6, size: [6] }),
      spec('b', { storageType: 'BFloat16Storage', key: 'b', numel: 2, size: [2] }),
      spec('d', { storageType: 'DoubleStorage', key: 'd', numel: 2, size: [2] }),
      spec('l', { storageType: 'LongStorage', key: 'l', numel: 4, size: [2, 2], stride: [1, 2] }),
      spec('i', { storageType: 'IntStorage', key: 'i', numel: 2, size: [2] }),
      spec('q', { storageType: 'BoolStorage', key: 'q', numel: 3, size: [3] }),
      spec('u', { storageType: 'ByteStorage', key: 'u', numel: 2, size: [2] }),
    ]);
    const m = decodeFairseqCheckpoint(
      torchZip(
        pkl,
        {
          h: leBytes(half),
          b: leBytes(bf16),
          d: leBytes(f64),
          l: leBytes(i64),
          i: leBytes(i32),
          q: new Uint8Array([1, 0, 1]),
          u: new Uint8Array([200, 3]),
        },
        'x/',
        8,
      ),
    ).model;
    expect(m.h.dtype).toBe('f32');
    expect(Array.from(m.h.data)).toEqual([1, -2.5, 65504, 2 ** -24, Infinity, NaN]);
    expect(Array.from(m.b.data)).toEqual([1, -3.140625]);
    expect(m.d).toMatchObject({ dtype: 'f64' });
    expect(Array.from(m.d.data)).toEqual([Math.PI, -1e300]);
    expect(m.l).toMatchObject({ dtype: 'i32', shape: [2, 2] });
    expect(Array.from(m.l.data)).toEqual([1, 2147483647, -5, -2147483648]);
    expect(Array.from(m.i.data)).toEqual([7, -8]);
    expect(m.q).toMatchObject({ dtype: 'bool' });
    expect(m.q.data).toEqual(new Uint8Array([1, 0, 1]));
    expect(m.u).toMatchObject({ dtype: 'i32' });
    expect(Array.from(m.u.data)).toEqual([200, 3]);
  });

  it('int64 values outside int32 are refused with the value named', () => {
    const pkl = torchPickle([spec('n', { storageType: 'LongStorage', key: 'l', numel: 2, size: [2] })]);
    const z = torchZip(pkl, { l: leBytes(new BigInt64Array([1n, 2n ** 40n])) });
    expect(() => decodeFairseqCheckpoint(z)).toThrow(CheckpointError);
    expect(() => decodeFairseqCheckpoint(z)).toThrow(/1099511627776 does not fit in int32/);
  });

  it('refuses to materialise huge broadcast views', () => {
    const pkl = torchPickle([spec('b', { numel: 1, size: [2 ** 20, 2 ** 10], stride: [0, 0] })]);
    expect(() => loadTorchZip(torchZip(pkl, { 0: new Uint8Array(4) }))).toThrow(/too large/);
  });

  it('pyToPlain converts dicts, Namespaces, tuples and sets; refuses cycles', () => {
    const ns = new PyObject('argparse.Namespace');
    ns.dict
      .set('betas', [0.9, 0.98])
      .set('none', null)
      .set('d', new Map<unknown, unknown>([[1, 'one']]));
    expect(
      pyToPlain(
        new Map<string, unknown>([
          ['ns', ns],
          ['s', new Set([1])],
        ]),
      ),
    ).toEqual({ ns: { betas: [0.9, 0.98], none: null, d: { 1: 'one' } }, s: [1] });
    const cyc: unknown[] = [];
    cyc.push(cyc);
    expect(() => pyToPlain(cyc)).toThrow(CheckpointError);
  });

  it('rejects zip64 archives', () => {
    const z = torchZip(torchPickle([]), {});
    const eocd = z.length - 22;
    const bad = Uint8Array.from(z);
    new DataView(bad.buffer).setUint32(eocd + 16, 0xffffffff, true);
    expect(() => decodeFairseqCheckpoint(bad)).toThrow(/zip64/);
  });
});
