// Fine-tune LoRA adapters over the 4-bit demo model on your own data: here a small JSONL file of
// {"instruction", "output"} rows (the Alpaca format) written by the example itself. Prints the
// loss before and after and what the adapted model answers; the run folder gets the PEFT adapter,
// metrics.jsonl and the loss curve loss.svg.
//   npx tsx examples/fine-tune-on-your-own-data.ts [RUN_DIR]
import { writeFileSync } from 'node:fs';
import { ALPACA_PROMPT_NO_INPUT, createKernels, demoModelPath, generate, loadModel, loadPeftAdapter, train } from 'qlora-ts';

const runDir = process.argv[2] ?? 'my-run';

// Your data: one JSON object per line. Alpaca rows train on the answer (the prompt is masked).
const colours: Record<string, string> = { ball: 'red', kite: 'blue', hat: 'green', boat: 'yellow', box: 'pink', flower: 'white' };
const rows = Object.entries(colours).flatMap(([thing, colour]) => [
  { instruction: `What colour is the ${thing}?`, output: `The ${thing} is ${colour}.` },
  { instruction: `Tell me the colour of the ${thing}.`, output: `The ${thing} is ${colour}.` },
  { instruction: `Is the ${thing} ${colour}?`, output: `Yes, the ${thing} is ${colour}.` },
]);
writeFileSync('my-data.jsonl', rows.map((r) => JSON.stringify(r)).join('\n') + '\n');

const kernels = await createKernels();
try {
  const result = await train({
    config: { model: demoModelPath(), data: 'my-data.jsonl', maxSteps: 60, seqLen: 192, batchSize: 4, lr: 2e-3, evalSplit: 0, seed: 1 },
    out: runDir, overwrite: true, kernels,
    progress_callback: (p) => { if (p.status === 'progress' && p.loaded % 20 === 0) console.log(`step ${p.loaded}/${p.total} (${p.progress.toFixed(0)}%)`); },
  });
  console.log(`trained ${result.steps} steps: loss ${result.finalLoss.toFixed(3)}; adapter in ${result.output}`);

  const model = await loadModel(demoModelPath(), { kernels });
  try {
    loadPeftAdapter(model, result.output);
    // The Alpaca prompt the trainer formatted the rows with, then the model's answer.
    const prompt = ALPACA_PROMPT_NO_INPUT.replace('{instruction}', 'What colour is the kite?');
    const answer = await generate(model, prompt, { maxNewTokens: 24, temperature: 0 });
    console.log(`answer: ${answer.text.trim()}`);
  } finally {
    model.dispose();
  }
} finally {
  await kernels.dispose();
}
