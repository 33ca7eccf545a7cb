// `qlora export SRC --format peft|merged|bnb4|gguf|gguf-adapter ...`: argv, progress and summary
// for exportModel (src/export). Progress is a bar on a TTY, plain lines otherwise.
import type { Command } from 'commander';
import { Option } from 'commander';
import { exportModel, type ExportFormat, type GgufModelType } from '../export/index.js';
import { positiveIntegerOption } from './model-options.js';
import { progressDisplay } from './progress.js';

interface ExportCliOptions {
  format: ExportFormat;
  dtype?: GgufModelType;
  model?: string;
  out: string;
  overwrite?: boolean;
  clampF16?: boolean;
  maxShardSize?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('export')
    .description('export a model, adapter or fine-tuning run as a PEFT adapter, merged HF folder, bnb-4bit folder, GGUF model or GGUF adapter')
    .argument('<src>', 'model folder, .gguf file, adapter folder (with --model) or run folder (run.json + adapter/)')
    .addOption(new Option('--format <format>', 'output format').choices(['peft', 'merged', 'bnb4', 'gguf', 'gguf-adapter']).makeOptionMandatory())
    .addOption(new Option('--dtype <type>', 'tensor type (gguf: all; others: f32, f16, bf16)').choices(['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'iq4_nl']))
    .option('--model <base>', 'base model of an adapter folder (default for a run folder: run.json "model")')
    .requiredOption('--out <path>', 'output file or folder')
    .option('--overwrite', 'replace an existing output')
    .option('--max-shard-size <bytes>', 'merged, bnb4: split model.safetensors into shards with an index above this many bytes (default 5000000000)')
    .option('--clamp-f16', 'clamp values beyond the f16 range instead of refusing (merged f16)')
    .option('--json', 'print the report as JSON')
    .action((src: string, o: ExportCliOptions) => {
      const bar = progressDisplay('export', 'tensors', true);
      const report = exportModel(src, {
        format: o.format, out: o.out, model: o.model, dtype: o.dtype, overwrite: o.overwrite === true,
        maxShardBytes: o.maxShardSize === undefined ? undefined : positiveIntegerOption(o.maxShardSize, '--max-shard-size'), f16Overflow: o.clampF16 === true ? 'clamp' : 'refuse',
        onProgress: (p) => bar.update(p.done, p.total, p.tensor),
      });
      bar.stop();
      if (o.json === true) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else {
        process.stdout.write(`wrote ${report.out}\n`);
        for (const t of report.tensorTypes) if (t.fallback !== null) process.stdout.write(`  ${t.name}: ${t.fallback}\n`);
      }
    });
}
