// The start-up choice of the wasm build (src/kernels/wasm/module.ts, dot-probe.ts): relaxed SIMD
// switched on by flag only where the runtime needs it (no "unrecognized flag" on newer Node), the
// fused int8 dot taken only where the probe finds it exact (never on Node 20, whose baseline tier
// drops the accumulator) and faster than the split form, the choice named in Kernels.description,
// and the fused build giving the same bits as the two-step build on the int8 GEMM and GEMV, cold
// and after tier-up.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { createKernels } from '../../src/kernels/index.js';
import { fusedDotExact, MIN_SPEEDUP } from '../../src/kernels/wasm/dot-probe.js';
import { fusedDotHere, loadKernelModule } from '../../src/kernels/wasm/module.js';
import { quantizeTensor } from '../../src/quant/quantized-tensor.js';
import { randomF32 } from '../helpers/random.js';

const v8Major = Number(process.versions.v8.split('.')[0]);
/** Node 20 ships V8 11.3, whose Liftoff computes i32x4.relaxed_dot_i8x16_i7x16_add_s wrongly. */
const NODE20_V8 = 11;

describe('wasm build choice', () => {
  test('the fused int8 dot is taken exactly where the probe finds it exact and faster, never on Node 20', async () => {
    const mod = loadKernelModule();
    assert.ok('variant' in mod, 'wasm kernels load here');
    const probe = fusedDotHere();
    if (v8Major <= NODE20_V8) {
      assert.equal(fusedDotExact(), false, `V8 ${process.versions.v8}`);
      const named = loadKernelModule('relaxed-fused');
      assert.ok('variant' in named && named.variant !== 'relaxed-fused', 'not even when asked for by name');
    }
    assert.equal(probe.exact, fusedDotExact(), 'the optimized loop agrees with the cold check');
    if (probe.exact) assert.ok(probe.speedup !== null && probe.speedup > 0, 'timed wherever it is exact');
    assert.equal(probe.use, probe.exact && probe.speedup !== null && probe.speedup >= MIN_SPEEDUP);
    assert.equal(mod.variant === 'relaxed-fused', probe.use);
    const k = await createKernels({ backend: 'wasm', threads: 1 });
    try {
      assert.match(k.description, new RegExp(`^wasm ${mod.variant} \\(`));
      if (mod.variant !== 'simd') assert.match(k.description, probe.exact ? /fused int8 dot \d+\.\d\dx the split form here/ : /fused int8 dot inexact here/);
      assert.match(k.description, /1 thread, f32 activations$/);
    } finally {
      await k.dispose();
    }
  });

  test('a process that starts the kernels prints nothing on stderr', () => {
    const here = fileURLToPath(import.meta.url);
    const fromSource = here.endsWith('.ts');
    const entry = new URL(fromSource ? '../../src/kernels/index.ts' : '../../src/kernels/index.js', import.meta.url).href;
    const script = `const { createKernels } = await import(${JSON.stringify(entry)});
      const k = await createKernels({ backend: 'wasm', threads: 2, int8Activations: true });
      console.log(k.description);
      await k.dispose();`;
    const r = spawnSync(process.execPath, [...(fromSource ? ['--import', 'tsx'] : []), '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /^wasm (relaxed-fused|relaxed|simd) /);
  });

  test('fused and two-step builds give the same bits on the int8 GEMM and GEMV, cold and warm', { skip: fusedDotExact() ? false : 'the fused dot is not exact on this runtime' }, async () => {
    const fused = await createKernels({ backend: 'wasm', threads: 1, wasmVariant: 'relaxed-fused', int8Activations: true });
    const twoStep = await createKernels({ backend: 'wasm', threads: 1, wasmVariant: 'relaxed', int8Activations: true });
    try {
      assert.match(fused.description, /^wasm relaxed-fused /);
      assert.match(twoStep.description, /^wasm relaxed /);
      const N = 45, K = 256;
      const w = quantizeTensor(randomF32(N * K, 3), [N, K], { quantType: 'nf4', blockSize: 64, doubleQuant: true, strategy: 'blockwise', zeroPoint: false });
      for (const M of [1, 7, 32]) {
        const x = randomF32(M * K, 10 + M);
        const want = new Float32Array(M * N);
        twoStep.matmulXWtQ4(want, x, w, M, false);
        const got = new Float32Array(M * N);
        for (let rep = 0; rep < 200; rep++) {
          fused.matmulXWtQ4(got, x, w, M, false);
          if (rep === 0 || rep === 199) assert.deepEqual(got, want, `M=${M}, call ${rep + 1}`);
        }
      }
    } finally {
      await fused.dispose();
      await twoStep.dispose();
    }
  });
});
