/**
 * Resident tensor storage: blocks of the shared WebAssembly memory handed out as the storage of
 * kernel outputs while a resident scope is open (see ../resident.ts), so the SIMD kernels read
 * their operands and write their results in place instead of copying them in and out.
 *
 * Layout of the memory: `[0, ARENA_BASE)` per-thread scratch, then the heap's blocks, then the
 * per-call scratch arena (runtime.ts `Arena`), which always starts at the heap's top when a
 * kernel opens it. Blocks are 64-byte multiples; free blocks are merged with free neighbours and
 * found first-fit by size bins.
 *
 * A block is never moved or returned to the system; a typed array over it stays valid after the
 * memory grows (shared memory is never detached).
 */

const PAGE = 65536;
/** 4 GiB: the wasm32 limit. */
export const MAX_PAGES = 65536;

/** ⌊log2 n⌋ of an integer 1 ≤ n < 2³². */
function log2i(n: number): number {
  return 31 - Math.clz32(n);
}

/** The bin of a free block of `bytes` (64-byte multiples below 4 KiB, then four bins per power of two). */
function binOf(bytes: number): number {
  if (bytes <= 4096) return bytes;
  const step = 1 << (log2i(bytes) - 2); // (a power of two ≤ 2²⁹: bytes < 2³²)
  return bytes - (bytes % step);
}

/** Index of the first of the ascending `keys` that is ≥ `v` (keys.length when none). */
function lowerBound(keys: readonly number[], v: number): number {
  let a = 0,
    b = keys.length;
  while (a < b) {
    const m = (a + b) >>> 1;
    if (keys[m] < v) a = m + 1;
    else b = m;
  }
  return a;
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

/**
 * The heap of resident blocks over one shared memory: first fit within size bins, splitting,
 * and coalescing of free neighbours (a free range that reaches the top lowers the top, so the
 * arena above reuses it).
 */
export class WasmHeap {
  /** End of the highest live or free block (the arena starts here). */
  top: number;
  /** Size of every live block, by address. */
  private readonly live = new Map<number, number>();
  /** Free blocks: size by start, start by end, starts by bin (sets of emptied bins are kept). */
  private readonly freeAt = new Map<number, number>();
  private readonly freeEnd = new Map<number, number>();
  private readonly bins = new Map<number, Set<number>>();
  /** Bins that hold free blocks (non-empty sets), ascending (searched from the request's bin up). */
  private binKeys: number[] = [];
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
    const need = Math.max(64, Math.ceil(bytes / 64) * 64);
    let at = this.takeFree(need);
    if (at < 0) {
      // a kernel that still reads its scratch must not get it back as a block: start above it
      const open = this.scratchEnd();
      if (open > this.top) {
        this.addFree(this.top, open - this.top);
        this.top = open;
      }
      if (!growTo(this.memory, this.top + need)) return -1;
      at = this.top;
      this.top += need;
    }
    this.live.set(at, need);
    this.liveBytes += need;
    return at;
  }

  /**
   * A block of `bytes` (64-byte multiple) exactly at the top — over the arena's scratch, which a
   * deferred job still reads (runtime.ts `Arena.hold`) — or -1 when the memory is full.
   */
  reserveTop(bytes: number): number {
    const need = Math.max(64, Math.ceil(bytes / 64) * 64);
    if (!growTo(this.memory, this.top + need)) return -1;
    const at = this.top;
    this.top += need;
    this.live.set(at, need);
    this.liveBytes += need;
    return at;
  }

  /** Returns the block at `addr` to the free blocks (merged with free neighbours). */
  release(addr: number): void {
    const size = this.live.get(addr);
    if (size === undefined) throw new Error(`wasm heap: no live block at ${addr}`);
    this.live.delete(addr);
    this.liveBytes -= size;
    let start = addr,
      end = addr + size;
    const left = this.freeEnd.get(start);
    if (left !== undefined) {
      this.removeFree(left);
      start = left;
    }
    const right = this.freeAt.get(end);
    if (right !== undefined) {
      this.removeFree(end);
      end += right;
    }
    if (end === this.top) this.top = start;
    else this.addFree(start, end - start);
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
    for (const a of this.live.keys()) if (addr >= a && addr < a + this.live.get(a)!) return a; // keys(): no entry arrays
    return -1;
  }

  /** Addresses of the live blocks. */
  liveBlocks(): IterableIterator<number> {
    return this.live.keys();
  }

  /** A free block of at least `need` bytes, split to `need` (the rest stays free), or -1. */
  private takeFree(need: number): number {
    // bins below need's bin hold only smaller blocks (a bin spans [bin, next bin) ≤ need's bin)
    const keys = this.binKeys;
    for (let k = lowerBound(keys, binOf(need)); k < keys.length; k++) {
      for (const at of this.bins.get(keys[k])!) {
        const size = this.freeAt.get(at)!;
        if (size < need) continue;
        this.removeFree(at);
        if (size > need) this.addFree(at + need, size - need);
        return at;
      }
    }
    return -1;
  }

  private addFree(at: number, size: number): void {
    this.freeAt.set(at, size);
    this.freeEnd.set(at + size, at);
    const bin = binOf(size);
    let set = this.bins.get(bin);
    if (!set) this.bins.set(bin, (set = new Set()));
    if (set.size === 0) this.binKeys.splice(lowerBound(this.binKeys, bin), 0, bin);
    set.add(at);
  }

  private removeFree(at: number): void {
    const size = this.freeAt.get(at)!;
    this.freeAt.delete(at);
    this.freeEnd.delete(at + size);
    const bin = binOf(size);
    const set = this.bins.get(bin)!;
    set.delete(at);
    // an emptied bin leaves the search list; its set stays for reuse (no garbage per block)
    if (set.size === 0) this.binKeys.splice(lowerBound(this.binKeys, bin), 1);
  }
}
