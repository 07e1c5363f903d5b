import { allocate, dtypeOf, type DType, type Storage } from './dtype.js';
import { IndexError, ShapeError } from './errors.js';
import { hostSync } from './host-sync.js';
import { contiguousStrides, sizeOf, type Shape } from './shape.js';

/**
 * How a tensor was made, for the autograd tape (floor 2 fills it; the tensor floor only stores it).
 * `backward(g)` returns one gradient (or null) per input.
 */
export interface GradFn {
  readonly name: string;
  readonly inputs: readonly Tensor[];
  backward(grad: Tensor): (Tensor | null)[];
}

/**
 * Values that live on a compute device (a backend's buffer) instead of in a typed array.
 * `read()` copies them to the host once and caches the copy, so every CPU code path can keep
 * using `Tensor.storage`. Views of a device tensor share its DeviceData (see `Tensor.data`).
 */
export abstract class DeviceData {
  /** Logical element type (the device may store it differently, e.g. i32 as f32). */
  abstract readonly dtype: DType;
  /** Number of elements. */
  abstract readonly length: number;
  /** The values as host storage (read back on the first call, cached). */
  abstract read(): Storage;
  /** Starts copying the values to the host without waiting (a later `read` collects them). */
  prefetch?(): void;
}

/**
 * An n-dimensional array: a typed-array storage seen through `shape`, `strides` and `offset`
 * (element units). Several tensors may share one storage (views). Tensors are immutable in
 * value except through the explicit in-place helpers used by optimizers.
 *
 * The storage may instead live on a device (`device` non-null): then `storage` reads it back on
 * first access (cached), and views made through `data` stay on the device.
 */
export class Tensor {
  /** Gradient accumulated by `backward()` (leaves with `requiresGrad` only). */
  grad: Tensor | null = null;
  /** Tape node that produced this tensor, or null for leaves / untracked results. */
  gradFn: GradFn | null = null;
  /** Device buffer holding the values, or null for a host tensor. */
  readonly device: DeviceData | null;
  private host: Storage | null;

  constructor(
    data: Storage | DeviceData,
    readonly shape: readonly number[],
    readonly strides: readonly number[],
    readonly offset: number,
    /** Whether gradients flow to (and, for leaves, accumulate in) this tensor. */
    public requiresGrad = false,
  ) {
    if (data instanceof DeviceData) {
      this.device = data;
      this.host = null;
    } else {
      this.device = null;
      this.host = data;
    }
  }

  /**
   * Rebinds this tensor (contiguous, offset 0) to new values of the same size: a host storage or a
   * device buffer. The in-place helper of optimizers whose update makes a new device buffer, and
   * of moving parameters to a device; views taken before keep the old values.
   */
  rebind(data: Storage | DeviceData): void {
    if (data.length !== this.size || this.offset !== 0 || !this.isContiguous()) {
      throw new ShapeError(`rebind: expected ${this.size} elements for a contiguous tensor of shape [${this.shape}], got ${data.length}`);
    }
    const self = this as { device: DeviceData | null };
    if (data instanceof DeviceData) {
      self.device = data;
      this.host = null;
    } else {
      self.device = null;
      this.host = data;
    }
  }

  /**
   * The typed-array storage (for a device tensor: read back on first access, then cached). Waits
   * for kernel work still running on other threads first (host-sync.ts): its values are final.
   */
  get storage(): Storage {
    // (pending only with shared memory; an ordinary array is no kernel's output in flight)
    if (hostSync.pending && this.host?.buffer instanceof SharedArrayBuffer) hostSync.settle(this.host);
    return this.host ?? (this.host = this.device!.read());
  }

  /**
   * What views pass on: the device buffer of a device tensor, else the storage (no read-back, no
   * wait; a kernel call of the CPU backend notes it as an input of its jobs, host-sync.ts).
   */
  get data(): Storage | DeviceData {
    if (hostSync.reading !== null && this.host !== null) hostSync.reading(this.host);
    return this.device ?? this.host!;
  }

  /** Element type. */
  get dtype(): DType {
    return this.device ? this.device.dtype : dtypeOf(this.host!);
  }

  /** Number of dimensions. */
  get ndim(): number {
    return this.shape.length;
  }

  /** Number of elements. */
  get size(): number {
    return sizeOf(this.shape);
  }

  /** Whether the elements are laid out row-major without gaps starting at `offset`. */
  isContiguous(): boolean {
    let acc = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      if (this.shape[i] !== 1 && this.strides[i] !== acc) return false;
      acc *= this.shape[i];
    }
    return true;
  }

  /** Element values in row-major order as a fresh typed array. */
  toTypedArray(): Storage {
    const n = this.size;
    if (this.isContiguous()) return this.storage.slice(this.offset, this.offset + n) as Storage;
    const out = allocate(this.dtype, n);
    const nd = this.ndim;
    const idx = new Array<number>(nd).fill(0);
    let src = this.offset;
    for (let i = 0; i < n; i++) {
      out[i] = this.storage[src];
      for (let d = nd - 1; d >= 0; d--) {
        idx[d]++;
        src += this.strides[d];
        if (idx[d] < this.shape[d]) break;
        src -= this.strides[d] * this.shape[d];
        idx[d] = 0;
      }
    }
    return out;
  }

  /** Element values as a flat number array (row-major). */
  toArray(): number[] {
    return Array.from(this.toTypedArray());
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new IndexError(`item: tensor of shape [${this.shape}] has ${this.size} elements, expected 1`);
    return this.storage[this.offset];
  }

  /** Element at a multi-index (slow; for tests and debugging). */
  at(...index: number[]): number {
    if (index.length !== this.ndim) throw new IndexError(`at: ${index.length} indices for a tensor of ${this.ndim} dimensions`);
    let p = this.offset;
    for (let i = 0; i < index.length; i++) {
      const j = index[i] < 0 ? index[i] + this.shape[i] : index[i];
      if (j < 0 || j >= this.shape[i]) throw new IndexError(`at: index ${index[i]} out of range for axis ${i} of size ${this.shape[i]}`);
      p += j * this.strides[i];
    }
    return this.storage[p];
  }

  /** A short description for error messages and logs. */
  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape}])`;
  }
}

/** Wraps a storage (or device buffer) as a contiguous tensor of `shape` (no copy). */
export function fromStorage(storage: Storage | DeviceData, shape: Shape): Tensor {
  return new Tensor(storage, [...shape], contiguousStrides(shape), 0);
}
