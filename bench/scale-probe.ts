// Child process of the `scale` benchmark, one measurement per process so that maxRSS is that
// step's own:
//   quantize SRC OUT   stream the f16 checkpoint SRC into a bnb-4bit NF4 + double-quant folder OUT
//                      (the wasm blockwise quantizer, as `qlora quantize` runs it)
//   train DIR T        load the bnb-4bit folder DIR (4-bit weights resident or streamed by the
//                      kernels' byte budget), attach LoRA r=16 alpha=32 on all linear layers, run
//                      one training step (forward + backward with gradient checkpointing, AdamW) on
//                      a random [1, T] batch, then one decoding step (a 1-token forward with a KV cache)
// Prints one JSON line: {"seconds" | "stepSeconds", "decodeSeconds", "peakRssMb", ...}.
// Usage: node bench/scale-probe.js quantize SRC OUT | train DIR T THREADS

import { createKernels } from '../src/kernels/index.js';
import { loadModel } from '../src/model/load.js';
import { Rng } from '../src/model/sampling.js';
import { quantizeCheckpoint } from '../src/quant/quantize-checkpoint.js';
import { attachNewLora, loraParams } from '../src/train/lora.js';
import { AdamW, clipGradNorm } from '../src/train/optim.js';

const KIB_PER_MIB = 1024;

function peakRssMb(): number {
  return process.resourceUsage().maxRSS / KIB_PER_MIB;
}

async function quantize(src: string, out: string, threads: number): Promise<void> {
  const kernels = await createKernels({ backend: 'wasm', threads });
  const t0 = performance.now();
  const report = quantizeCheckpoint(src, out, { blockwise4: kernels.quantizeBlockwise4.bind(kernels) });
  const seconds = (performance.now() - t0) / 1000;
  await kernels.dispose();
  process.stdout.write(`${JSON.stringify({ seconds, peakRssMb: peakRssMb(), sourceBytes: report.sourceBytes, outputBytes: report.outputBytes, bitsPerParameter: report.bitsPerParameter })}\n`);
}

async function trainStep(dir: string, T: number, threads: number): Promise<void> {
  const kernels = await createKernels({ backend: 'wasm', threads });
  const t0 = performance.now();
  const model = await loadModel(dir, { kernels });
  const loadSeconds = (performance.now() - t0) / 1000;
  attachNewLora(model, { r: 16, alpha: 32, dropout: 0, targetModules: 'all-linear', rslora: false, init: 'kaiming' }, 1);
  const params = loraParams(model);
  const opt = new AdamW(kernels, params, { lr: 1e-4 });
  const rng = Rng.fromSeed(7);
  const ids = Int32Array.from({ length: T }, () => rng.nextU32() % model.config.vocabSize);
  const t1 = performance.now();
  const loss = model.forwardBackward(ids, 1, T).loss;
  clipGradNorm(kernels, params, 1.0);
  opt.step(1e-4);
  const stepSeconds = (performance.now() - t1) / 1000;
  const cache = model.createKvCache(1, 8);
  model.forward(Int32Array.of(1), 1, 1, { cache, logits: 'last' });
  const t2 = performance.now();
  model.forward(Int32Array.of(ids[0] as number), 1, 1, { cache, logits: 'last' });
  const decodeSeconds = (performance.now() - t2) / 1000;
  cache.dispose();
  opt.dispose();
  model.dispose();
  await kernels.dispose();
  process.stdout.write(`${JSON.stringify({ loadSeconds, stepSeconds, decodeSeconds, loss, peakRssMb: peakRssMb() })}\n`);
}

const [mode, a, b, c] = process.argv.slice(2);
const run = mode === 'quantize' ? quantize(a as string, b as string, Number(c ?? 2)) : mode === 'train' ? trainStep(a as string, Number(b), Number(c ?? 2)) : Promise.reject(new Error(`unknown mode ${mode}`));
run.catch((err: unknown) => {
  process.stderr.write(`scale-probe: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
