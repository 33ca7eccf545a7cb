// `qlora generate MODEL --prompt "..." [--chat] [--system "..."] [--adapter DIR]
// [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--min-p P]
// [--repetition-penalty R] [--seed S] [--stop S...] [--quant nf4|fp4|none] [--kernels ref|wasm]
// [--threads N] [--activations int8|f32] [--json]`: loads the model (library: loadModel), optionally a PEFT LoRA adapter
// (model/peft-adapter.ts) into its LoRA slots, and generates (model/generate.ts). Text streams to
// stdout as it is produced and the timings go to stderr; --json prints one JSON record instead.
// Ctrl-C stops generation after the current token and still reports what was generated.

import type { Command } from 'commander';
import { ConfigError } from '../errors.js';
import type { ChatMessage } from '../formats/tokenizer.js';
import { generate, resolveGenerationSampling, type GenerationInput } from '../model/generate.js';
import { loadPeftAdapter } from '../model/peft-adapter.js';
import { addModelLoadOptions, disposeLoaded, loadModelFromCli, positiveIntegerOption, type ModelLoadCliOptions } from './model-options.js';

interface GenerateCliOptions extends ModelLoadCliOptions {
  prompt: string;
  chat?: boolean;
  system?: string;
  adapter?: string;
  maxNewTokens?: string;
  temperature?: string;
  topK?: string;
  topP?: string;
  minP?: string;
  repetitionPenalty?: string;
  seed?: string;
  stop?: string[];
  json?: boolean;
}

/** Used when neither --max-new-tokens nor generation_config.json's max_new_tokens says. */
const DEFAULT_MAX_NEW_TOKENS = 256;

function numberOption(value: string | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new ConfigError('expected a number', { field, got: value });
  return n;
}

function integerOption(value: string | undefined, field: string): number | undefined {
  const n = numberOption(value, field);
  if (n !== undefined && !Number.isSafeInteger(n)) throw new ConfigError('expected an integer', { field, got: value });
  return n;
}

function promptInput(o: GenerateCliOptions): GenerationInput {
  if (o.chat !== true) {
    if (o.system !== undefined) throw new ConfigError('--system needs --chat', { field: '--system', hint: 'add --chat to format the prompt with the chat template' });
    return o.prompt;
  }
  const messages: ChatMessage[] = [];
  if (o.system !== undefined) messages.push({ role: 'system', content: o.system });
  messages.push({ role: 'user', content: o.prompt });
  return { messages };
}

export function register(program: Command): void {
  const cmd = program
    .command('generate')
    .description('generate text with a model (optionally with a PEFT LoRA adapter), streaming it to stdout')
    .argument('<model>', 'Hugging Face model folder or .gguf file')
    .requiredOption('--prompt <text>', 'prompt text')
    .option('--chat', "format the prompt as a user message with the model's chat template")
    .option('--system <text>', 'system message (with --chat)')
    .option('--adapter <dir>', 'PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors)')
    .option('--max-new-tokens <n>', `tokens to generate at most (default: generation_config.json, else ${DEFAULT_MAX_NEW_TOKENS})`)
    .option('--temperature <t>', '0 = greedy; > 0 samples (default: generation_config.json, else greedy)')
    .option('--top-k <k>', 'keep the k most likely tokens (0 = off; default 50 when sampling, as transformers)')
    .option('--top-p <p>', 'nucleus sampling mass (1 = off)')
    .option('--min-p <p>', 'drop tokens below p x the top probability (0 = off)')
    .option('--repetition-penalty <r>', 'penalise tokens already present (1 = off)')
    .option('--seed <n>', 'random seed for sampling', '0')
    .option('--stop <strings...>', 'stop when the text contains one of these (not included in the output)')
    .option('--json', 'print one JSON record {text, ids, timings...} instead of streaming');
  // int8 activations by default: generation is where speed matters (llama.cpp also quantizes
  // activations to 8 bits); `--activations f32` gives the exact product.
  addModelLoadOptions(cmd, 'int8').action(async (modelPath: string, o: GenerateCliOptions) => {
    const input = promptInput(o);
    const explicit = {
      temperature: numberOption(o.temperature, '--temperature'),
      topK: integerOption(o.topK, '--top-k'),
      topP: numberOption(o.topP, '--top-p'),
      minP: numberOption(o.minP, '--min-p'),
      repetitionPenalty: numberOption(o.repetitionPenalty, '--repetition-penalty'),
      seed: integerOption(o.seed, '--seed'),
    };
    const maxNewOption = o.maxNewTokens === undefined ? undefined : o.maxNewTokens === '0' ? 0 : positiveIntegerOption(o.maxNewTokens, '--max-new-tokens');
    const loaded = await loadModelFromCli(modelPath, o);
    const { model } = loaded;
    const abort = new AbortController();
    const onSigint = (): void => abort.abort();
    // A reader that goes away (`| head`) ends generation instead of crashing on EPIPE.
    let stdoutClosed = false;
    const onStdoutError = (err: NodeJS.ErrnoException): void => {
      if (err.code !== 'EPIPE') throw err;
      stdoutClosed = true;
      abort.abort();
    };
    process.once('SIGINT', onSigint);
    process.stdout.on('error', onStdoutError);
    try {
      const genConfig = model.generationConfig;
      if (o.adapter !== undefined) {
        const adapter = loadPeftAdapter(model, o.adapter);
        process.stderr.write(`adapter ${adapter.dir}: ${adapter.modules.length} LoRA modules, r=${adapter.config.r}, alpha=${adapter.config.loraAlpha}${adapter.config.useRslora ? ' (rsLoRA)' : ''}\n`);
      }
      const eosTokenIds = [...new Set([...(model.tokenizer?.eosTokenIds ?? []), ...model.config.eosTokenIds, ...(genConfig?.eosTokenIds ?? [])])];
      const result = await generate(model, input, {
        ...resolveGenerationSampling(explicit, genConfig),
        maxNewTokens: maxNewOption ?? genConfig?.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS,
        stop: o.stop,
        eosTokenIds,
        signal: abort.signal,
        onToken: o.json === true ? undefined : (delta) => stdoutClosed || process.stdout.write(delta),
      });
      if (o.json === true) {
        process.stdout.write(`${JSON.stringify({ ...result, loadMs: loaded.loadMs, kernels: loaded.kernels.name, threads: loaded.kernels.threads, quant: o.quant, activations: loaded.activations })}\n`);
      } else {
        if (!stdoutClosed) process.stdout.write('\n');
        const f = (x: number): string => x.toFixed(1);
        process.stderr.write(
          `prompt: ${result.promptTokens} tokens in ${f(result.promptMs)} ms (${f(result.promptTokensPerS)} tokens/s); ` +
            `generation: ${result.generatedTokens} tokens in ${f(result.genMs)} ms (${f(result.genTokensPerS)} tokens/s); ` +
            `finish: ${result.finishReason}; load ${f(loaded.loadMs)} ms, ${loaded.kernels.name} x${loaded.kernels.threads}, ${loaded.activations} activations\n`,
        );
      }
    } finally {
      process.removeListener('SIGINT', onSigint);
      await disposeLoaded(loaded);
    }
  });
}
