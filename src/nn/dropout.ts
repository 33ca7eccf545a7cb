// Inverted dropout on the LoRA input (PEFT: `lora_B(lora_A(dropout(x))) · scale`, FORMATS.md §10):
// an element is kept with probability 1 − p and then scaled by 1/(1 − p), as torch.nn.Dropout in
// training mode. The mask is a pure function of (key, element index) (a murmur3 finalizer over a
// Weyl sequence), so the forward recomputed by gradient checkpointing and the backward regenerate
// exactly the mask of the first forward without storing it, and a run is reproducible from its
// seed. The stream differs from torch's, so masks (not their statistics) differ from PyTorch's.
// Not here: choosing keys (model/llama.ts derives one per projection and training step).

/** 32-bit avalanche of a key and an index. */
function mix(key: number, i: number): number {
  let h = (key + Math.imul(i, 0x9e3779b9)) | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Elements whose hash is below this are dropped (p of the 2³² values). */
function dropThreshold(p: number): number {
  return Math.floor(p * 4294967296);
}

/** out[i] = x[i] / (1 − p) where kept, else 0 (i < n). */
export function dropoutForward(out: Float32Array, x: Float32Array, n: number, p: number, key: number): void {
  const threshold = dropThreshold(p);
  const s = Math.fround(1 / (1 - p));
  for (let i = 0; i < n; i++) out[i] = mix(key, i) < threshold ? 0 : x[i] * s;
}

/** dx[i] += g[i] / (1 − p) where the forward with the same key kept element i. */
export function dropoutBackwardAdd(dx: Float32Array, g: Float32Array, n: number, p: number, key: number): void {
  const threshold = dropThreshold(p);
  const s = Math.fround(1 / (1 - p));
  for (let i = 0; i < n; i++) if (mix(key, i) >= threshold) dx[i] += g[i] * s;
}

/** A key for one projection in one training forward, from a run-level seed. */
export function dropoutKey(seed: number, projection: number): number {
  return mix(mix(seed | 0, 0x51ed27) ^ (Math.floor(seed / 4294967296) | 0), projection) | 0;
}
