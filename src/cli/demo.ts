// `qlora demo [--out DIR] [--steps N] [--overwrite] [--json] [--threads N] [--kernels wasm|ref]`:
// the whole QLoRA round trip on the embedded demo model (library: runDemo in src/demo.ts), with a
// line per phase, the training progress bar (plain lines off a terminal), the story before and
// after fine-tuning, the files written and what to run next. Nothing is fetched.
import { relative } from 'node:path';
import type { Command } from 'commander';
import { createKernels } from '../kernels/index.js';
import { DEMO_PROMPT, runDemo, type DemoPhase, type DemoReport } from '../demo.js';
import { addRunOptions, positiveIntegerOption } from './model-options.js';
import { abortOnSigint, progressReporter } from './train.js';
import { verboseLine, verbosity } from './verbosity.js';

interface DemoCliOptions {
  out: string;
  steps: string;
  overwrite?: boolean;
  json?: boolean;
  threads?: string;
  kernels: 'wasm' | 'ref';
  progress: boolean;
  prompt: string;
}

const PHASES: Record<DemoPhase, string> = {
  quantize: 'quantize the demo model to NF4 + double quantization (a bitsandbytes-4bit folder)',
  'generate-before': 'generate with the 4-bit base model',
  train: 'fine-tune LoRA adapters over the 4-bit base on stories about Pip the dragon',
  'generate-after': 'generate again, with the fine-tuned adapter',
  export: 'export the merged model and the adapter as GGUF files for llama.cpp',
};
const ORDER = Object.keys(PHASES) as DemoPhase[];

export function register(program: Command): void {
  const cmd = program
    .command('demo')
    .description('the whole QLoRA round trip on the embedded demo model: quantize, generate, fine-tune, generate, export (nothing is downloaded)')
    .option('--out <dir>', 'output folder', 'qlora-demo')
    .option('--overwrite', 'replace an earlier demo output folder')
    .option('--steps <n>', 'fine-tuning steps', '120')
    .option('--prompt <text>', 'prompt of the before/after generations', DEMO_PROMPT);
  addRunOptions(cmd).action(async (o: DemoCliOptions) => runDemoCli(o));
}

function rel(path: string): string {
  const r = relative(process.cwd(), path);
  return r.startsWith('..') || r === '' ? path : r;
}

function summary(r: DemoReport): string {
  const mib = (b: number): string => `${(b / 2 ** 20).toFixed(2)} MiB`;
  const evalText = r.loss.evalBefore !== null && r.loss.evalAfter !== null ? `; held-out loss ${r.loss.evalBefore.toFixed(3)} -> ${r.loss.evalAfter.toFixed(3)}` : '';
  return [
    '',
    `Before fine-tuning (greedy, 4-bit base):\n  ${r.before}`,
    '',
    `After fine-tuning (greedy, base + LoRA adapter):\n  ${r.after}`,
    '',
    `Quantized ${mib(r.quantized.sourceBytes)} -> ${mib(r.quantized.outputBytes)} (${r.quantized.bitsPerParameter.toFixed(2)} bits per weight).`,
    `Fine-tuned ${r.steps} steps at ${Math.round(r.tokensPerS)} tokens/s: training loss ${r.loss.firstStep.toFixed(3)} -> ${r.loss.lastStep.toFixed(3)}${evalText}.`,
    `Done in ${r.seconds.toFixed(1)} s. Files:`,
    `  ${rel(r.quantized.dir)}/   the 4-bit base (bitsandbytes NF4 + double quantization, loads in transformers)`,
    `  ${rel(r.files.adapter)}/   the PEFT LoRA adapter (loads in Hugging Face PEFT)`,
    `  ${rel(r.files.lossCurve)}   the loss curve (open it in a browser)`,
    `  ${rel(r.files.gguf)}   the merged model for llama.cpp`,
    `  ${rel(r.files.ggufAdapter)}   the adapter for llama.cpp (--lora, over a GGUF of the base)`,
    '',
    'Next:',
    `  npx qlora generate ${rel(r.quantized.dir)} --adapter ${rel(r.files.adapter)} --prompt "Once upon a time," --temperature 0.8`,
    `  npx qlora inspect ${rel(r.files.gguf)}`,
    `  llama-cli -m ${rel(r.files.gguf)} -p "Once upon a time," -n 160   # with llama.cpp installed`,
    `  npx qlora train --model ${rel(r.quantized.dir)} --data your-data.jsonl --out my-run   # your own data`,
    '',
  ].join('\n');
}

async function runDemoCli(o: DemoCliOptions): Promise<void> {
  const steps = positiveIntegerOption(o.steps, '--steps');
  const threads = o.threads === undefined ? undefined : positiveIntegerOption(o.threads, '--threads');
  // Training's default arithmetic (int16 frozen matmuls at 16 rows and more; the stories' decoding stays exact).
  const kernels = await createKernels({ backend: o.kernels, threads, int16Activations: true });
  verboseLine(`kernels: ${kernels.description}; node ${process.version}`);
  const show = o.progress && verbosity() !== 'quiet';
  const progress = progressReporter(show, o.json === true);
  const interrupt = abortOnSigint('stopping the fine-tune after this step');
  try {
    const report = await runDemo({
      out: o.out, overwrite: o.overwrite === true, steps, kernels, prompt: o.prompt, signal: interrupt.signal,
      onPhase: (p) => {
        if (p !== 'train') progress.stop();
        if (show || verbosity() === 'verbose') process.stderr.write(`[${ORDER.indexOf(p) + 1}/${ORDER.length}] ${PHASES[p]}\n`);
      },
      onTrainEvent: progress.onEvent,
    });
    progress.stop();
    if (o.json === true) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else process.stdout.write(summary(report));
    if (report.interrupted) process.exitCode = 130;
  } finally {
    progress.stop();
    interrupt.dispose();
    await kernels.dispose();
  }
}
