/**
 * Reader/writer for `mega-golden/1` reference files (one msgpack map per case; see
 * `test/golden/FORMAT.md`).
 *
 * Tensors are maps `{dtype: "f64"|"f32"|"i64"|"bool", shape: [ints], data: bin}` holding raw
 * little-endian C-contiguous bytes. They are decoded to `RawTensor` (i64 → Int32Array with a range
 * check, bool → Uint8Array 0/1) into fresh aligned buffers: msgpackr hands `bin` out as views of the
 * file buffer at arbitrary (unaligned) byte offsets. Every structural problem raises `FormatError`.
 */
import { createRequire } from 'node:module';
import type { Options, Packr, Unpackr } from 'msgpackr';
import { FormatError, describeValue } from './errors.js';
import { readFileBounded } from './read.js';
import { type RawTensor, type SourceDType, SOURCE_ITEMSIZE, checkRawTensor, checkShape, decodeLE, encodeLE, isRawTensor, numel } from './raw.js';

/** The only supported value of the `format` key. */
export const GOLDEN_FORMAT = 'mega-golden/1';

/** State-dict / argument name → tensor. */
export type TensorMap = Record<string, RawTensor>;

/** One step of an `incremental` or `optimizer` procedure. */
export interface GoldenStep {
  inputs: TensorMap;
  outputs: TensorMap;
}

/** fairseq `Dictionary` facts of full-model cases. */
export interface GoldenTask {
  dictionary_size: number;
  bos: number;
  pad: number;
  eos: number;
  unk: number;
  first_regular_symbol: number;
  [key: string]: unknown;
}

/** Provenance of the reference values. */
export interface GoldenReference {
  repo?: string;
  commit?: string;
  torch?: string;
  dtype?: string;
  [key: string]: unknown;
}

/** A decoded `mega-golden/1` case (keys as in FORMAT.md; tensors as `RawTensor`). */
export interface GoldenCase {
  format: typeof GOLDEN_FORMAT;
  /** Case name = file stem. */
  case: string;
  /** Reference class name, e.g. `MultiHeadEMA`, `MegaLanguageModel`, `AdamTrajectory`. */
  module: string;
  /** Constructor kwargs / argparse fields (snake_case). */
  config: Record<string, unknown>;
  mode: 'train' | 'eval';
  procedure: 'forward' | 'incremental' | 'optimizer';
  /** Non-tensor forward arguments (`seq_len`, `need_weights`, ...). */
  options: Record<string, unknown>;
  task?: GoldenTask;
  /** Groups of state-dict names that are one shared tensor. */
  tied_params?: string[][];
  reference?: GoldenReference;
  params: TensorMap;
  inputs: TensorMap;
  outputs: TensorMap;
  cotangent?: TensorMap;
  grads?: TensorMap;
  steps?: GoldenStep[];
  /** One-line description. */
  desc: string;
}

const FILE_DTYPES: Readonly<Record<string, SourceDType>> = { f64: 'f64', f32: 'f32', i64: 'i64', i32: 'i32', bool: 'bool' };
const TENSOR_MAP_KEYS = ['params', 'inputs', 'outputs', 'cotangent', 'grads'] as const;
const REQUIRED_KEYS = ['format', 'case', 'module', 'config', 'mode', 'procedure', 'options', 'params', 'inputs', 'outputs', 'desc'] as const;

// int64AsType 'auto' (runtime option of msgpackr >= 1.10, missing from its typings): int64/uint64
// within +-2^53 decode to number, larger ones to bigint (the default would give bigint for all).
let codec: { unpackr: Unpackr; packr: Packr } | undefined;
/**
 * The msgpack codec, loaded on first use: msgpackr is an optional package needed only for golden
 * files (`mega verify`, `mega import-fairseq --check`, the tests).
 * @throws FormatError naming the package when it is not installed
 */
function msgpack(): { unpackr: Unpackr; packr: Packr } {
  if (codec) return codec;
  let m: typeof import('msgpackr');
  try {
    m = createRequire(import.meta.url)('msgpackr') as typeof import('msgpackr');
  } catch (e) {
    throw new FormatError(
      `golden files (mega-golden/1 msgpack) need the optional package msgpackr: npm install msgpackr (${(e as Error).message.split('\n')[0]})`,
    );
  }
  codec = {
    unpackr: new m.Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'auto' } as unknown as Options),
    packr: new m.Packr({ useRecords: false, mapsAsObjects: true }),
  };
  return codec;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v) && !(v instanceof Map);
}

function setKey(o: Obj, k: string, v: unknown): void {
  // defineProperty: a key named "__proto__" must stay a plain own property
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

function keyPath(path: string, k: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`;
}

/** Decode one encoded tensor map `{dtype, shape, data}` found at `path`. */
function decodeTensor(v: Obj, path: string): RawTensor {
  const src = typeof v.dtype === 'string' ? FILE_DTYPES[v.dtype] : undefined;
  if (src === undefined) {
    throw new FormatError(`${path}: unknown tensor dtype ${describeValue(v.dtype)} (expected one of f64, f32, i64, bool)`);
  }
  const shape = checkShape(v.shape, path, FormatError);
  const data = v.data;
  if (!(data instanceof Uint8Array)) {
    throw new FormatError(`${path}: tensor data must be msgpack bin, got ${describeValue(data)}`);
  }
  const n = numel(shape);
  const want = n * SOURCE_ITEMSIZE[src];
  if (data.length !== want) {
    throw new FormatError(
      `${path}: tensor data has ${data.length} bytes, expected ${want} (shape [${shape.join(', ')}] x ${SOURCE_ITEMSIZE[src]} bytes of ${v.dtype})`,
    );
  }
  const out = decodeLE(data, src, path, FormatError);
  if (src === 'bool') {
    for (let i = 0; i < n; i++) {
      if (data[i] > 1) throw new FormatError(`${path}: bool element ${i} is ${data[i]}, expected 0 or 1`);
    }
  }
  const dtype = src === 'i64' ? 'i32' : src;
  return { dtype, shape, data: out } as RawTensor;
}

/** Recursively copy a decoded msgpack value, turning every `{dtype, shape, data}` map into a RawTensor. */
function decodeTree(v: unknown, path: string): unknown {
  if (Array.isArray(v)) return v.map((x, i) => decodeTree(x, `${path}[${i}]`));
  if (!isObj(v)) return v;
  if ('dtype' in v && 'shape' in v && 'data' in v) return decodeTensor(v, path);
  const o: Obj = {};
  for (const [k, x] of Object.entries(v)) setKey(o, k, decodeTree(x, keyPath(path, k)));
  return o;
}

function expectTensorMap(v: unknown, path: string): TensorMap {
  if (!isObj(v)) throw new FormatError(`${path}: expected a map of name -> tensor, got ${describeValue(v)}`);
  for (const [k, t] of Object.entries(v)) {
    if (!isRawTensor(t)) {
      throw new FormatError(`${keyPath(path, k)}: expected a tensor {dtype, shape, data}, got ${describeValue(t)}`);
    }
  }
  return v as TensorMap;
}

function expectString(v: unknown, path: string): string {
  if (typeof v !== 'string') throw new FormatError(`${path}: expected a string, got ${describeValue(v)}`);
  return v;
}

function expectObj(v: unknown, path: string): Obj {
  if (!isObj(v)) throw new FormatError(`${path}: expected a map, got ${describeValue(v)}`);
  return v;
}

function expectEnum<T extends string>(v: unknown, allowed: readonly T[], path: string): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new FormatError(`${path}: expected one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${describeValue(v)}`);
  }
  return v as T;
}

/**
 * Decode and validate the bytes of a `mega-golden/1` file.
 * @throws FormatError on undecodable msgpack, a wrong `format`, missing/mistyped keys or a bad tensor.
 */
export function decodeGolden(bytes: Uint8Array): GoldenCase {
  let top: unknown;
  try {
    top = msgpack().unpackr.unpack(bytes.subarray(0)); // fresh view: msgpackr caches a `dataView` property on its input
  } catch (e) {
    throw new FormatError(`golden data (${bytes.length} bytes) is not valid msgpack: ${(e as Error).message}`, { cause: e });
  }
  if (!isObj(top)) throw new FormatError(`golden data: top level must be a msgpack map, got ${describeValue(top)}`);
  if (top.format !== GOLDEN_FORMAT) {
    throw new FormatError(`golden data: format is ${describeValue(top.format)}, expected ${JSON.stringify(GOLDEN_FORMAT)}`);
  }
  const missing = REQUIRED_KEYS.filter((k) => !(k in top));
  if (missing.length > 0) {
    throw new FormatError(`golden case ${describeValue(top.case)}: missing required key(s) ${missing.join(', ')}`);
  }
  const name = expectString(top.case, 'case');
  const d = decodeTree(top, name) as Obj;
  const at = (k: string): string => `${name}.${k}`;
  const c: GoldenCase = {
    format: GOLDEN_FORMAT,
    case: name,
    module: expectString(d.module, at('module')),
    config: expectObj(d.config, at('config')),
    mode: expectEnum(d.mode, ['train', 'eval'] as const, at('mode')),
    procedure: expectEnum(d.procedure, ['forward', 'incremental', 'optimizer'] as const, at('procedure')),
    options: expectObj(d.options, at('options')),
    params: {},
    inputs: {},
    outputs: {},
    desc: expectString(d.desc, at('desc')),
  };
  if (d.task !== undefined) c.task = expectObj(d.task, at('task')) as GoldenTask;
  if (d.reference !== undefined) c.reference = expectObj(d.reference, at('reference')) as GoldenReference;
  if (d.tied_params !== undefined) {
    const tp = d.tied_params;
    if (!Array.isArray(tp) || !tp.every((g) => Array.isArray(g) && g.every((s) => typeof s === 'string'))) {
      throw new FormatError(`${at('tied_params')}: expected a list of lists of state-dict names, got ${describeValue(tp)}`);
    }
    c.tied_params = tp as string[][];
  }
  for (const k of TENSOR_MAP_KEYS) {
    if (d[k] !== undefined) c[k] = expectTensorMap(d[k], at(k));
  }
  if (d.steps !== undefined) {
    if (!Array.isArray(d.steps)) throw new FormatError(`${at('steps')}: expected a list of {inputs, outputs}, got ${describeValue(d.steps)}`);
    c.steps = d.steps.map((s, i) => {
      const p = `${at('steps')}[${i}]`;
      const so = expectObj(s, p);
      if (!('inputs' in so) || !('outputs' in so)) throw new FormatError(`${p}: expected keys inputs and outputs, got ${Object.keys(so).join(', ')}`);
      return { inputs: expectTensorMap(so.inputs, `${p}.inputs`), outputs: expectTensorMap(so.outputs, `${p}.outputs`) };
    });
  }
  return c;
}

/**
 * Read and decode a `mega-golden/1` file.
 * @throws FormatError if the file cannot be read or is malformed (message names the path).
 */
export function readGoldenFile(path: string): GoldenCase {
  let bytes: Uint8Array;
  try {
    bytes = readFileBounded(path, FormatError);
  } catch (e) {
    if (e instanceof FormatError) throw e;
    throw new FormatError(`cannot read golden file ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    return decodeGolden(bytes);
  } catch (e) {
    if (e instanceof FormatError) throw new FormatError(`${path}: ${e.message}`, { cause: e.cause });
    throw e;
  }
}

/** Recursively encode: RawTensor → `{dtype, shape, data: bin}` (i32 as i64); drops `undefined`. */
function encodeTree(v: unknown, path: string): unknown {
  if (isRawTensor(v)) {
    const t = checkRawTensor(v, path, FormatError);
    return { dtype: t.dtype === 'i32' ? 'i64' : t.dtype, shape: t.shape.slice(), data: encodeLE(t, true) };
  }
  if (Array.isArray(v)) return v.map((x, i) => encodeTree(x, `${path}[${i}]`));
  if (ArrayBuffer.isView(v) && !(v instanceof Uint8Array)) {
    throw new FormatError(`${path}: cannot encode a bare ${v.constructor.name}; wrap it in a RawTensor`);
  }
  // msgpackr would write integers beyond 32 bits as float64; a bigint is written as int64
  if (typeof v === 'number' && Number.isSafeInteger(v) && Math.abs(v) >= 2 ** 31) return BigInt(v);
  if (!isObj(v)) return v;
  const o: Obj = {};
  for (const [k, x] of Object.entries(v)) if (x !== undefined) setKey(o, k, encodeTree(x, keyPath(path, k)));
  return o;
}

/**
 * Encode a case as `mega-golden/1` msgpack bytes (inverse of `decodeGolden`; i32 tensors are
 * written as i64, other dtypes unchanged). Key order follows FORMAT.md.
 * @throws FormatError if a tensor is inconsistent (data length != product(shape), bad bool value).
 */
export function encodeGolden(c: GoldenCase): Uint8Array {
  if (c.format !== GOLDEN_FORMAT) {
    throw new FormatError(`encodeGolden: format is ${describeValue(c.format)}, expected ${JSON.stringify(GOLDEN_FORMAT)}`);
  }
  const order = [
    'format',
    'case',
    'module',
    'config',
    'mode',
    'procedure',
    'options',
    'reference',
    'task',
    'tied_params',
    'params',
    'inputs',
    'outputs',
    'cotangent',
    'grads',
    'steps',
    'desc',
  ] as const;
  const src = c as unknown as Obj;
  const o: Obj = {};
  for (const k of order) if (src[k] !== undefined) setKey(o, k, encodeTree(src[k], `${c.case}.${k}`));
  const packed = msgpack().packr.pack(o);
  const out = new Uint8Array(packed.length); // own the bytes: msgpackr may reuse its pack buffer
  out.set(packed);
  return out;
}
