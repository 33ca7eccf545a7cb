// Resource hygiene over a long run (issue 14): 10,000 QLoRA steps (NF4 base, LoRA on every
// linear layer, forward + backward with checkpointing, clipping, AdamW) on a tiny random model over
// the wasm kernels with 2 threads. Memory must be flat between step 1,000 and step 10,000, measured
// after a forced full GC: the kernels' heap in use is the same (every per-step buffer goes back), the
// V8 live heap and the ArrayBuffer/external bytes grow by less than 1 MiB (a buffer kept per step
// would add tens of MiB), and the process's RSS by no more than allocator and JIT noise (its page
// high-water mark moves in 8-16 MiB plateaus on a shared machine, so its bound is coarse; the exact
// checks are the ones above). Linux only (RSS from /proc/self/status).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { createKernels } from '../../src/kernels/index.js';
import { resolveQuantizationConfig } from '../../src/quant/config.js';
import { attachNewLora, loraParams } from '../../src/train/lora.js';
import { AdamW, clipGradNorm } from '../../src/train/optim.js';
import { tinyModel } from '../model/tiny-model.js';
import { rssMb } from '../helpers/memory.js';

const STEPS = 10_000;
const FIRST_SAMPLE = 1_000;
const RSS_SLACK_MB = 96;
const LIVE_SLACK_MB = 1;
v8.setFlagsFromString('--expose-gc');
const fullGc = vm.runInNewContext('gc') as () => void;
interface Sample { wasm: number; rss: number; heap: number; buffers: number }

test(`${STEPS.toLocaleString('en-US')} training steps on a tiny model leave memory flat`, { skip: process.platform !== 'linux', timeout: 300_000 }, async () => {
  const kernels = await createKernels({ backend: 'wasm', threads: 2 });
  const model = tinyModel(kernels, { model_type: 'llama', hidden_size: 32, intermediate_size: 64, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2, vocab_size: 96 }, 3, resolveQuantizationConfig());
  try {
    attachNewLora(model, { r: 4, alpha: 8, dropout: 0.1, targetModules: 'all-linear', rslora: false, init: 'kaiming' }, 1);
    const params = loraParams(model);
    const opt = new AdamW(kernels, params, { lr: 1e-3 });
    const B = 2, T = 16;
    const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7 + 3) % 96);
    const heapOf = (): number => (kernels as unknown as { heapUsedBytes: number }).heapUsedBytes;
    const sample = (): Sample => {
      fullGc();
      const m = process.memoryUsage();
      return { wasm: heapOf(), rss: rssMb(), heap: v8.getHeapStatistics().used_heap_size / 2 ** 20, buffers: (m.external + m.arrayBuffers) / 2 ** 20 };
    };
    let at1000: Sample = { wasm: 0, rss: 0, heap: 0, buffers: 0 };
    let loss = Number.NaN;
    for (let step = 1; step <= STEPS; step++) {
      for (const p of params) p.grad.fill(0);
      loss = model.forwardBackward(ids, B, T, undefined, { dropoutSeed: step }).loss;
      clipGradNorm(kernels, params, 1.0);
      opt.step(1e-3);
      if (step === FIRST_SAMPLE) at1000 = sample();
    }
    const end = sample();
    assert.ok(Number.isFinite(loss), `loss ${loss}`);
    assert.equal(end.wasm, at1000.wasm, 'kernel heap bytes in use after step 1,000 and step 10,000');
    assert.ok(end.heap - at1000.heap <= LIVE_SLACK_MB, `V8 live heap ${at1000.heap.toFixed(2)} -> ${end.heap.toFixed(2)} MiB`);
    assert.ok(end.buffers - at1000.buffers <= LIVE_SLACK_MB, `ArrayBuffer + external ${at1000.buffers.toFixed(2)} -> ${end.buffers.toFixed(2)} MiB`);
    assert.ok(end.rss - at1000.rss <= RSS_SLACK_MB, `RSS ${at1000.rss.toFixed(0)} -> ${end.rss.toFixed(0)} MiB`);
    opt.dispose();
  } finally {
    model.dispose();
    await kernels.dispose();
  }
});
