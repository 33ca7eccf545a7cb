// Gradient checkpointing only as far as memory requires: keeping every layer's forward cache, a
// few of them, or none (recomputing all but the last) gives the same loss and the same gradient
// bits, with dropout on, on both kernel backends.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { demoModelPath } from '../../src/demo.js';
import { createKernels } from '../../src/kernels/index.js';
import { RefKernels } from '../../src/kernels/ref/index.js';
import type { Kernels } from '../../src/kernels/kernels.js';
import { loadModel } from '../../src/model/load.js';
import { attachNewLora, loraParams } from '../../src/train/lora.js';

async function gradsWith(kernels: Kernels, budgets: number[]): Promise<{ loss: number; grads: Float32Array[] }[]> {
  const model = await loadModel(demoModelPath(), { kernels });
  try {
    attachNewLora(model, { r: 8, alpha: 16, dropout: 0.1, targetModules: 'all-linear', rslora: false, init: 'gaussian' }, 3);
    const params = loraParams(model);
    // B = 0 at init gives dA = 0: give B values so that every gradient is exercised.
    for (const p of params) if (p.name.includes('lora_B')) for (let i = 0; i < p.data.length; i++) p.data[i] = Math.sin(i) * 0.01;
    const ids = Int32Array.from({ length: 2 * 48 }, (_, i) => (i * 37 + 5) % 512);
    return budgets.map((activationBudgetBytes) => {
      for (const p of params) p.grad.fill(0);
      const loss = model.forwardBackward(ids, 2, 48, undefined, { dropoutSeed: 11, activationBudgetBytes }).loss;
      return { loss, grads: params.map((p) => Float32Array.from(p.grad)) };
    });
  } finally {
    model.dispose();
  }
}

for (const backend of ['ref', 'wasm'] as const) {
  test(`${backend}: kept, partly kept and recomputed layer caches give the same gradient bits`, async () => {
    const kernels = backend === 'ref' ? new RefKernels() : await createKernels({ backend: 'wasm', threads: 2 });
    try {
      // 0: recompute; ~1.5 layers' worth: one kept; 1 GiB: all kept.
      const [none, one, all] = await gradsWith(kernels, [0, 1.5 * 2 * 48 * 4 * 3000, 2 ** 30]);
      for (const other of [one!, all!]) {
        assert.equal(other.loss, none!.loss);
        other.grads.forEach((g, i) => assert.deepEqual(g, none!.grads[i]));
      }
      assert.ok(none!.grads.some((g) => g.some((x) => x !== 0)));
    } finally {
      await kernels.dispose();
    }
  });
}
