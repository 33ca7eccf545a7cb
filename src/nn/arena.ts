// A group of kernel buffers allocated together and freed together (one layer's activation cache,
// a forward pass's scratch). Buffers come from Kernels.allocF32, so they live in the backend's
// memory and the wasm kernels read them in place.
// Not here: any reuse policy (callers keep an arena as long as its shapes fit).
import type { Kernels } from '../kernels/kernels.js';

export class Arena {
  private readonly buffers: Float32Array[] = [];
  /** Floats allocated so far (what a group of buffers costs, e.g. one layer's cache). */
  floats = 0;

  constructor(private readonly kernels: Kernels) {}

  /** A zero-filled buffer of n floats (at least one element, so views are never empty). */
  f32(n: number): Float32Array {
    const buf = this.kernels.allocF32(Math.max(1, n));
    this.buffers.push(buf);
    this.floats += buf.length;
    return buf.length === n ? buf : buf.subarray(0, n);
  }

  /** Free every buffer of this arena. Idempotent. */
  release(): void {
    for (const buf of this.buffers) this.kernels.free(buf);
    this.buffers.length = 0;
  }
}
