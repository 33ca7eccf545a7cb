// Child process of the `model` benchmark: loads one model in a fresh process and prints
// {"peakRssMb", "baselineRssMb", "loadMs"} as one JSON line, so the load's peak resident memory is
// measured without the parent's other allocations (process.resourceUsage().maxRSS is per process).
// Usage: node [--import tsx] bench/model-load-probe.(ts|js) MODEL_DIR THREADS

import { createKernels } from '../src/kernels/index.js';
import { loadModel } from '../src/model/load.js';
import { resolveQuantizationConfig } from '../src/quant/config.js';

const KIB_PER_MIB = 1024;

async function main(dir: string, threads: number): Promise<void> {
  const kernels = await createKernels({ backend: 'wasm', threads });
  const baselineRssMb = process.resourceUsage().maxRSS / KIB_PER_MIB;
  const t0 = performance.now();
  const model = await loadModel(dir, { kernels, quant: resolveQuantizationConfig() });
  const loadMs = performance.now() - t0;
  const peakRssMb = process.resourceUsage().maxRSS / KIB_PER_MIB;
  model.dispose();
  await kernels.dispose();
  process.stdout.write(`${JSON.stringify({ peakRssMb, baselineRssMb, loadMs })}\n`);
}

const [dir, threads] = process.argv.slice(2);
main(dir, Number(threads)).catch((err: unknown) => {
  process.stderr.write(`model-load-probe: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
