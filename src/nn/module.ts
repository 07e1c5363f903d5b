/**
 * `Module`: a tree of named parameters, buffers and sub-modules whose dotted names are exactly
 * PyTorch's state_dict names (`move.delta`, `mx_proj.weight`, ...), so reference checkpoints
 * load by name.
 */
import type { DType, FloatDType } from '../tensor/dtype.js';
import { cast } from '../tensor/kernels.js';
import { sameShape } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { StateDictError } from './errors.js';

/** Construction options common to all modules. */
export interface ModuleOptions {
  /** Parameter dtype (default f32). */
  dtype?: FloatDType;
}

/** Base class of all layers and models. */
export class Module {
  /** Train mode (dropout on, batch-norm batch statistics) vs eval mode. */
  training = true;
  private readonly _params = new Map<string, Tensor>();
  private readonly _buffers = new Map<string, Tensor>();
  private readonly _children = new Map<string, Module>();

  /** Registers a trainable parameter under `name` (marks it `requiresGrad`); returns it. */
  protected param(name: string, t: Tensor): Tensor {
    t.requiresGrad = true;
    this._params.set(name, t);
    return t;
  }

  /** Registers a non-trainable state tensor (e.g. batch-norm running statistics); returns it. */
  protected buffer(name: string, t: Tensor): Tensor {
    this._buffers.set(name, t);
    return t;
  }

  /** Replaces the value of a registered buffer. */
  protected setBuffer(name: string, t: Tensor): void {
    if (!this._buffers.has(name)) throw new StateDictError(`setBuffer: no buffer named '${name}'`);
    this._buffers.set(name, t);
  }

  /** A registered buffer by name. */
  protected getBuffer(name: string): Tensor {
    const b = this._buffers.get(name);
    if (!b) throw new StateDictError(`no buffer named '${name}'`);
    return b;
  }

  /** Registers a sub-module under `name`; returns it. */
  protected child<M extends Module>(name: string, m: M): M {
    this._children.set(name, m);
    return m;
  }

  /** All parameters with dotted names (a tensor registered under several names appears under each). */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, t] of this._params) out.push([prefix + n, t]);
    for (const [n, c] of this._children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  /** Distinct parameter tensors, in registration order. */
  parameters(): Tensor[] {
    return [...new Set(this.namedParameters().map(([, t]) => t))];
  }

  /** All buffers with dotted names. */
  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, t] of this._buffers) out.push([prefix + n, t]);
    for (const [n, c] of this._children) out.push(...c.namedBuffers(`${prefix}${n}.`));
    return out;
  }

  /** Sub-modules with dotted names (depth first, this module excluded). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [];
    for (const [n, c] of this._children) out.push([prefix + n, c], ...c.namedModules(`${prefix}${n}.`));
    return out;
  }

  /** Parameters and buffers by state_dict name. */
  stateDict(): Record<string, Tensor> {
    return Object.fromEntries([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /**
   * Copies values into parameters and buffers by name (casting dtype). Strict (default): a
   * missing or unexpected key is an error; a shape mismatch always is. Returns the keys used.
   */
  loadStateDict(sd: Record<string, Tensor>, { strict = true } = {}): { missing: string[]; unexpected: string[] } {
    const own = new Map([...this.namedParameters(), ...this.namedBuffers()]);
    const missing = [...own.keys()].filter((k) => !(k in sd));
    const unexpected = Object.keys(sd).filter((k) => !own.has(k));
    if (strict && (missing.length || unexpected.length)) {
      throw new StateDictError(`loadStateDict: missing keys [${missing.join(', ')}], unexpected keys [${unexpected.join(', ')}]`);
    }
    for (const [k, dst] of own) {
      const src = sd[k];
      if (!src) continue;
      if (!sameShape(src.shape, dst.shape)) {
        throw new StateDictError(`loadStateDict: '${k}' has shape [${src.shape}] in the state dict but [${dst.shape}] in the model`);
      }
      assign(dst, src);
    }
    return { missing, unexpected };
  }

  /** Sets train (true) or eval (false) mode recursively. */
  train(flag = true): this {
    this.training = flag;
    for (const c of this._children.values()) c.train(flag);
    return this;
  }

  /** Eval mode. */
  eval(): this {
    return this.train(false);
  }

  /** Total number of distinct parameter elements. */
  numParameters(): number {
    return this.parameters().reduce((n, t) => n + t.size, 0);
  }
}

/** Writes the values of `src` into the (contiguous) storage of `dst`, casting dtype. */
export function assign(dst: Tensor, src: Tensor): void {
  const v = cast(src, dst.dtype as DType).toTypedArray();
  dst.storage.set(v, dst.offset);
}
