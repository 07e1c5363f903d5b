/**
 * Reader for fairseq / PyTorch `.pt` checkpoints (torch >= 1.6 zip format) that runs no code.
 *
 * Layout: a zip with `<prefix>/data.pkl` (the pickled object), `<prefix>/data/<key>` (raw
 * little-endian storages) and `<prefix>/version`. The pickle is decoded by the restricted VM of
 * `pickle.ts`; storages arrive through persistent ids `('storage', torch.<T>Storage, key, location,
 * numel)` and tensors through `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`.
 * Tensors become contiguous `RawTensor`s (strided views are copied, f16/bf16 widened to f32,
 * int64/uint8 narrowed to i32 with a range check).
 */
import { CheckpointError, describeValue } from './errors.js';
import { type PyGlobal, PyObject, unpickle } from './pickle.js';
import { readFileBounded } from './read.js';
import { type RawTensor, type SourceDType, SOURCE_ITEMSIZE, SOURCE_TO_RAW, decodeLE, isRawTensor, numel } from './raw.js';
import { ZipArchive } from './zip.js';

/** Result of `readFairseqCheckpoint`. */
export interface FairseqCheckpoint {
  /** Fields of the pickled `argparse.Namespace` (tuples → arrays, None → null); `{}` if absent. */
  args: Record<string, unknown>;
  /** `state_dict` name → tensor, in file order (tied weights are separate, equal copies). */
  model: Record<string, RawTensor>;
  /** The whole unpickled object (dicts as `Map`, Namespace as `PyObject`, tensors as `RawTensor`). */
  raw: unknown;
}

/** Storage element type of each allowed `torch.<T>Storage` global. */
const STORAGE_DTYPES: Readonly<Record<string, SourceDType>> = {
  'torch.FloatStorage': 'f32',
  'torch.DoubleStorage': 'f64',
  'torch.HalfStorage': 'f16',
  'torch.BFloat16Storage': 'bf16',
  'torch.LongStorage': 'i64',
  'torch.IntStorage': 'i32',
  'torch.BoolStorage': 'bool',
  'torch.ByteStorage': 'u8',
};

/** Marker value of a `torch.<T>Storage` class inside the pickle. */
class StorageType implements PyGlobal {
  constructor(
    readonly qualname: string,
    readonly src: SourceDType,
  ) {}
}

/** A loaded storage: `numel` elements of `src` starting at `bytes[0]`. */
class TorchStorage {
  constructor(
    readonly key: string,
    readonly src: SourceDType,
    readonly numel: number,
    readonly bytes: Uint8Array,
  ) {}
}

/** Largest copy made for a non-contiguous (e.g. broadcast, stride 0) view: 2 GiB. */
const MAX_VIEW_BYTES = 2 ** 31;

/**
 * What the strided-view copies of one file may add up to: 4 × the file's size + 64 MiB. A
 * broadcast view costs almost nothing in the file, so without this bound a tiny pickle could
 * make gigabytes.
 */
function viewBudget(fileBytes: number): { left: number } {
  return { left: 4 * fileBytes + 2 ** 26 };
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

/**
 * `torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks[, metadata])`
 * → contiguous RawTensor (shape = size).
 */
function rebuildTensor(args: unknown[], budget: { left: number }): RawTensor {
  const [storage, offset, size, stride] = args;
  if (args.length < 4 || !(storage instanceof TorchStorage)) {
    throw new CheckpointError(`_rebuild_tensor_v2 expects (storage, offset, size, stride, ...), got ${describeValue(args)}`);
  }
  const what = `tensor on storage ${JSON.stringify(storage.key)}`;
  if (!isInt(offset) || offset < 0) throw new CheckpointError(`${what}: bad storage offset ${describeValue(offset)}`);
  if (!Array.isArray(size) || !size.every((d) => isInt(d) && d >= 0)) {
    throw new CheckpointError(`${what}: bad size ${describeValue(size)} (expected a tuple of non-negative ints)`);
  }
  if (!Array.isArray(stride) || stride.length !== size.length || !stride.every((s) => isInt(s) && s >= 0)) {
    throw new CheckpointError(`${what}: bad stride ${describeValue(stride)} for size ${describeValue(size)}`);
  }
  const shape = size as number[];
  const strides = stride as number[];
  const n = numel(shape);
  const src = storage.src;
  const item = SOURCE_ITEMSIZE[src];
  const dtype = SOURCE_TO_RAW[src];
  if (n === 0) return { dtype, shape: shape.slice(), data: decodeLE(new Uint8Array(0), src, what, CheckpointError) };
  let last = offset;
  for (let i = 0; i < shape.length; i++) last += (shape[i] - 1) * strides[i];
  if (last >= storage.numel) {
    throw new CheckpointError(
      `${what}: view (offset ${offset}, size [${shape.join(', ')}], stride ` +
        `[${strides.join(', ')}]) reaches element ${last} but the storage has ${storage.numel}`,
    );
  }
  let contiguous = true;
  for (let i = shape.length - 1, expect = 1; i >= 0; i--) {
    if (shape[i] !== 1 && strides[i] !== expect) contiguous = false;
    expect *= shape[i];
  }
  if (!contiguous && n * item > MAX_VIEW_BYTES) {
    throw new CheckpointError(`${what}: strided view of ${n} elements (size [${shape.join(', ')}]) is too large to materialise`);
  }
  if (!contiguous) {
    if (n * item > budget.left) {
      throw new CheckpointError(
        `${what}: strided view of ${n} elements (size [${shape.join(', ')}], stride ` +
          `[${strides.join(', ')}]) exceeds what this file may expand to (${budget.left} more bytes)`,
      );
    }
    budget.left -= n * item;
  }
  let bytes: Uint8Array;
  if (contiguous) {
    bytes = storage.bytes.subarray(offset * item, (offset + n) * item);
  } else {
    // odometer over the C-order index space, copying one element's bytes at a time
    bytes = new Uint8Array(n * item);
    const idx = new Array<number>(shape.length).fill(0);
    let srcElem = offset;
    for (let k = 0; k < n; k++) {
      bytes.set(storage.bytes.subarray(srcElem * item, (srcElem + 1) * item), k * item);
      for (let d = shape.length - 1; d >= 0; d--) {
        idx[d]++;
        srcElem += strides[d];
        if (idx[d] < shape[d]) break;
        srcElem -= idx[d] * strides[d];
        idx[d] = 0;
      }
    }
  }
  return { dtype, shape: shape.slice(), data: decodeLE(bytes, src, what, CheckpointError) };
}

/**
 * Unpickle the `data.pkl` of a torch zip checkpoint held in memory, resolving storages from the
 * archive. Returns the raw Python object graph (see `pickle.ts` for the JS representation).
 * @param label name used in error messages (e.g. the file path)
 * @throws CheckpointError on any malformed, truncated or unsafe content
 */
export function loadTorchZip(bytes: Uint8Array, label = 'checkpoint'): unknown {
  const zip = new ZipArchive(bytes, label);
  const pkls = [...zip.entries.keys()].filter((k) => k === 'data.pkl' || k.endsWith('/data.pkl'));
  if (pkls.length === 0) {
    throw new CheckpointError(`${label}: zip archive has no '<prefix>/data.pkl' entry; not a torch checkpoint`);
  }
  const pklName = pkls.reduce((a, b) => (b.length < a.length ? b : a));
  const prefix = pklName.slice(0, pklName.length - 'data.pkl'.length);
  const byteorder = `${prefix}byteorder`;
  if (zip.has(byteorder)) {
    const bo = new TextDecoder().decode(zip.read(byteorder)).trim();
    if (bo !== 'little') throw new CheckpointError(`${label}: storages are ${JSON.stringify(bo)}-endian; only little-endian is supported`);
  }

  const storages = new Map<string, TorchStorage>();
  const budget = viewBudget(bytes.length);
  const globals: Record<string, PyGlobal> = {
    'torch._utils._rebuild_tensor_v2': { qualname: 'torch._utils._rebuild_tensor_v2', call: (args) => rebuildTensor(args, budget) },
    'torch._utils._rebuild_parameter': {
      qualname: 'torch._utils._rebuild_parameter',
      call: (args) => {
        if (!isRawTensor(args[0])) throw new CheckpointError(`_rebuild_parameter expects a tensor, got ${describeValue(args[0])}`);
        return args[0];
      },
    },
  };
  for (const [q, src] of Object.entries(STORAGE_DTYPES)) globals[q] = new StorageType(q, src);

  const persistentLoad = (pid: unknown): TorchStorage => {
    if (!Array.isArray(pid) || pid.length < 5 || pid[0] !== 'storage') {
      throw new CheckpointError(`unsupported persistent id ${describeValue(pid)} (expected ('storage', type, key, location, numel))`);
    }
    const [, type, key, , count] = pid;
    if (!(type instanceof StorageType)) throw new CheckpointError(`persistent id ${describeValue(pid)}: storage type is not a torch storage class`);
    if (typeof key !== 'string' || !isInt(count) || count < 0) {
      throw new CheckpointError(`persistent id ${describeValue(pid)}: bad key or element count`);
    }
    const cached = storages.get(key);
    if (cached !== undefined) {
      if (cached.src !== type.src) throw new CheckpointError(`storage ${JSON.stringify(key)} used as both ${cached.src} and ${type.src}`);
      return cached;
    }
    const entry = `${prefix}data/${key}`;
    if (!zip.has(entry)) throw new CheckpointError(`storage ${JSON.stringify(key)}: archive has no entry ${JSON.stringify(entry)}`);
    const data = zip.read(entry);
    const want = count * SOURCE_ITEMSIZE[type.src];
    if (data.length < want) {
      throw new CheckpointError(`storage ${JSON.stringify(key)}: entry has ${data.length} bytes, expected ${want} (${count} x ${type.qualname})`);
    }
    const s = new TorchStorage(key, type.src, count, data);
    storages.set(key, s);
    return s;
  };

  return unpickle(zip.read(pklName), { globals, persistentLoad, label: `${label}:${pklName}` });
}

function setKey(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** Deepest nesting of Python containers that {@link pyToPlain} converts. */
export const MAX_PY_DEPTH = 1000;

/**
 * Convert unpickled Python values to plain JS: dict/OrderedDict (Map) → record with string keys,
 * `PyObject` → record of its attributes, tuple/list → array, set → array; RawTensor, bytes and
 * primitives (None already null) unchanged. An object referenced several times is converted once
 * (the result shares it too), so a pickle of shared references cannot expand exponentially.
 * @throws CheckpointError for a self-referencing object or nesting deeper than {@link MAX_PY_DEPTH}
 */
export function pyToPlain(v: unknown): unknown {
  return toPlain(v, new Set(), new Map(), 0);
}

function toPlain(v: unknown, active: Set<object>, done: Map<object, unknown>, depth: number): unknown {
  if (v === null || typeof v !== 'object' || isRawTensor(v) || ArrayBuffer.isView(v)) return v;
  if (done.has(v)) return done.get(v);
  if (active.has(v)) throw new CheckpointError('cannot convert a self-referencing Python object to plain JS');
  if (depth >= MAX_PY_DEPTH) throw new CheckpointError(`a Python object is nested more than ${MAX_PY_DEPTH} levels deep`);
  active.add(v);
  let out: unknown = v;
  if (Array.isArray(v)) out = v.map((x) => toPlain(x, active, done, depth + 1));
  else if (v instanceof Set) out = [...v].map((x) => toPlain(x, active, done, depth + 1));
  else {
    const entries = v instanceof PyObject ? v.dict : v instanceof Map ? v : undefined;
    if (entries !== undefined) {
      const o: Record<string, unknown> = {};
      for (const [k, x] of entries) setKey(o, String(k), toPlain(x, active, done, depth + 1));
      out = o;
    }
  }
  active.delete(v);
  done.set(v, out);
  return out;
}

/**
 * Decode a fairseq checkpoint held in memory (see `readFairseqCheckpoint`).
 * @param label name used in error messages
 */
export function decodeFairseqCheckpoint(bytes: Uint8Array, label = 'checkpoint'): FairseqCheckpoint {
  const raw = loadTorchZip(bytes, label);
  if (!(raw instanceof Map)) throw new CheckpointError(`${label}: top-level object is ${describeValue(raw)}, expected a dict`);
  const m = raw.get('model');
  if (!(m instanceof Map)) {
    throw new CheckpointError(`${label}: expected a 'model' state dict, got ${describeValue(m)} (keys: ${[...raw.keys()].map(String).join(', ')})`);
  }
  const model: Record<string, RawTensor> = {};
  for (const [k, t] of m) {
    if (typeof k !== 'string' || !isRawTensor(t)) {
      throw new CheckpointError(`${label}: model entry ${describeValue(k)} is ${describeValue(t)}, expected a tensor`);
    }
    setKey(model, k, t);
  }
  const a = raw.get('args');
  let args: Record<string, unknown> = {};
  if (a instanceof PyObject || a instanceof Map) {
    try {
      args = pyToPlain(a) as Record<string, unknown>;
    } catch (e) {
      if (e instanceof CheckpointError) throw new CheckpointError(`${label}: 'args': ${e.message}`);
      throw e;
    }
  } else if (a !== undefined && a !== null) {
    throw new CheckpointError(`${label}: 'args' is ${describeValue(a)}, expected an argparse.Namespace`);
  }
  return { args, model, raw };
}

/**
 * Read a fairseq `.pt` checkpoint without executing code.
 * @returns `{args, model, raw}` — Namespace fields, the model state dict, and the full object graph
 * @throws CheckpointError if the file is unreadable, not a torch zip checkpoint, truncated, uses an
 *   unsupported feature or references a global outside `ALLOWED_GLOBALS`
 */
export function readFairseqCheckpoint(path: string): FairseqCheckpoint {
  let bytes: Uint8Array;
  try {
    bytes = readFileBounded(path, CheckpointError);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(`cannot read checkpoint ${path}: ${(e as Error).message}`, { cause: e });
  }
  return decodeFairseqCheckpoint(bytes, path);
}
