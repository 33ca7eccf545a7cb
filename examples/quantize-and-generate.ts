// Quantize the embedded demo model to a bitsandbytes NF4 + double-quantization folder, load it and
// generate a story, streaming the text as it comes.
//   npx tsx examples/quantize-and-generate.ts [OUT_DIR]
import { createKernels, demoModelPath, generate, loadModel, quantizeCheckpoint } from 'qlora-ts';

const out = process.argv[2] ?? 'demo-nf4';

const report = quantizeCheckpoint(demoModelPath(), out, {
  force: true,
  progress_callback: (p) => { if (p.status === 'ready') console.log(`quantized into ${p.model}`); },
});
console.log(`${report.sourceBytes} -> ${report.outputBytes} bytes, ${report.bitsPerParameter.toFixed(2)} bits per weight`);

const kernels = await createKernels();
const model = await loadModel(out, { kernels });
try {
  process.stdout.write('Once upon a time,');
  const result = await generate(model, 'Once upon a time,', {
    maxNewTokens: 80, temperature: 0.8, seed: 1,
    onToken: (delta) => process.stdout.write(delta),
  });
  console.log(`\n${result.generatedTokens} tokens at ${result.genTokensPerS.toFixed(0)} tokens/s (${result.finishReason})`);
} finally {
  model.dispose();
  await kernels.dispose();
}
