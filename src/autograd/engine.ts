/**
 * The reverse-mode tape. An op's result records a `GradFn` (its inputs and a backward closure
 * written with ops); `backward(root)` walks the graph in reverse topological order and
 * accumulates gradients into leaves that `requiresGrad`. Backward closures run with recording
 * off (first-order gradients only).
 */
import { ones } from '../tensor/create.js';
import { ShapeError, TensorError } from '../tensor/errors.js';
import { binary, cast, copy } from '../tensor/kernels.js';
import {
  residentActive,
  residentMark,
  residentProtect,
  residentProtectRoots,
  residentRelease,
  residentSinceMark,
  scopeBlock,
} from '../tensor/backends/cpu/resident.js';
import { sameShape } from '../tensor/shape.js';
import { Tensor, type GradFn } from '../tensor/tensor.js';

let gradEnabled = true;

/** Whether ops currently record onto the tape. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording (like `torch.no_grad()`). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/**
 * Attaches a tape node to `out` when recording is on and some input requires a gradient.
 * `backward(g)` returns one gradient per input (null where none flows); shapes must equal the
 * inputs' shapes.
 */
export function record(out: Tensor, name: string, inputs: readonly Tensor[], backward: (g: Tensor) => (Tensor | null)[]): Tensor {
  if (!gradEnabled || !inputs.some((t) => t.requiresGrad)) return out;
  out.requiresGrad = true;
  out.gradFn = { name, inputs, backward } satisfies GradFn;
  return out;
}

/** A leaf copy of `t` that shares storage and records nothing. */
export function detach(t: Tensor): Tensor {
  return new Tensor(t.data, t.shape, t.strides, t.offset);
}

/** Marks `t` as a leaf that accumulates gradients; returns it. */
export function requiresGrad(t: Tensor, flag = true): Tensor {
  t.requiresGrad = flag;
  return t;
}

let postAccumulateHook: ((leaf: Tensor) => void) | null = null;

/**
 * Installs `hook` (null removes it) to be called with each leaf right after its gradient for the
 * current `backward()` is complete — every contribution of this backward has been added to
 * `leaf.grad`, which is not touched again until the next backward. Data-parallel training uses it
 * to start all-reducing a gradient bucket while the rest of backward runs. Returns the previous hook.
 */
export function setPostAccumulateGradHook(hook: ((leaf: Tensor) => void) | null): ((leaf: Tensor) => void) | null {
  const prev = postAccumulateHook;
  postAccumulateHook = hook;
  return prev;
}

/** Reverse topological order of the graph above `root` (root first). */
function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.gradFn?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const c = inputs[i];
      if (c.requiresGrad && !seen.has(c)) {
        seen.add(c);
        stack.push([c, 0]);
      }
    } else {
      order.push(t);
      stack.pop();
    }
  }
  return order.reverse();
}

/**
 * Back-propagates from `root` (a scalar unless `grad` is given) and accumulates into the
 * `.grad` of every reachable leaf with `requiresGrad`.
 */
export function backward(root: Tensor, grad?: Tensor): void {
  if (!root.requiresGrad) throw new TensorError('backward: the tensor does not require grad (nothing to differentiate)');
  if (!grad && root.size !== 1) throw new ShapeError(`backward: a gradient is needed for a non-scalar root of shape [${root.shape}]`);
  const g0 = grad ?? ones(root.shape, root.dtype);
  if (!sameShape(g0.shape, root.shape)) throw new ShapeError(`backward: gradient shape [${g0.shape}] differs from root shape [${root.shape}]`);
  const grads = new Map<Tensor, Tensor>([[root, g0]]);
  const order = topoOrder(root);
  const frees = residentActive() ? new EarlyFrees(order, g0) : null;
  noGrad(() => {
    for (const t of order) {
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      frees?.take(g);
      if (!t.gradFn) {
        const gg = g.dtype === t.dtype ? g : cast(g, t.dtype);
        t.grad = t.grad ? binary(t.grad, gg, 'add') : gg.isContiguous() ? gg : copy(gg);
        residentProtect(t.grad);
        frees?.consumed(g);
        postAccumulateHook?.(t);
        continue;
      }
      const ins = t.gradFn.inputs;
      frees?.beginNode();
      const res = t.gradFn.backward(g);
      frees?.endNode(res);
      for (let i = 0; i < ins.length; i++) {
        const c = ins[i],
          gi = res[i];
        if (!gi || !c.requiresGrad) continue;
        if (!sameShape(gi.shape, c.shape)) {
          throw new ShapeError(`backward of ${t.gradFn.name}: gradient [${gi.shape}] for input ${i} of shape [${c.shape}]`);
        }
        frees?.put(gi); // every new gradient counts before any is freed (they may share a block)
      }
      for (let i = 0; i < ins.length; i++) {
        const c = ins[i],
          gi = res[i];
        if (!gi || !c.requiresGrad) continue;
        const prev = grads.get(c);
        if (!prev) {
          grads.set(c, gi);
          continue;
        }
        const sum = binary(prev, gi, 'add');
        grads.set(c, sum);
        if (frees) {
          frees.put(sum);
          frees.drop(prev);
          frees.drop(gi);
        }
      }
      frees?.consumed(g);
      frees?.nodeDone(t);
    }
  });
}

/**
 * Early frees of a backward inside a resident scope (src/tensor/backends/cpu/resident.ts): a
 * forward tensor's block is freed once the backward of every graph node whose values live in it
 * has run (reverse topological order: its consumers ran before it), and a gradient's block once
 * it was consumed and no pending gradient shares it. What the scope protects (roots, leaves'
 * gradients) is never freed early.
 */
class EarlyFrees {
  /** Graph nodes (with a tape node) not yet processed, per block. */
  private readonly pendingNodes = new Map<number, number>();
  /** Gradients waiting in the engine's map, per block. */
  private readonly pendingGrads = new Map<number, number>();

  constructor(order: readonly Tensor[], g0: Tensor) {
    residentProtectRoots();
    for (const t of order) {
      const b = scopeBlock(t);
      if (b < 0) continue;
      if (t.gradFn) this.pendingNodes.set(b, (this.pendingNodes.get(b) ?? 0) + 1);
      else residentProtect(t); // a leaf's values
    }
    this.put(g0);
  }

  /** A node's backward starts. */
  beginNode(): void {
    residentMark();
  }

  /** A node's backward returned `res`: its temporaries (blocks it made that `res` does not use) are freed. */
  endNode(res: readonly (Tensor | null)[]): void {
    const made = residentSinceMark();
    if (made.length === 0) return;
    const used = new Set(res.map((r) => (r ? scopeBlock(r) : -1)));
    for (const b of made) if (!used.has(b)) this.tryFree(b);
  }

  /** A gradient entered the engine's map. */
  put(g: Tensor): void {
    const b = scopeBlock(g);
    if (b >= 0) this.pendingGrads.set(b, (this.pendingGrads.get(b) ?? 0) + 1);
  }

  /** A gradient left the engine's map. */
  take(g: Tensor): void {
    const b = scopeBlock(g);
    if (b >= 0) this.pendingGrads.set(b, (this.pendingGrads.get(b) ?? 1) - 1);
  }

  /** A gradient in the map was summed into another: it leaves the map, consumed. */
  drop(g: Tensor): void {
    this.take(g);
    this.consumed(g);
  }

  /** A gradient was consumed: free its block when nothing pending shares it. */
  consumed(g: Tensor): void {
    this.tryFree(scopeBlock(g));
  }

  /** Node `t`'s backward ran. */
  nodeDone(t: Tensor): void {
    const b = scopeBlock(t);
    if (b < 0) return;
    this.pendingNodes.set(b, (this.pendingNodes.get(b) ?? 1) - 1);
    this.tryFree(b);
  }

  private tryFree(b: number): void {
    if (b < 0 || (this.pendingGrads.get(b) ?? 0) > 0 || (this.pendingNodes.get(b) ?? 0) > 0) return;
    residentRelease(b);
  }
}
