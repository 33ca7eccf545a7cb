// `qlora quantize MODEL_DIR --out DIR [--quant nf4|fp4] [--block-size N] [--no-double-quant]
// [--skip MODULE...] [--allow-nonfinite] [--overwrite] [--json] ...`: a Hugging Face checkpoint folder into a
// bitsandbytes-4bit folder (library: quantizeCheckpoint in src/quant/quantize-checkpoint.ts),
// with a progress bar (rate and ETA) and the size before/after and bits per parameter.

import type { Command } from 'commander';
import { Option } from 'commander';
import { ConfigError } from '../errors.js';
import { progressDisplay } from './progress.js';
import { verboseLine } from './verbosity.js';
import { createKernels } from '../kernels/index.js';
import type { Kernels } from '../kernels/kernels.js';
import { DEFAULT_SKIP_MODULES, resolveQuantizationConfig, type FloatKind, type QuantizationConfig } from '../quant/config.js';
import { QUANT_STORAGE_DTYPES, type QuantStorage } from '../quant/bnb-checkpoint.js';
import { DEFAULT_MAX_SHARD_BYTES, quantizeCheckpoint, type QuantizeCheckpointReport, type QuantizeProgress } from '../quant/quantize-checkpoint.js';

interface QuantizeCliOptions {
  out: string;
  quant: 'nf4' | 'fp4';
  blockSize: string;
  doubleQuant?: boolean;
  skip?: string[];
  allowNonfinite?: boolean;
  force?: boolean;
  overwrite?: boolean;
  json?: boolean;
  computeDtype: FloatKind;
  quantStorage: string;
  maxShardSize: string;
  progress: boolean;
  kernels: 'wasm' | 'ref';
}

const MB = 1024 * 1024;

function mib(bytes: number): string {
  return `${(bytes / MB).toFixed(bytes < 10 * MB ? 2 : 1)} MiB`;
}

function integerOption(value: string, field: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new ConfigError('expected a positive integer', { field, got: value });
  return n;
}

/** The lines printed after a conversion: files, what was quantized, size before/after, bits per parameter. */
export function formatQuantizeSummary(report: QuantizeCheckpointReport, config: QuantizationConfig, seconds: number): string {
  const lines = [
    `wrote ${report.outDir} (${report.files.join(', ')}) in ${seconds.toFixed(1)} s`,
    `quantized ${report.quantizedTensors} weights (${report.quantizedParams.toLocaleString('en-US')} of ${report.totalParams.toLocaleString('en-US')} parameters) as ${config.quantType}, block ${config.blockSize}, double quant ${config.doubleQuant ? 'on' : 'off'}; kept ${report.keptTensors} tensors`,
    `size ${mib(report.sourceBytes)} -> ${mib(report.outputBytes)} (${((100 * report.outputBytes) / report.sourceBytes).toFixed(1)}% of the original); ${report.bitsPerParameter.toFixed(3)} bits per quantized parameter`,
  ];
  return `${lines.join('\n')}\n`;
}

export function register(program: Command): void {
  program
    .command('quantize')
    .description('quantize a Hugging Face model folder to a bitsandbytes 4-bit checkpoint (NF4/FP4, bit-exact with bitsandbytes)')
    .argument('<model_dir>', 'Hugging Face model folder (config.json + safetensors, f32/f16/bf16, single or sharded)')
    .requiredOption('--out <dir>', 'output folder (created; must be empty unless --overwrite)')
    .addOption(new Option('--quant <type>', '4-bit data type').choices(['nf4', 'fp4']).default('nf4'))
    .option('--block-size <n>', 'elements per absmax block (power of two, 32..4096)', '64')
    .option('--double-quant', 'double-quantize the absmax (default for nf4)')
    .option('--no-double-quant', 'store absmax as f32 (default for fp4)')
    .option('--skip <modules...>', `more module names/globs/regexes to leave unquantized (always: ${DEFAULT_SKIP_MODULES.join(', ')})`)
    .option('--allow-nonfinite', 'quantize NaN as 0 and ±Inf as ± the block maximum instead of refusing')
    .option('--overwrite', 'replace a non-empty output folder (as export and train)')
    .addOption(new Option('--force', 'the former name of --overwrite').hideHelp())
    .option('--json', 'print the report as JSON')
    .addOption(new Option('--compute-dtype <dtype>', 'bnb_4bit_compute_dtype written to config.json').choices(['f32', 'f16', 'bf16']).default('f32'))
    .addOption(new Option('--quant-storage <dtype>', 'bnb_4bit_quant_storage (dtype the packed bytes are stored as)').choices(Object.keys(QUANT_STORAGE_DTYPES)).default('uint8'))
    .option('--max-shard-size <bytes>', 'split model.safetensors into shards above this many bytes', String(DEFAULT_MAX_SHARD_BYTES))
    .option('--no-progress', 'no progress bar')
    .addOption(new Option('--kernels <backend>', 'wasm: SIMD quantizer (falls back to the reference when unavailable); ref: the plain reference').choices(['wasm', 'ref']).default('wasm'))
    .action(async (modelDir: string, o: QuantizeCliOptions) => {
      const config = resolveQuantizationConfig({
        quantType: o.quant,
        blockSize: integerOption(o.blockSize, '--block-size'),
        doubleQuant: o.doubleQuant,
        computeDtype: o.computeDtype,
        skip: o.skip ?? [],
        allowNonFinite: o.allowNonfinite === true,
      });
      const t0 = Date.now();
      const bar = progressDisplay('quantize', 'MiB', o.progress, MB);
      const onProgress = (p: QuantizeProgress): void => bar.update(p.doneBytes, p.totalBytes, p.tensor);
      // The library's reference quantizer is the default; the wasm kernel (tested equal to it) is
      // used when it loads here. RefKernels would only wrap the same reference, so it is not created.
      let kernels: Kernels | null = null;
      if (o.kernels === 'wasm') {
        try {
          kernels = await createKernels({ backend: 'wasm' });
          verboseLine(`kernels: ${kernels.description}; node ${process.version}`);
        } catch (err) {
          process.stderr.write(`qlora: wasm kernels unavailable (${err instanceof Error ? err.message : String(err)}); using the reference quantizer\n`);
        }
      }
      let report;
      try {
        report = quantizeCheckpoint(modelDir, o.out, {
          config, force: o.overwrite === true || o.force === true, quantStorage: o.quantStorage as QuantStorage,
          maxShardBytes: integerOption(o.maxShardSize, '--max-shard-size'), onProgress,
          blockwise4: kernels === null ? undefined : kernels.quantizeBlockwise4.bind(kernels),
        });
      } finally {
        bar.stop();
        await kernels?.dispose();
      }
      const seconds = (Date.now() - t0) / 1000;
      process.stdout.write(o.json === true ? `${JSON.stringify({ ...report, seconds }, null, 2)}\n` : formatQuantizeSummary(report, config, seconds));
    });
}
