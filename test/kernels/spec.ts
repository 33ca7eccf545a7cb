// The kernel spec suite: one set of specs every Kernels backend must pass (ref, wasm at one and
// at several threads). Each kernel's forward is checked against naive f64 formulas, each backward
// against central finite differences in f64, on random shapes that are not multiples of the SIMD
// width or block size, zero sizes and single rows, with NaN propagation and accumulate-vs-
// overwrite semantics; fast backends are also compared with the reference. Tolerances are named
// in spec-context.ts. Usage, in a test file:
//   defineKernelSpecs('wasm', () => createKernels({ backend: 'wasm' }));

import { after, before, describe } from 'node:test';
import type { Kernels } from '../../src/kernels/kernels.js';
import { newContext } from './spec-context.js';
import { fastSpecs } from './spec-fast.js';
import { layerSpecs } from './spec-layers.js';
import { linearSpecs } from './spec-linear.js';
import { lossOptimSpecs } from './spec-loss-optim.js';

export function defineKernelSpecs(name: string, makeKernels: () => Kernels | Promise<Kernels>): void {
  const ctx = newContext(name);
  describe(`kernel specs: ${name}`, () => {
    before(async () => {
      ctx.k = await makeKernels();
    });
    after(async () => {
      await ctx.k?.dispose();
    });
    linearSpecs(ctx);
    layerSpecs(ctx);
    lossOptimSpecs(ctx);
    fastSpecs(ctx);
  });
}
