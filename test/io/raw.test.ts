import { describe, expect, it } from 'vitest';
import { CheckpointError, FormatError } from '../../src/io/errors.js';
import { checkRawTensor, decodeLE, encodeLE, halfToFloat, rawTensorsEqual } from '../../src/io/raw.js';

describe('raw', () => {
  it('decodes each source dtype into fresh aligned arrays', () => {
    const buf = new Uint8Array(17);
    const v = buf.subarray(1); // unaligned view
    new DataView(v.buffer, 1).setFloat64(0, -1.25, true);
    new DataView(v.buffer, 1).setFloat64(8, 3, true);
    const f = decodeLE(v, 'f64', 't', FormatError);
    expect(f).toEqual(new Float64Array([-1.25, 3]));
    expect(f.byteOffset).toBe(0);
    expect(f.buffer).not.toBe(buf.buffer);
    expect(decodeLE(new Uint8Array([0xff, 0x80]), 'i8', 't', FormatError)).toEqual(new Int32Array([-1, -128]));
    expect(decodeLE(new Uint8Array([0xff, 0xff]), 'i16', 't', FormatError)).toEqual(new Int32Array([-1]));
    expect(decodeLE(new Uint8Array([2, 0]), 'bool', 't', FormatError)).toEqual(new Uint8Array([1, 0]));
    expect(() => decodeLE(new Uint8Array(3), 'f32', 'x', CheckpointError)).toThrow(/x: 3 bytes is not a multiple/);
  });

  it('range-checks int64 and converts half precision exactly', () => {
    const ok = new Uint8Array(new BigInt64Array([-1n, -2147483648n, 2147483647n]).buffer);
    expect(decodeLE(ok, 'i64', 't', FormatError)).toEqual(new Int32Array([-1, -2147483648, 2147483647]));
    const big = new Uint8Array(new BigInt64Array([0n, -2147483649n]).buffer);
    expect(() => decodeLE(big, 'i64', 'tok', FormatError)).toThrow(/tok: int64 element 1 = -2147483649 does not fit in int32/);
    expect([0x0000, 0x8000, 0x3555, 0x0400, 0xfc00].map(halfToFloat)).toEqual([0, -0, 0.333251953125, 2 ** -14, -Infinity]);
  });

  it('encodes i32 as sign-extended i64 and compares bitwise', () => {
    const t = { dtype: 'i32' as const, shape: [2], data: new Int32Array([-3, 5]) };
    expect(Array.from(new BigInt64Array(encodeLE(t, true).buffer))).toEqual([-3n, 5n]);
    expect(rawTensorsEqual({ dtype: 'f32', shape: [1], data: new Float32Array([NaN]) }, { dtype: 'f32', shape: [1], data: new Float32Array([NaN]) })).toBe(
      true,
    );
    expect(rawTensorsEqual({ dtype: 'f32', shape: [1], data: new Float32Array([0]) }, { dtype: 'f32', shape: [1], data: new Float32Array([-0]) })).toBe(false);
    expect(() => checkRawTensor({ dtype: 'bool', shape: [1], data: new Uint8Array([3]) }, 'm', FormatError)).toThrow(/m: bool element 0 is 3/);
  });
});
