import { describe, expect, it } from 'vitest';
import { CheckpointError } from '../../src/io/errors.js';
import { ALLOWED_GLOBALS, PyObject, PyOrderedDict, unpickle } from '../../src/io/pickle.js';
import { PickleBuilder } from './fixtures.js';
import { PY_PICKLES } from './pypickles.js';

const hex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));

describe('unpickle: CPython reference pickles, protocols 0..5', () => {
  PY_PICKLES.forEach((h, proto) => {
    it(`protocol ${proto}`, () => {
      const v = unpickle(hex(h)) as Map<unknown, unknown>;
      expect(v).toBeInstanceOf(Map);
      expect(v.get('int')).toEqual([0, 1, 255, 256, 65535, 65536, -1, -(2 ** 31), 2 ** 31 - 1, 2 ** 31, 2n ** 62n, -(2n ** 70n), 2n ** 53n + 1n]);
      const f = v.get('float') as number[];
      expect(f).toEqual([1.5, -0, Infinity, 1e-300]);
      expect(Object.is(f[1], -0)).toBe(true);
      expect(v.get('str')).toEqual(['', 'h\u00e9llo \u4e2d\\\n', 'a'.repeat(300)]);
      expect(v.get('tuple')).toEqual([]);
      expect(v.get('t1')).toEqual([1]);
      expect(v.get('t2')).toEqual([1, 2]);
      expect(v.get('t3')).toEqual([1, 2, 3]);
      expect(v.get('t4')).toEqual([1, 2, 3, 4]);
      expect(v.get('none')).toBeNull();
      expect(v.get('bools')).toEqual([true, false]);
      const od = v.get('od');
      expect(od).toBeInstanceOf(PyOrderedDict);
      expect([...(od as Map<unknown, unknown>)]).toEqual([
        ['x', 1],
        ['y', 2],
      ]);
      expect(v.get('shared')).toEqual([7]);
      expect(v.get('shared2')).toBe(v.get('shared')); // memo keeps identity
      expect(v.get(3)).toBe('intkey');
      if (proto >= 2) {
        const ns = v.get('ns') as PyObject;
        expect(ns).toBeInstanceOf(PyObject);
        expect(ns.cls).toBe('argparse.Namespace');
        expect(Object.fromEntries(ns.dict)).toEqual({ a: 1, b: [1, 2], c: null, d: 'x', e: [0.5], f: true });
      }
      if (proto >= 3) expect(v.get('bytes')).toEqual(new Uint8Array([0, 1, 255]));
      if (proto >= 4) {
        expect(v.get('set')).toEqual(new Set([1, 2]));
        expect(v.get('fs')).toEqual(new Set([3]));
      }
      if (proto >= 5) expect(v.get('ba')).toEqual(new Uint8Array([97, 98]));
    });
  });
});

describe('unpickle: restrictions and malformed streams', () => {
  it('refuses globals outside the allow-list (GLOBAL and STACK_GLOBAL)', () => {
    const np = new PickleBuilder().proto(2).global('numpy.core.multiarray', '_reconstruct').stop().bytes();
    expect(() => unpickle(np)).toThrow(CheckpointError);
    expect(() => unpickle(np)).toThrow(/refusing to load global numpy\.core\.multiarray\._reconstruct/);
    // protocol 4: SHORT_BINUNICODE 'os', SHORT_BINUNICODE 'system', STACK_GLOBAL
    const os = hex('80048c026f738c0673797374656d932e');
    expect(() => unpickle(os)).toThrow(/refusing to load global os\.system/);
    // builtins.eval via INST
    expect(() => unpickle(new TextEncoder().encode('(ibuiltins\neval\n.'))).toThrow(/refusing to load global builtins\.eval/);
  });

  it('allow-list is exactly the documented set; torch globals need an implementation', () => {
    expect([...ALLOWED_GLOBALS].sort()).toEqual([
      'argparse.Namespace',
      'collections.OrderedDict',
      'torch.BFloat16Storage',
      'torch.BoolStorage',
      'torch.ByteStorage',
      'torch.DoubleStorage',
      'torch.FloatStorage',
      'torch.HalfStorage',
      'torch.IntStorage',
      'torch.LongStorage',
      'torch._utils._rebuild_parameter',
      'torch._utils._rebuild_tensor_v2',
    ]);
    const p = new PickleBuilder().proto(2).global('torch._utils', '_rebuild_tensor_v2').stop().bytes();
    expect(() => unpickle(p)).toThrow(/allowed but no implementation/);
  });

  it('rejects truncation, unknown opcodes, stack underflow and persistent ids without a loader', () => {
    const good = new PickleBuilder().proto(2).mark().int(1).str('abc').tuple().stop().bytes();
    expect(unpickle(good)).toEqual([1, 'abc']);
    for (const cut of [1, 5, good.length - 1]) {
      expect(() => unpickle(good.subarray(0, cut))).toThrow(CheckpointError);
    }
    expect(() => unpickle(good.subarray(0, 5))).toThrow(/truncated pickle/);
    expect(() => unpickle(hex('8002ff2e'))).toThrow(/unsupported pickle opcode 0xff at offset 2/);
    expect(() => unpickle(hex('80022e'))).toThrow(/stack underflow/);
    expect(() => unpickle(hex('80027400'))).toThrow(/MARK expected/);
    expect(() => unpickle(hex('8002680571002e'))).toThrow(/memo key 5/);
    expect(() => unpickle(new PickleBuilder().proto(2).str('x').binpersid().stop().bytes())).toThrow(/persistent/);
  });

  it('labels errors with the stream name', () => {
    expect(() => unpickle(hex('8002'), { label: 'ck.pt:archive/data.pkl' })).toThrow(/^ck\.pt:archive\/data\.pkl: truncated/);
  });
});
