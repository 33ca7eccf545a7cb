// Resident copies of 4-bit weights in wasm memory, for the kernels that decode them in place.
//
// Design (ARCHITECTURE.md §2, "4 GiB per wasm memory"): a Quant4Weight keeps its data in ordinary
// ArrayBuffers owned by the quant/model layers, so a model's quantized weights may exceed the 4 GiB
// one wasm32 memory can address (7B NF4 ~3.9 GB, 13B ~7 GB). The kernels upload a weight on first
// use into one block of the shared memory (descriptor + codebook byte planes + packed codes + scales
// [+ zeros]) and keep it in a WeakMap keyed by the weight object, under a byte budget with LRU
// eviction: a model larger than the budget streams layer by layer (each upload runs at memcpy speed,
// ~GB/s), a model within it stays resident. A weight whose object is garbage collected has its block
// freed (FinalizationRegistry). Weights are treated as immutable once used: to change one, make a
// new Quant4Weight object (or call forget()). Packed codes that already live in this memory (a
// model of up to 1 GiB of codes loaded onto these kernels, model/build.ts) are read in place: the
// block then holds everything but them, and the caller keeps them alive.
// Not here: decoding arithmetic (assembly/q4.ts), validation of shapes (ref/check.ts checkQuant4).

import { ShapeError } from '../../errors.js';
import type { Quant4Weight } from '../../quant/types.js';
import { quant4BlockCount } from '../../quant/types.js';
import { doubleQuantScale } from '../../quant/blockwise.js';
import type { WasmHeap } from './memory.js';

/** Descriptor layout, mirrored from assembly/q4desc.ts (u32 fields, byte offsets). */
const DESC = { packed: 0, codebook: 4, rows: 8, cols: 12, blockSize: 16, blocksPerRow: 20, absmax: 24, zeros: 28, planes: 32 } as const;
const DESC_BYTES = 64;

interface Entry {
  off: number;
  bytes: number;
  desc: number;
  alive: boolean;
}

const align16 = (n: number): number => Math.ceil(n / 16) * 16;

export class Q4Cache {
  private readonly entries = new WeakMap<Quant4Weight, Entry>();
  /** Oldest first (a Set iterates in insertion order; a hit re-inserts). */
  private readonly lru = new Set<Entry>();
  private resident = 0;
  private readonly registry = new FinalizationRegistry<Entry>((e) => this.drop(e));

  constructor(
    private readonly heap: WasmHeap,
    /** Byte budget of resident weights; the weight in use is always admitted, even alone above it. */
    private budget: number,
  ) {}

  get budgetBytes(): number {
    return this.budget;
  }

  /** A new budget; resident weights beyond it are evicted, oldest first. */
  setBudget(bytes: number): void {
    this.budget = bytes;
    for (const old of this.lru) {
      if (this.resident <= bytes) break;
      this.drop(old);
    }
  }

  get residentBytes(): number {
    return this.resident;
  }

  /** Byte address of the weight's descriptor, uploading it (and evicting others) if needed. */
  descriptor(w: Quant4Weight, kernel: string): number {
    const hit = this.entries.get(w);
    if (hit !== undefined && hit.alive) {
      this.lru.delete(hit);
      this.lru.add(hit);
      return hit.desc;
    }
    checkLayout(kernel, w);
    const e = this.upload(w);
    this.entries.set(w, e);
    this.registry.register(w, e, e);
    return e.desc;
  }

  /** True while descriptor `desc` (from descriptor(w)) is still w's resident copy (no upload, no LRU touch). */
  isResident(w: Quant4Weight, desc: number): boolean {
    const e = this.entries.get(w);
    return e !== undefined && e.alive && e.desc === desc;
  }

  /** Frees the resident copy of w, if any (after mutating w in place). */
  forget(w: Quant4Weight): void {
    const e = this.entries.get(w);
    if (e !== undefined) {
      this.drop(e);
      this.entries.delete(w);
      this.registry.unregister(e);
    }
  }

  private drop(e: Entry): void {
    if (!e.alive) return;
    e.alive = false;
    this.lru.delete(e);
    this.resident -= e.bytes;
    this.heap.free(e.off);
  }

  private upload(w: Quant4Weight): Entry {
    const nBlocks = quant4BlockCount(w.rows, w.cols, w.blockSize, w.blocksPerRow);
    const packedBytes = Math.ceil((w.rows * w.cols) / 2);
    // Codes already in this memory (a model loaded onto these kernels: model/build.ts) are read in
    // place; the caller keeps them alive (the weight is immutable and outlives its use here).
    const packedInPlace = this.heap.owns(w.packed);
    // Section sizes in order; each starts 16-byte aligned.
    const sections = {
      desc: DESC_BYTES, planes: 64, codebook: 64, packed: packedInPlace ? 0 : align16(packedBytes),
      absmax: align16(nBlocks * 4),
      zeros: w.zeros !== null ? align16(nBlocks * 4) : 0,
    };
    const total = Object.values(sections).reduce((a, b) => a + b, 0);
    for (const old of this.lru) {
      if (this.resident + total <= this.budget) break;
      this.drop(old);
    }
    const off = this.heap.alloc(total);
    const at: Record<keyof typeof sections, number> = { ...sections };
    let p = off;
    for (const k of Object.keys(sections) as (keyof typeof sections)[]) {
      at[k] = sections[k] === 0 ? 0 : p;
      p += sections[k];
    }
    const buf = this.heap.buffer;
    const u8 = new Uint8Array(buf);
    const f32 = (o: number, n: number): Float32Array => new Float32Array(buf, o, n);
    f32(at.codebook, 16).set(w.codebook.subarray(0, 16));
    // Byte planes of the codebook for the swizzle decoder: plane p holds byte p of each value.
    const cbBytes = new Uint8Array(f32(at.codebook, 16).slice().buffer);
    for (let plane = 0; plane < 4; plane++) for (let q = 0; q < 16; q++) u8[at.planes + plane * 16 + q] = cbBytes[q * 4 + plane];
    if (!packedInPlace) u8.set(w.packed.subarray(0, packedBytes), at.packed);
    // Double-quantized scales are decoded once here (the same f32 values quant/blockwise.ts gives):
    // 3 more bytes per block than the 1-byte codes, and no decode chain in every kernel's block loop.
    const scales = f32(at.absmax, nBlocks);
    if (w.absmax !== null) scales.set(w.absmax.subarray(0, nBlocks));
    else for (let b = 0; b < nBlocks; b++) scales[b] = doubleQuantScale(w.dq!, b);
    if (w.zeros !== null) f32(at.zeros, nBlocks).set(w.zeros.subarray(0, nBlocks));
    const d = new DataView(buf, at.desc, DESC_BYTES);
    const u32 = (field: keyof typeof DESC, v: number): void => d.setUint32(DESC[field], v, true);
    u32('packed', packedInPlace ? w.packed.byteOffset : at.packed);
    u32('codebook', at.codebook);
    u32('rows', w.rows);
    u32('cols', w.cols);
    u32('blockSize', w.blockSize);
    u32('blocksPerRow', w.blocksPerRow);
    u32('absmax', at.absmax);
    u32('zeros', at.zeros);
    u32('planes', at.planes);
    const e: Entry = { off, bytes: total, desc: at.desc, alive: true };
    this.lru.add(e);
    this.resident += total;
    return e;
  }
}

/** What the wasm decoder needs beyond checkQuant4: positive block sizes, a consistent per-row layout. */
function checkLayout(kernel: string, w: Quant4Weight): void {
  if (w.blockSize < 1) throw new ShapeError(`${kernel}: w.blockSize must be positive`, { field: 'w.blockSize', expected: '>= 1', got: String(w.blockSize) });
  if (w.blocksPerRow > 0 && w.blocksPerRow !== Math.ceil(w.cols / w.blockSize)) {
    throw new ShapeError(`${kernel}: w.blocksPerRow does not match cols / blockSize`, { field: 'w.blocksPerRow', expected: String(Math.ceil(w.cols / w.blockSize)), got: String(w.blocksPerRow) });
  }
  if (w.dq !== null && w.dq.nestedBlockSize < 1) {
    throw new ShapeError(`${kernel}: w.dq.nestedBlockSize must be positive`, { field: 'w.dq.nestedBlockSize', expected: '>= 1', got: String(w.dq.nestedBlockSize) });
  }
}
