// `qlora eval MODEL --data FILE [--quant nf4|fp4|none] [--context N] [--stride N] [--max-tokens N]
// [--kernels ref|wasm] [--threads N] [--activations f32|int8] [--json]`: loss and perplexity of a
// model over a text dataset with strided windows, exact f32 arithmetic by default (library:
// evaluatePerplexity in src/model/perplexity.ts).
// Data: .txt (the whole file) or .jsonl (one object per line: a `text` field, or Alpaca
// `instruction`/`input`/`output` rendered with the Alpaca prompt of FORMATS.md §13.5); documents
// are joined with a blank line and tokenized once with the tokenizer's special tokens (BOS), as in
// the Hugging Face perplexity recipe.
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import type { Command } from 'commander';
import { ConfigError, FormatError, IoError } from '../errors.js';
import { evaluatePerplexity } from '../model/perplexity.js';
import { addModelLoadOptions, disposeLoaded, loadModelFromCli, positiveIntegerOption, type ModelLoadCliOptions } from './model-options.js';
import { progressDisplay } from './progress.js';

interface EvalCliOptions extends ModelLoadCliOptions {
  data: string;
  context?: string;
  stride?: string;
  maxTokens?: string;
  json?: boolean;
}

const ALPACA_WITH_INPUT =
  'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n';
const ALPACA_WITHOUT_INPUT =
  'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n';

function positiveInt(value: string | undefined, field: string): number | undefined {
  return value === undefined ? undefined : positiveIntegerOption(value, field);
}

/** One JSONL record as evaluation text: its `text`, or the rendered Alpaca prompt + output. */
function recordText(rec: unknown, file: string, line: number): string {
  const where = { file, field: `line ${line}` };
  if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) throw new FormatError('JSONL line is not an object', { ...where, expected: '{"text": ...} or {"instruction", "input", "output"}' });
  const r = rec as Record<string, unknown>;
  if (typeof r.text === 'string') return r.text;
  if (typeof r.instruction === 'string' && typeof r.output === 'string') {
    const input = typeof r.input === 'string' ? r.input : '';
    const prompt = input.length > 0
      ? ALPACA_WITH_INPUT.replace('{instruction}', r.instruction).replace('{input}', input)
      : ALPACA_WITHOUT_INPUT.replace('{instruction}', r.instruction);
    return prompt + r.output;
  }
  throw new FormatError('JSONL record has no text', { ...where, expected: 'a string "text" field, or string "instruction" and "output" fields', got: Object.keys(r).join(', ') });
}

/** The evaluation text of a .txt or .jsonl file. */
export function readEvalText(file: string): string {
  let raw: string;
  try {
    raw = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new IoError('cannot read the data file', { file, cause });
  }
  const ext = extname(file).toLowerCase();
  if (ext === '.jsonl') {
    const docs: string[] = [];
    raw.split('\n').forEach((lineText, i) => {
      if (lineText.trim().length === 0) return;
      let rec: unknown;
      try {
        rec = JSON.parse(lineText);
      } catch (cause) {
        throw new FormatError('invalid JSON', { file, field: `line ${i + 1}`, cause });
      }
      docs.push(recordText(rec, file, i + 1));
    });
    return docs.join('\n\n');
  }
  if (ext === '.txt' || ext === '.text' || ext === '.md') return raw;
  throw new ConfigError('unsupported data file type', { file, expected: '.txt or .jsonl', got: ext || '(no extension)' });
}

/** Characters per token assumed for the first try at tokenizing only a prefix (doubled as needed). */
const PREFIX_CHARS_PER_TOKEN = 8;

/**
 * Token ids of `text`, or of its first `maxTokens` tokens: a growing prefix is tokenized instead
 * of the whole file. Tokens near the cut may differ from a whole-text encoding, so the prefix is
 * grown until it yields more tokens than needed and the surplus at the cut is dropped.
 */
function tokenizePrefix(tokenizer: { encode(text: string): number[] }, text: string, maxTokens: number | undefined): Int32Array {
  if (maxTokens === undefined) return Int32Array.from(tokenizer.encode(text));
  for (let chars = maxTokens * PREFIX_CHARS_PER_TOKEN; ; chars *= 2) {
    const whole = chars >= text.length;
    const ids = tokenizer.encode(whole ? text : text.slice(0, chars));
    if (whole) return Int32Array.from(ids.slice(0, maxTokens));
    if (ids.length > maxTokens + 16) return Int32Array.from(ids.slice(0, maxTokens));
  }
}

/** Default window when --context is not given: the model context, capped (memory and time). */
const DEFAULT_MAX_CONTEXT = 2048;

export function register(program: Command): void {
  const cmd = program
    .command('eval')
    .description('loss and perplexity of a model over a .txt or .jsonl dataset (strided windows)')
    .argument('<model>', 'Hugging Face model folder (f32/f16/bf16 or bnb-4bit) or .gguf file')
    .requiredOption('--data <file>', '.txt, or .jsonl with "text" or Alpaca instruction/input/output records')
    .option('--context <n>', `window length in tokens (default: the model context, at most ${DEFAULT_MAX_CONTEXT})`)
    .option('--stride <n>', 'window step in tokens; each window scores only its new tokens (default: the context)')
    .option('--max-tokens <n>', 'evaluate only the first N tokens of the dataset')
    .option('--json', 'print one JSON record instead of text');
  addModelLoadOptions(cmd, 'f32').action(async (modelPath: string, o: EvalCliOptions) => {
    const text = readEvalText(o.data);
    const loaded = await loadModelFromCli(modelPath, o);
    const { model, kernels } = loaded;
    try {
      if (model.tokenizer === null) {
        throw new ConfigError('the model has no tokenizer', { file: modelPath, hint: 'use a model folder with tokenizer.json or a GGUF with tokenizer metadata' });
      }
      const tokens = tokenizePrefix(model.tokenizer, text, positiveInt(o.maxTokens, '--max-tokens'));
      const bar = progressDisplay('eval', 'tokens', o.progress);
      const t0 = Date.now();
      const total = Math.max(1, tokens.length - 1);
      const r = evaluatePerplexity(model, tokens, {
        context: positiveInt(o.context, '--context') ?? Math.min(model.config.maxPositionEmbeddings, DEFAULT_MAX_CONTEXT),
        stride: positiveInt(o.stride, '--stride'),
        onProgress: (scored) => bar.update(scored, total),
      });
      bar.stop();
      const seconds = (Date.now() - t0) / 1000;
      const record = {
        model: modelPath, data: o.data, quant: o.quant, activations: loaded.activations, kernels: kernels.name, threads: kernels.threads,
        loss: r.loss, perplexity: r.perplexity, nll: r.nll, tokens: r.tokens, windows: r.windows, context: r.context, stride: r.stride,
        load_seconds: loaded.loadMs / 1000, eval_seconds: seconds, tokens_per_s: r.tokens / Math.max(1e-9, seconds),
      };
      if (o.json === true) {
        process.stdout.write(`${JSON.stringify(record)}\n`);
      } else {
        process.stdout.write(`loss ${r.loss.toFixed(4)}  perplexity ${r.perplexity.toFixed(4)}\n`);
        process.stdout.write(`${r.tokens} tokens scored in ${r.windows} windows (context ${r.context}, stride ${r.stride}), ` +
          `${seconds.toFixed(1)} s (${record.tokens_per_s.toFixed(1)} tokens/s), ${kernels.name} kernels x${kernels.threads}\n`);
      }
    } finally {
      await disposeLoaded(loaded);
    }
  });
}
