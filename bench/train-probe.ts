// Child process of the `train` benchmark: in a fresh process (so that maxRSS is the training's
// own), loads the model NF4 + double quant, attaches LoRA r=16 alpha=32 on all seven projections
// and runs optimizer steps (forward + backward with the trainer's activation memory, clip 1.0, AdamW) on a
// random [B, T] batch; prints {"stepSeconds": [...], "peakRssMb", "loss"} as one JSON line.
// ACTIVATIONS: int16 (training's default arithmetic of the frozen 4-bit matmuls) or f32 (exact).
// Usage: node bench/train-probe.js MODEL_DIR THREADS B T STEPS ACTIVATIONS

import { createKernels } from '../src/kernels/index.js';
import { loadModel } from '../src/model/load.js';
import { Rng } from '../src/model/sampling.js';
import { resolveQuantizationConfig } from '../src/quant/config.js';
import { attachNewLora, loraParams } from '../src/train/lora.js';
import { AdamW, clipGradNorm } from '../src/train/optim.js';
import { DEFAULT_ACTIVATION_MEMORY } from '../src/train/trainer.js';

const KIB_PER_MIB = 1024;

async function main(dir: string, threads: number, B: number, T: number, steps: number, activations: string): Promise<void> {
  const kernels = await createKernels({ backend: 'wasm', threads, int16Activations: activations === 'int16' });
  const model = await loadModel(dir, { kernels, quant: resolveQuantizationConfig() });
  attachNewLora(model, { r: 16, alpha: 32, dropout: 0, targetModules: 'all-linear', rslora: false, init: 'kaiming' }, 1);
  const params = loraParams(model);
  const opt = new AdamW(kernels, params, { lr: 1e-4 });
  const rng = Rng.fromSeed(7);
  const ids = Int32Array.from({ length: B * T }, () => rng.nextU32() % model.config.vocabSize);
  const stepSeconds: number[] = [];
  let loss = Number.NaN;
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    for (const p of params) p.grad.fill(0);
    loss = model.forwardBackward(ids, B, T, undefined, { activationBudgetBytes: DEFAULT_ACTIVATION_MEMORY }).loss;
    clipGradNorm(kernels, params, 1.0);
    opt.step(1e-4);
    stepSeconds.push((performance.now() - t0) / 1000);
  }
  const peakRssMb = process.resourceUsage().maxRSS / KIB_PER_MIB;
  opt.dispose();
  model.dispose();
  await kernels.dispose();
  process.stdout.write(`${JSON.stringify({ stepSeconds, peakRssMb, loss })}\n`);
}

const [dir, threads, B, T, steps, activations] = process.argv.slice(2);
main(dir, Number(threads), Number(B), Number(T), Number(steps), activations).catch((err: unknown) => {
  process.stderr.write(`train-probe: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
