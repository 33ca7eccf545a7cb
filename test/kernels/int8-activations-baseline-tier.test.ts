// The int8-activation kernel in V8's baseline tier (Liftoff) only: Node 20's Liftoff computed the
// fused i32x4.relaxed_dot_i8x16_i7x16_add_s wrongly (the accumulator dropped), so results depended
// on whether a kernel had tiered up yet. The two-step build (split form) is checked everywhere, the
// fused build wherever the start-up probe takes it. Tier-up is turned off for this process before
// the module is compiled (each test file runs in its own process).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import v8 from 'node:v8';
import { createKernels } from '../../src/kernels/index.js';
import { fusedDotExact } from '../../src/kernels/wasm/dot-probe.js';
import type { WasmVariant } from '../../src/kernels/wasm/module.js';
import { matmulXWtQ4Int8Ref } from '../../src/kernels/ref/matmul-int8.js';
import { quantizeTensor } from '../../src/quant/quantized-tensor.js';
import { rng } from '../helpers/random.js';

v8.setFlagsFromString('--no-wasm-tier-up');

const variants: WasmVariant[] = fusedDotExact() ? ['relaxed', 'relaxed-fused'] : ['relaxed'];
for (const variant of variants) test(`int8-activation matmulXWtQ4 equals its twin in the baseline tier (${variant} build, 3-row tiles and a 1-row tail)`, async () => {
  const k = await createKernels({ backend: 'wasm', threads: 1, wasmVariant: variant, int8Activations: true });
  assert.match(k.description, new RegExp(`^wasm ${variant} `));
  try {
    const next = rng(11);
    const rand = (n: number): Float32Array => Float32Array.from({ length: n }, () => 2 * next() - 1);
    const N = 37, K = 128;
    const w = quantizeTensor(rand(N * K), [N, K], { quantType: 'nf4', blockSize: 64, doubleQuant: true, strategy: 'blockwise', zeroPoint: false });
    for (const M of [9, 13]) {
      const x = rand(M * K);
      const want = new Float32Array(M * N);
      matmulXWtQ4Int8Ref(want, x, w, M, false);
      const got = new Float32Array(M * N);
      k.matmulXWtQ4(got, x, w, M, false);
      for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-4 * (1 + Math.abs(want[i])), `M=${M} element ${i}: ${got[i]} vs ${want[i]}`);
    }
  } finally {
    await k.dispose();
  }
});
