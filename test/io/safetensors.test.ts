import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../src/io/atomic.js';
import { CheckpointError } from '../../src/io/errors.js';
import { type RawTensor, rawTensorsEqual } from '../../src/io/raw.js';
import { decodeSafetensors, encodeSafetensors, readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';

const tmp = mkdtempSync(join(tmpdir(), 'mega-st-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const tensors: Record<string, RawTensor> = {
  'layers.0.weight': { dtype: 'f32', shape: [2, 3], data: new Float32Array([1, -2, 3.5, NaN, Infinity, -0]) },
  'z.f64': { dtype: 'f64', shape: [3], data: new Float64Array([Math.PI, -1e-300, 2 ** 60]) },
  tokens: { dtype: 'i32', shape: [1, 2], data: new Int32Array([-2147483648, 7]) },
  mask: { dtype: 'bool', shape: [3], data: new Uint8Array([1, 0, 1]) },
  scalar: { dtype: 'f64', shape: [], data: new Float64Array([42]) },
  empty: { dtype: 'f32', shape: [0, 4], data: new Float32Array(0) },
};

function header(bytes: Uint8Array): { n: number; json: Record<string, unknown> } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { n, json: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown> };
}

/** A file with a hand-written header and data buffer. */
function craft(h: unknown, data: Uint8Array, pad = true): Uint8Array {
  let json = new TextEncoder().encode(typeof h === 'string' ? h : JSON.stringify(h));
  if (pad && json.length % 8) json = Uint8Array.from([...json, ...new Array(8 - (json.length % 8)).fill(0x20)]);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe('safetensors', () => {
  it('round-trips tensors and metadata through a file', () => {
    const path = join(tmp, 'model.safetensors');
    writeSafetensors(path, tensors, { format: 'pt', note: 'mega' });
    const { tensors: back, metadata } = readSafetensors(path);
    expect(metadata).toEqual({ format: 'pt', note: 'mega' });
    expect(Object.keys(back).sort()).toEqual(Object.keys(tensors).sort());
    for (const [k, t] of Object.entries(tensors)) expect(rawTensorsEqual(back[k], t), k).toBe(true);
    const bytes = readFileSync(path);
    const { n, json } = header(bytes);
    expect((8 + n) % 8).toBe(0);
    expect(json.mask).toEqual({ dtype: 'BOOL', shape: [3], data_offsets: expect.any(Array) as unknown });
    // 8-byte dtypes first (then by name), so every tensor stays aligned
    const off = (k: string): number => (json[k] as { data_offsets: number[] }).data_offsets[0];
    expect([off('scalar'), off('z.f64'), off('empty'), off('layers.0.weight'), off('tokens'), off('mask')]).toEqual([0, 8, 32, 32, 56, 64]);
    expect(readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('reads what the reference layout produces (F16/BF16/I64 widened)', () => {
    const data = new Uint8Array([0x00, 0x3c, 0x80, 0x3f, 5, 0, 0, 0, 0, 0, 0, 0]);
    const h = {
      __metadata__: { a: 'b' },
      h: { dtype: 'F16', shape: [1], data_offsets: [0, 2] },
      b: { dtype: 'BF16', shape: [1], data_offsets: [2, 4] },
      l: { dtype: 'I64', shape: [1], data_offsets: [4, 12] },
    };
    const r = decodeSafetensors(craft(h, data));
    expect(r.tensors.h).toEqual({ dtype: 'f32', shape: [1], data: new Float32Array([1]) });
    expect(r.tensors.b).toEqual({ dtype: 'f32', shape: [1], data: new Float32Array([1]) });
    expect(r.tensors.l).toEqual({ dtype: 'i32', shape: [1], data: new Int32Array([5]) });
    expect(r.metadata).toEqual({ a: 'b' });
  });

  it('a truncated file raises CheckpointError', () => {
    const bytes = encodeSafetensors(tensors);
    for (const len of [0, 5, 12, bytes.length - 1]) {
      expect(() => decodeSafetensors(bytes.subarray(0, len))).toThrow(CheckpointError);
      expect(() => decodeSafetensors(bytes.subarray(0, len))).toThrow(/truncated/);
    }
    const path = join(tmp, 'trunc.safetensors');
    writeFileSync(path, bytes.subarray(0, bytes.length - 3));
    expect(() => readSafetensors(path)).toThrow(CheckpointError);
    expect(() => readSafetensors(join(tmp, 'missing.safetensors'))).toThrow(CheckpointError);
  });

  it('a bad header raises CheckpointError naming the problem', () => {
    const d8 = new Uint8Array(8);
    const bad = (h: unknown, data: Uint8Array, re: RegExp): void => {
      expect(() => decodeSafetensors(craft(h, data))).toThrow(CheckpointError);
      expect(() => decodeSafetensors(craft(h, data))).toThrow(re);
    };
    bad('{"x": ', d8, /not valid UTF-8 JSON/);
    bad('[1, 2]', d8, /expected a JSON object/);
    bad({ x: { dtype: 'F8_E4M3', shape: [8], data_offsets: [0, 8] } }, d8, /unsupported dtype "F8_E4M3"/);
    bad({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, d8, /spans 8 bytes, expected 12/);
    bad({ x: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, d8, /data_offsets/);
    bad({ x: { dtype: 'F32', shape: [1.5], data_offsets: [0, 8] } }, d8, /invalid dimension 1\.5/);
    bad({ x: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, d8, /starts at 4, expected 0/);
    bad({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, d8, /cover 4 data bytes but the file has 8/);
    bad({ __metadata__: { a: 1 }, x: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, d8, /__metadata__\["a"\] is 1/);
    bad({ x: 3 }, d8, /tensor "x" entry is 3/);
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setBigUint64(0, 2n ** 40n, true);
    expect(() => decodeSafetensors(huge)).toThrow(/exceeds/);
  });

  it('rejects inconsistent tensors and reserved names on write', () => {
    const path = join(tmp, 'w.safetensors');
    expect(() => writeSafetensors(path, { a: { dtype: 'f32', shape: [3], data: new Float32Array(2) } })).toThrow(CheckpointError);
    expect(() => writeSafetensors(path, { a: { dtype: 'f32', shape: [1], data: new Float64Array(1) } as unknown as RawTensor })).toThrow(CheckpointError);
    expect(() => writeSafetensors(path, { __metadata__: tensors.scalar })).toThrow(/invalid tensor name/);
    expect(existsSync(path)).toBe(false);
  });
});

describe('writeFileAtomic', () => {
  it('replaces the file and leaves no temporary behind', () => {
    const path = join(tmp, 'atomic.txt');
    writeFileAtomic(path, 'old');
    writeFileAtomic(path, new Uint8Array([110, 101, 119]));
    expect(readFileSync(path, 'utf8')).toBe('new');
    expect(readdirSync(tmp).filter((f) => f.startsWith('atomic.txt.tmp-'))).toEqual([]);
  });

  it('a write that throws mid-way leaves the old file intact', () => {
    const path = join(tmp, 'keep.safetensors');
    writeSafetensors(path, { a: tensors.scalar });
    const before = readFileSync(path);
    let tmpSeen = '';
    expect(() =>
      writeSafetensors(path, tensors, undefined, {
        beforeRename: (t) => {
          tmpSeen = t;
          expect(readFileSync(t).length).toBeGreaterThan(before.length); // new data fully written to the temp file
          throw new Error('disk on fire');
        },
      }),
    ).toThrow('disk on fire');
    expect(tmpSeen.startsWith(`${path}.tmp-${process.pid}-`)).toBe(true);
    expect(existsSync(tmpSeen)).toBe(false);
    expect(Buffer.compare(readFileSync(path), before)).toBe(0);
    expect(readSafetensors(path).tensors.a.data).toEqual(new Float64Array([42]));
    // failing before anything is written (directory missing) also leaves nothing behind
    expect(() => writeFileAtomic(join(tmp, 'no-such-dir', 'x'), 'data')).toThrow();
  });
});
