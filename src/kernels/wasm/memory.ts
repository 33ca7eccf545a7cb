// The wasm backend's memory: one shared WebAssembly.Memory (imported by the kernel module in every
// thread) and a size-class free-list allocator over the bytes above the module's static data.
//
// - Blocks are rounded up to size classes (64-byte multiples up to 4 KiB, then 8 classes per power
//   of two: at most 12.5% waste) and a freed block goes to its class's free list, so a training
//   loop that allocates the same shapes every step reuses the same blocks and memory stays flat.
//   Freeing the topmost block lowers the bump pointer instead, past every free block below it.
// - Every block is zero-filled when handed out and 64-byte aligned (SIMD loads, cache lines).
// - Growth: memory.grow; for a SHARED memory every view made before the growth stays valid (the
//   bytes never move), but `memory.buffer` is a new SharedArrayBuffer object after each growth.
//   `owns()` therefore remembers every buffer object the memory has exposed, so a Float32Array
//   made at any time can be recognised and passed to kernels by byteOffset, without a copy.
// - Arrays not in this memory (ordinary JS arrays) are staged: copied in, computed, copied out.
// Not here: what lives in the blocks (backend.ts, q4cache.ts), threads (pool.ts).

import { ShapeError, UnsupportedError } from '../../errors.js';
import type { WasmMemory } from './wasm-api.js';

const PAGE = 65536;
/** wasm32: 65536 pages = 4 GiB, the most one memory can address. */
export const MAX_PAGES = 65536;
const ALIGN = 64;

function sizeClass(bytes: number): number {
  const b = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  if (b <= 4096) return b;
  const step = 2 ** (Math.floor(Math.log2(b)) - 3);
  return Math.ceil(b / step) * step;
}

export class WasmHeap {
  readonly memory: WasmMemory;
  private top: number;
  private readonly base: number;
  private readonly freeLists = new Map<number, number[]>();
  /** Free (listed) block end offset -> its start, to give blocks back to the top when it drops. */
  private readonly freeByEnd = new Map<number, number>();
  /** Live block offset -> its size class in bytes. */
  private readonly live = new Map<number, number>();
  private readonly buffers = new WeakSet<ArrayBufferLike>();
  private current: ArrayBufferLike;

  /**
   * zero(off, bytes): the kernel module's zeroBytes (wasm memory.fill, ~44 GB/s warm here vs
   * ~12-17 for a Float64Array fill of the shared buffer).
   */
  constructor(memory: WasmMemory, heapBase: number, private readonly zero: (off: number, bytes: number) => void) {
    this.memory = memory;
    this.base = Math.ceil(heapBase / ALIGN) * ALIGN;
    this.top = this.base;
    this.current = memory.buffer;
    this.buffers.add(this.current);
  }

  /** Bytes in use by the allocator (bump pointer minus base): the figure the leak test watches. */
  get usedBytes(): number {
    return this.top - this.base;
  }

  get liveBlocks(): number {
    return this.live.size;
  }

  /** The current buffer of the memory (re-read after every growth). */
  get buffer(): ArrayBufferLike {
    return this.refresh();
  }

  private refresh(): ArrayBufferLike {
    const b = this.memory.buffer;
    if (b !== this.current) {
      this.current = b;
      this.buffers.add(b);
    }
    return b;
  }

  /** A zero-filled block of at least `bytes` bytes; returns its byte offset. */
  alloc(bytes: number): number {
    if (!Number.isInteger(bytes) || bytes < 0) {
      throw new ShapeError('wasm alloc: size is not a non-negative integer', { expected: 'integer >= 0', got: String(bytes) });
    }
    const size = sizeClass(bytes);
    const list = this.freeLists.get(size);
    let off: number;
    if (list !== undefined && list.length > 0) {
      off = list.pop()!;
      this.freeByEnd.delete(off + size);
    } else {
      off = this.top;
      this.ensure(off + size);
      this.top = off + size;
    }
    this.live.set(off, size);
    this.zero(off, size);
    return off;
  }

  /** Returns a block from alloc. Throws on an offset that is not a live block. */
  free(off: number): void {
    const size = this.live.get(off);
    if (size === undefined) {
      throw new ShapeError('wasm free: not a live block of this backend (freed twice, or a sub-view?)', { expected: 'a buffer from allocF32', got: `offset ${off}` });
    }
    this.live.delete(off);
    if (off + size !== this.top) {
      let list = this.freeLists.get(size);
      if (list === undefined) this.freeLists.set(size, (list = []));
      list.push(off);
      this.freeByEnd.set(off + size, off);
      return;
    }
    // The top block: lower the bump pointer, then past any free blocks now at the top.
    this.top = off;
    for (let below = this.freeByEnd.get(this.top); below !== undefined; below = this.freeByEnd.get(this.top)) {
      const list = this.freeLists.get(this.top - below)!;
      list.splice(list.lastIndexOf(below), 1);
      this.freeByEnd.delete(this.top);
      this.top = below;
    }
  }

  /** True when `view` lies in this memory (any buffer object it has exposed). */
  owns(view: ArrayBufferView): boolean {
    if (this.buffers.has(view.buffer)) return true;
    // A view made from memory.buffer read by someone else after a growth.
    this.refresh();
    return this.buffers.has(view.buffer);
  }

  f32(off: number, n: number): Float32Array {
    return new Float32Array(this.buffer, off, n);
  }

  u8(off: number, n: number): Uint8Array {
    return new Uint8Array(this.buffer, off, n);
  }

  private ensure(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    const pages = Math.ceil((end - have) / PAGE);
    if (have / PAGE + pages > MAX_PAGES) {
      throw new UnsupportedError('wasm memory exhausted: one WebAssembly memory holds at most 4 GiB', {
        expected: `<= 4 GiB`, got: `${((end / 2 ** 30)).toFixed(2)} GiB`,
        hint: 'free buffers that are no longer needed, lower the batch or sequence length, or use --kernels ref',
      });
    }
    this.memory.grow(pages);
    this.refresh();
  }
}

/**
 * Temporary copies of arrays that are not in the heap, for one kernel call: `in` copies an input
 * in, `out` reserves an output (copied in too when the kernel accumulates into it), `finish`
 * copies outputs back and frees everything. Heap-resident arrays pass through by offset.
 */
export class Staging {
  private readonly temps: number[] = [];
  private readonly outs: [ArrayBufferView & ArrayLike<number>, number, number][] = [];

  constructor(private readonly heap: WasmHeap) {}

  in(arr: Float32Array | Uint8Array | Int32Array, n: number): number {
    if (this.heap.owns(arr)) return arr.byteOffset;
    const bytes = n * arr.BYTES_PER_ELEMENT;
    const off = this.heap.alloc(bytes);
    this.temps.push(off);
    new Uint8Array(this.heap.buffer, off, bytes).set(new Uint8Array(arr.buffer, arr.byteOffset, bytes));
    return off;
  }

  out(arr: Float32Array | Uint8Array, n: number, copyIn: boolean): number {
    if (this.heap.owns(arr)) return arr.byteOffset;
    const off = copyIn ? this.in(arr, n) : this.reserve(n * arr.BYTES_PER_ELEMENT);
    this.outs.push([arr, off, n * arr.BYTES_PER_ELEMENT]);
    return off;
  }

  reserve(bytes: number): number {
    const off = this.heap.alloc(bytes);
    this.temps.push(off);
    return off;
  }

  finish(): void {
    for (const [arr, off, bytes] of this.outs) new Uint8Array(arr.buffer, arr.byteOffset, bytes).set(new Uint8Array(this.heap.buffer, off, bytes));
    for (let i = this.temps.length - 1; i >= 0; i--) this.heap.free(this.temps[i]);
    this.temps.length = 0;
    this.outs.length = 0;
  }
}
