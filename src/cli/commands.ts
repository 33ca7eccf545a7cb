// Registers every `qlora` sub-command on the commander program. Each command lives in its own
// file under cli/ and exports a `register(program)` function; add new ones to the list below.
import type { Command } from 'commander';
import { register as registerDemo } from './demo.js';
import { register as registerGenerate } from './generate.js';
import { register as registerEval } from './eval.js';
import { register as registerExport } from './export.js';
import { register as registerInspect } from './inspect.js';
import { register as registerPlot } from './plot.js';
import { register as registerQuantize } from './quantize.js';
import { register as registerTrain } from './train.js';

type Register = (program: Command) => void;

const registrations: Register[] = [
  registerDemo,
  registerEval,
  registerExport,
  registerGenerate,
  registerInspect,
  registerPlot,
  registerQuantize,
  registerTrain,
];

/** `qlora COMMAND --help` ends with these (qlora-demo/ is what `qlora demo` writes). */
const EXAMPLES: Record<string, readonly string[]> = {
  demo: ['qlora demo', 'qlora demo --out /tmp/demo --steps 300 --overwrite --json'],
  eval: ['qlora eval qlora-demo/model-nf4 --data held-out.txt --max-tokens 4096', 'qlora eval model.gguf --data held-out.jsonl --context 512 --stride 256 --json'],
  export: [
    'qlora export RUN_DIR --format gguf-adapter --out adapter.gguf',
    'qlora export RUN_DIR --format gguf --dtype q4_0 --out merged-q4_0.gguf',
    'qlora export ADAPTER_DIR --model BASE_DIR --format merged --dtype bf16 --max-shard-size 2000000000 --out merged/',
  ],
  generate: ['qlora generate qlora-demo/model-nf4 --adapter qlora-demo/run/adapter --prompt "Once upon a time," --max-new-tokens 64', 'qlora generate BASE_DIR --adapter RUN_DIR/adapter --prompt "Hi" --chat --temperature 0.7 --json'],
  inspect: ['qlora inspect qlora-demo/model-nf4', 'qlora inspect model.gguf adapter.gguf --json'],
  plot: ['qlora plot RUN_DIR --log-y --out curve.svg'],
  quantize: ['qlora quantize MODEL_DIR --out nf4/', 'qlora quantize MODEL_DIR --out fp4/ --quant fp4 --block-size 128 --overwrite --json'],
  train: [
    'qlora train --model qlora-demo/model-nf4 --data my-data.jsonl --out run/ --max-steps 200 --seq-len 160',
    'qlora train --config train.json --out run/ --lora-r 8 --schedule cosine --json',
    'qlora train --resume run/',
  ],
};

export function registerCommands(program: Command): void {
  for (const register of registrations) register(program);
  for (const cmd of program.commands) {
    const examples = EXAMPLES[cmd.name()];
    if (examples !== undefined) cmd.addHelpText('after', `\nExamples:\n${examples.map((e) => `  ${e}`).join('\n')}`);
  }
}
