// The wasm backend's runtime: the allocator (zero-fill, reuse, errors, flat memory over 10,000
// allocate/compute/free iterations), views that stay valid across memory growth, backend choice
// and fallback, and a process that exits promptly after dispose() (and without it: workers are
// unref'd).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { ConfigError, ShapeError } from '../../src/errors.js';
import { createKernels } from '../../src/kernels/index.js';

/** Seconds a child process may take to create kernels, compute, and exit. */
const EXIT_DEADLINE_S = 10;

interface HeapStats {
  heapUsedBytes: number;
}

describe('wasm allocator', () => {
  test('allocations are zero-filled, reused, and foreign or double frees are errors', async () => {
    const k = await createKernels({ backend: 'wasm', threads: 1 });
    try {
      const a = k.allocF32(1000);
      a.fill(7);
      k.free(a);
      const b = k.allocF32(1000);
      assert.equal(b.byteOffset, a.byteOffset, 'same size class reuses the block');
      assert.ok(b.every((v) => v === 0), 'reused block is zero-filled');
      assert.throws(() => k.free(new Float32Array(4)), ShapeError);
      assert.throws(() => k.free(b.subarray(1)), ShapeError);
      k.free(b);
      assert.throws(() => k.free(b), ShapeError);
      const empty = k.allocF32(0);
      assert.equal(empty.length, 0);
      k.free(empty);
    } finally {
      await k.dispose();
    }
  });

  test('10,000 allocate/compute/free iterations leave memory flat', async () => {
    const k = await createKernels({ backend: 'wasm', threads: 2 });
    try {
      const w = k.allocF32(24 * 16).fill(0.5);
      const used: number[] = [];
      for (let it = 0; it < 10_000; it++) {
        const M = 1 + (it % 7);
        const x = k.allocF32(M * 16).fill(1);
        const y = k.allocF32(M * 24);
        const scratch = k.allocF32(100 + (it % 13) * 50);
        k.matmulXWt(y, x, w, M, 16, 24, false);
        if (y[0] !== 8) assert.fail(`iteration ${it}: y[0] = ${y[0]}`);
        // A foreign input is staged through temporary blocks, which must be returned too.
        k.matmulXWt(y, new Float32Array(M * 16).fill(2), w, M, 16, 24, false);
        k.free(scratch);
        k.free(y);
        k.free(x);
        if (it % 1000 === 999) used.push((k as unknown as HeapStats).heapUsedBytes);
      }
      assert.equal(new Set(used).size, 1, `heap bytes per 1000 iterations: ${used.join(', ')}`);
      k.free(w);
    } finally {
      await k.dispose();
    }
  });

  test('views made before the memory grows stay valid and are still passed by offset', async () => {
    const k = await createKernels({ backend: 'wasm', threads: 2 });
    try {
      const x = k.allocF32(4 * 8).fill(1);
      const w = k.allocF32(8 * 8).fill(1);
      const big = k.allocF32(64 * 2 ** 20); // 256 MiB: forces growth
      big[big.length - 1] = 3;
      const y = k.allocF32(4 * 8);
      k.matmulXWt(y, x, w, 4, 8, 8, false); // x, w are views on the pre-growth buffer object
      assert.ok(y.every((v) => v === 8));
      x[0] = 5; // still the same bytes the kernels read
      k.matmulXWt(y, x, w, 4, 8, 8, false);
      assert.equal(y[0], 12);
      k.free(big);
    } finally {
      await k.dispose();
    }
  });
});

describe('createKernels', () => {
  test('ref on request, bad options are ConfigErrors', async () => {
    const r = await createKernels({ backend: 'ref' });
    assert.equal(r.name, 'ref');
    await assert.rejects(createKernels({ backend: 'gpu' as 'ref' }), ConfigError);
    await assert.rejects(createKernels({ threads: 0 }), ConfigError);
  });

  test('the default is the wasm backend, with relaxed SIMD where the runtime validates it', async () => {
    const k = await createKernels({ threads: 1 });
    try {
      assert.equal(k.name, 'wasm');
      assert.ok(['relaxed-fused', 'relaxed', 'simd'].includes((k as unknown as { variant: string }).variant));
    } finally {
      await k.dispose();
    }
  });
});

describe('process exit', () => {
  const here = fileURLToPath(import.meta.url);
  const fromSource = here.endsWith('.ts');
  const entry = new URL(fromSource ? '../../src/kernels/index.ts' : '../../src/kernels/index.js', import.meta.url).href;
  const script = (dispose: boolean): string => `
    const { createKernels } = await import(${JSON.stringify(entry)});
    const k = await createKernels({ backend: 'wasm', threads: 2 });
    const M = 64, K = 256, N = 256;
    const x = k.allocF32(M * K).fill(1), w = k.allocF32(N * K).fill(1), y = k.allocF32(M * N);
    k.matmulXWt(y, x, w, M, K, N, false);
    if (y[5] !== K) throw new Error('bad result ' + y[5]);
    ${dispose ? 'await k.dispose();' : ''}
    console.log('done');
  `;
  for (const dispose of [true, false]) {
    test(`a process that computes ${dispose ? 'and disposes' : 'and forgets dispose()'} exits promptly`, () => {
      const args = [...(fromSource ? ['--import', 'tsx'] : []), '--input-type=module', '-e', script(dispose)];
      const t0 = Date.now();
      const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: EXIT_DEADLINE_S * 1000 });
      assert.equal(r.error, undefined, `child did not exit within ${EXIT_DEADLINE_S} s`);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /done/);
      assert.ok(Date.now() - t0 < EXIT_DEADLINE_S * 1000);
    });
  }
});

describe('wasm allocator: returning memory to the top', () => {
  test('freeing blocks in any order brings the heap back to where it started', async () => {
    const k = await createKernels({ backend: 'wasm', threads: 1 });
    try {
      const start = (k as unknown as HeapStats).heapUsedBytes;
      const sizes = [10, 5000, 300, 70000, 16, 1234];
      for (const order of [[0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0], [2, 5, 0, 3, 1, 4]]) {
        const bufs = sizes.map((n) => k.allocF32(n));
        for (const i of order) k.free(bufs[i]);
        assert.equal((k as unknown as HeapStats).heapUsedBytes, start, `free order ${order.join(',')}`);
      }
    } finally {
      await k.dispose();
    }
  });
});
