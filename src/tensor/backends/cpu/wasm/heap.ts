/**
 * Resident tensor storage: blocks of the shared WebAssembly memory handed out as the storage of
 * kernel outputs while a resident scope is open (see ../resident.ts), so the SIMD kernels read
 * their operands and write their results in place instead of copying them in and out.
 *
 * Layout of the memory: `[0, ARENA_BASE)` per-thread scratch, then the heap's blocks, then the
 * per-call scratch arena (runtime.ts `Arena`), which always starts at the heap's top when a
 * kernel opens it. Blocks come in size classes (64-byte multiples below 4 KiB, then four classes
 * per power of two, ≤ 19 % rounding); a freed block goes to its class's free list and is reused
 * as is (no coalescing): the sizes of a training step repeat from one step to the next.
 *
 * A block is never moved or returned to the system; a typed array over it stays valid after the
 * memory grows (shared memory is never detached).
 */

const PAGE = 65536;
/** 4 GiB: the wasm32 limit. */
export const MAX_PAGES = 65536;

/** The size class (bytes) of a request of `bytes`. */
export function sizeClass(bytes: number): number {
  if (bytes <= 4096) return Math.max(64, Math.ceil(bytes / 64) * 64);
  const step = 2 ** (Math.floor(Math.log2(bytes - 1)) - 2);
  return Math.ceil(bytes / step) * step;
}

/** The class a free range of `bytes` can serve (the largest class ≤ bytes), or 0 below 64. */
function floorClass(bytes: number): number {
  if (bytes < 64) return 0;
  if (bytes <= 4096) return Math.floor(bytes / 64) * 64;
  const step = 2 ** (Math.floor(Math.log2(bytes)) - 2);
  return Math.floor(bytes / step) * step;
}

/** Grows `memory` so that it covers `end` bytes; false past the 4 GiB limit. */
export function growTo(memory: WebAssembly.Memory, end: number): boolean {
  const have = memory.buffer.byteLength;
  if (end <= have) return true;
  const pages = Math.ceil((end - have) / PAGE);
  if (have / PAGE + pages > MAX_PAGES) return false;
  // grow with headroom (fewer regrowths), within the limit
  const extra = Math.min(MAX_PAGES - have / PAGE - pages, Math.ceil(pages / 4));
  memory.grow(pages + extra);
  return true;
}

/** The heap of resident blocks over one shared memory. */
export class WasmHeap {
  /** End of the highest block (the arena starts here). */
  top: number;
  /** Free block addresses by class. */
  private readonly free = new Map<number, number[]>();
  /** Class of every block handed out and not freed, by address. */
  private readonly live = new Map<number, number>();
  /** Bytes in live blocks (diagnostics). */
  liveBytes = 0;

  constructor(
    private readonly memory: WebAssembly.Memory,
    base: number,
    /** End of the arena's open scratch, or 0 when no kernel holds it (see runtime.ts). */
    private readonly scratchEnd: () => number,
  ) {
    this.top = base;
  }

  /** A block of at least `bytes` (64-byte aligned address), or -1 when the memory is full. */
  alloc(bytes: number): number {
    let cls = sizeClass(bytes);
    let at = this.free.get(cls)?.pop();
    // a free block up to two classes larger (≤ 1.42× the request) before new memory
    for (let up = 0, c = cls; at === undefined && up < 2; up++) {
      c = sizeClass(c + 1);
      at = this.free.get(c)?.pop();
      if (at !== undefined) cls = c;
    }
    if (at === undefined) {
      // a kernel that still reads its scratch must not get it back as a block: start above it
      const open = this.scratchEnd();
      if (open > this.top) {
        this.addFree(this.top, open - this.top);
        this.top = open;
      }
      if (!growTo(this.memory, this.top + cls)) return -1;
      at = this.top;
      this.top += cls;
    }
    this.live.set(at, cls);
    this.liveBytes += cls;
    return at;
  }

  /** Returns the block at `addr` to its free list. */
  release(addr: number): void {
    const cls = this.live.get(addr);
    if (cls === undefined) throw new Error(`wasm heap: no live block at ${addr}`);
    this.live.delete(addr);
    this.liveBytes -= cls;
    this.pushFree(cls, addr);
  }

  /** Bytes of the live block at `addr` (0 when none starts there). */
  sizeOf(addr: number): number {
    return this.live.get(addr) ?? 0;
  }

  /** Whether a live block starts at `addr`. */
  isLive(addr: number): boolean {
    return this.live.has(addr);
  }

  /** The start of the live block containing byte `addr`, or -1. */
  blockOf(addr: number): number {
    if (this.live.has(addr)) return addr;
    for (const [a, cls] of this.live) if (addr >= a && addr < a + cls) return a;
    return -1;
  }

  /** Addresses of the live blocks. */
  liveBlocks(): IterableIterator<number> {
    return this.live.keys();
  }

  /** Splits a free range into blocks of the classes it can serve. */
  private addFree(at: number, bytes: number): void {
    while (bytes >= 64) {
      const cls = floorClass(bytes);
      this.pushFree(cls, at);
      at += cls;
      bytes -= cls;
    }
  }

  private pushFree(cls: number, addr: number): void {
    let list = this.free.get(cls);
    if (!list) this.free.set(cls, (list = []));
    list.push(addr);
  }
}
