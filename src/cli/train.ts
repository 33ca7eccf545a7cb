// `qlora train --model M --data D --out RUN_DIR [options]` and `qlora train --resume RUN_DIR`:
// argv and an optional `--config train.json` (any option, camelCase or the flag's kebab-case
// name; flags win) turned into a run of `train` (src/train/trainer.ts), with a progress bar on a
// terminal (plain lines otherwise), Ctrl-C saving a checkpoint (a second Ctrl-C exits at once),
// and a summary or `--json` report at the end.
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import cliProgress from 'cli-progress';
import { ConfigError, IoError } from '../errors.js';
import { isJsonObject, parseJsonStrict } from '../formats/json-strict.js';
import { createKernels } from '../kernels/index.js';
import { verboseLine, verbosity } from './verbosity.js';
import { train, type TrainActivations, type TrainEvent } from '../train/trainer.js';
import type { RunConfigInput } from '../train/train-options.js';
import { addRunOptions, positiveIntegerOption } from './model-options.js';

/** Flags whose value is a number, by option key. */
const NUMERIC = ['seqLen', 'maxSteps', 'epochs', 'batchSize', 'gradAccum', 'lr', 'warmupSteps', 'weightDecay', 'maxGradNorm', 'loraR', 'loraAlpha', 'loraDropout',
  'evalEvery', 'saveEvery', 'keepCheckpoints', 'seed', 'evalSplit'] as const;
const STRINGS = ['model', 'data', 'evalData', 'format', 'schedule', 'quant', 'adapter', 'overlong', 'init', 'nanPolicy'] as const;
const BOOLEANS = ['packing', 'full', 'rslora'] as const;

interface TrainCliOptions extends Record<string, unknown> {
  out?: string;
  resume?: string;
  overwrite?: boolean;
  config?: string;
  threads?: string;
  kernels: 'wasm' | 'ref';
  json?: boolean;
  progress: boolean;
  targetModules?: string;
  optim?: 'adamw' | 'adamw-8bit';
  trainOnPrompt?: boolean;
  activationMemory?: string;
  activations: TrainActivations;
}

export function register(program: Command): void {
  const cmd = program
    .command('train')
    .description('fine-tune LoRA adapters (QLoRA: over a 4-bit NF4 base) or, for small f32 models, every weight')
    .option('--model <path>', 'base model: Hugging Face folder, bitsandbytes-4bit folder or .gguf file')
    .option('--data <file>', 'training data: .txt (packed into --seq-len windows), .json/.jsonl (Alpaca, chat "messages" or "text" rows)')
    .option('--out <dir>', 'run folder (adapter/, checkpoints/, metrics.jsonl, loss.svg)')
    .option('--resume <dir>', 'continue the run in this folder from its newest intact checkpoint')
    .option('--overwrite', 'replace an earlier run in --out')
    .option('--config <file>', 'JSON file with any of these options (flags win)')
    .option('--eval-data <file>', 'held-out data (default: 5% of --data when it has 20 examples or more)')
    .option('--eval-split <x>', 'held-out fraction of --data, or a count; 0 = no evaluation')
    .addOption(new Option('--format <format>', 'dataset format (default: from the file)').choices(['auto', 'text', 'alpaca', 'chat', 'text-field']))
    .option('--seq-len <n>', 'tokens per sequence (default min(512, model context))')
    .option('--packing', 'concatenate examples into --seq-len windows (text files always pack)')
    .option('--train-on-prompt', 'loss on prompt tokens too (default: completions only)')
    .addOption(new Option('--overlong <what>', 'examples longer than --seq-len').choices(['truncate', 'drop']))
    .option('--max-steps <n>', 'optimizer steps (default: --epochs)')
    .option('--epochs <x>', 'passes over the data (default 1)')
    .option('--batch-size <n>', 'sequences per micro-batch (default 4)')
    .option('--grad-accum <n>', 'micro-batches per optimizer step (default 1)')
    .option('--lr <x>', 'peak learning rate (default 2e-4; 1e-3 for models with hidden size < 1024)')
    .addOption(new Option('--schedule <s>', 'learning-rate schedule (default constant)').choices(['constant', 'linear', 'cosine']))
    .option('--warmup-steps <n>', 'linear warmup steps (default 3% of the run)')
    .option('--weight-decay <x>', 'AdamW decoupled weight decay (default 0)')
    .option('--max-grad-norm <x>', 'clip the global gradient norm (default 0.3; 0 = off)')
    .addOption(new Option('--optim <o>', 'optimizer states: adamw (32-bit) or adamw-8bit (blockwise 8-bit, 1/4 the memory)').choices(['adamw', 'adamw-8bit']))
    .addOption(new Option('--quant <type>', 'frozen base weights (default nf4; none for --full; gguf keeps a .gguf base\'s own Q4_0/Q8_0/IQ4_NL/... blocks)').choices(['nf4', 'fp4', 'none', 'gguf']))
    .option('--full', 'full-parameter training of an f32 model (every weight, norm and the embedding)')
    .option('--lora-r <n>', 'LoRA rank (default 64; 16 for small models)')
    .option('--lora-alpha <x>', 'LoRA alpha (default 16; 32 for small models)')
    .option('--lora-dropout <p>', 'dropout on the LoRA input (default 0.1; 0.05 for small models)')
    .option('--target-modules <list>', 'all-linear (default), comma-separated names (q_proj,v_proj) or a regex over module paths')
    .option('--rslora', 'scale alpha/sqrt(r) instead of alpha/r')
    .addOption(new Option('--init <how>', 'LoRA A initialisation (B = 0)').choices(['kaiming', 'gaussian']))
    .option('--adapter <dir>', 'continue training this PEFT adapter')
    .option('--eval-every <n>', 'evaluate every N steps (default: 10 times per run) and at the end')
    .option('--save-every <n>', 'checkpoint every N steps (default: 4 times per run) and at the end')
    .option('--keep-checkpoints <n>', 'newest checkpoints kept (default 2)')
    .option('--seed <n>', 'seed of data order, split, LoRA init and dropout (default 42)')
    .addOption(new Option('--activations <type>', 'arithmetic of the frozen matmuls (4-bit base, f32 lm head): int16 = both operands 13-bit integers per block, ~1.3x faster, ' +
      'gradients 12x closer to exact than bf16 compute; f32 = exact').choices(['int16', 'f32']).default('int16'))
    .option('--activation-memory <MiB>', 'layer activations kept instead of recomputed in the backward: faster, same gradients (default 1536; 0 = recompute all)')
    .addOption(new Option('--nan-policy <p>', 'a non-finite loss or gradient: stop (default) or skip the step').choices(['stop', 'skip']));
  addRunOptions(cmd).action(async (o: TrainCliOptions) => runTrain(o));
}

/** Kebab-case config keys (as the flags) to camelCase. */
function camel(key: string): string {
  return key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new IoError('cannot read the training config', { file, cause });
  }
  const obj = parseJsonStrict(text, file);
  if (!isJsonObject(obj)) throw new ConfigError('the training config must be a JSON object', { file });
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) out[camel(k)] = v;
  if (typeof out.optim === 'string') Object.assign(out, optimStates(out.optim, file));
  delete out.optim;
  return out;
}

function optimStates(optim: string, file?: string): { optimStates: '32bit' | '8bit' } {
  if (optim === 'adamw') return { optimStates: '32bit' };
  if (optim === 'adamw-8bit') return { optimStates: '8bit' };
  throw new ConfigError('unknown optimizer', { file, field: 'optim', expected: 'adamw | adamw-8bit', got: optim });
}

/** `--target-modules`: all-linear, a comma list of names, or (with regex characters) a regex. */
export function parseTargetModules(value: string): readonly string[] | string {
  if (value === 'all-linear' || /[\\^$*+?()[\]{}|]/.test(value)) return value;
  const names = value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (names.length === 0) throw new ConfigError('no target module given', { field: '--target-modules', got: value });
  return names;
}

function numberFlag(value: string, field: string): number {
  const n = Number(value);
  if (value.trim().length === 0 || !Number.isFinite(n)) throw new ConfigError('expected a number', { field, got: value });
  return n;
}

/** The run configuration: --config file, then the flags given. */
function configFrom(o: TrainCliOptions): RunConfigInput {
  const cfg: Record<string, unknown> = o.config === undefined ? {} : readConfigFile(o.config);
  for (const k of NUMERIC) if (typeof o[k] === 'string') cfg[k] = numberFlag(o[k] as string, `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
  for (const k of STRINGS) if (typeof o[k] === 'string') cfg[k] = o[k];
  for (const k of BOOLEANS) if (o[k] === true) cfg[k] = true;
  if (o.trainOnPrompt === true) cfg.completionOnly = false;
  if (o.targetModules !== undefined) cfg.targetModules = parseTargetModules(o.targetModules);
  else if (typeof cfg.targetModules === 'string') cfg.targetModules = parseTargetModules(cfg.targetModules);
  if (o.optim !== undefined) Object.assign(cfg, optimStates(o.optim));
  return cfg as RunConfigInput;
}

function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(1)}s`;
}

function nonNegativeMiB(value: string): number {
  const n = Number(value);
  if (value.trim().length === 0 || !Number.isFinite(n) || n < 0) throw new ConfigError('expected a number of MiB >= 0', { field: '--activation-memory', got: value });
  return n;
}

/** Ctrl-C aborts the signal (the run stops after its step, saying `what`); a second one exits at once. */
export function abortOnSigint(what: string): { signal: AbortSignal; dispose: () => void } {
  const abort = new AbortController();
  const onSigint = (): void => {
    if (abort.signal.aborted) process.exit(130);
    process.stderr.write(`\nqlora: interrupted: ${what} (Ctrl-C again to quit at once)\n`);
    abort.abort();
  };
  process.on('SIGINT', onSigint);
  return { signal: abort.signal, dispose: () => process.off('SIGINT', onSigint) };
}

/** Progress: a bar on a terminal, plain lines (at most ~100 step lines) otherwise. */
export function progressReporter(enabled: boolean, quiet: boolean): { onEvent: (e: TrainEvent) => void; stop: () => void } {
  const tty = process.stderr.isTTY === true;
  const say = (line: string): void => { process.stderr.write(`${line}\n`); };
  let bar: cliProgress.SingleBar | null = null;
  let lineEvery = 1;
  const onEvent = (e: TrainEvent): void => {
    if (e.kind === 'warning') {
      if (bar !== null) bar.stop();
      say(`qlora: warning: ${e.message}`);
      bar = null;
      return;
    }
    if (!enabled) return;
    if (e.kind === 'start') {
      say(`train: ${e.trainExamples} examples${e.evalExamples > 0 ? `, ${e.evalExamples} held out` : ''}, ${e.trainableParams.toLocaleString('en-US')} trainable parameters, steps ${e.startStep + 1}..${e.totalSteps}`);
      lineEvery = Math.max(1, Math.ceil(e.totalSteps / 100));
      if (tty) {
        bar = new cliProgress.SingleBar({ format: 'train {bar} {value}/{total} | loss {loss} | lr {lr} | {tps} tok/s | ETA {etaText}', stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic);
        bar.start(e.totalSteps, e.startStep, { loss: '-', lr: '-', tps: '-', etaText: '?' });
      }
    } else if (e.kind === 'step') {
      const fields = { loss: e.loss.toFixed(4), lr: e.lr.toExponential(2), tps: Math.round(e.tokensPerS), etaText: formatDuration(e.etaS) };
      if (bar !== null) bar.update(e.step, fields);
      else if (e.step % lineEvery === 0 || e.step === e.totalSteps) say(`step ${e.step}/${e.totalSteps} loss ${fields.loss} lr ${fields.lr} grad_norm ${e.gradNorm.toFixed(3)} ${fields.tps} tok/s ETA ${fields.etaText}`);
    } else if (e.kind === 'eval') {
      const line = `eval at step ${e.step}: loss ${e.loss.toFixed(4)} perplexity ${e.perplexity.toFixed(3)}`;
      if (bar !== null) bar.stop();
      say(line);
      if (bar !== null) bar.start(bar.getTotal(), e.step);
    } else if (e.kind === 'checkpoint' && !tty && !quiet) {
      say(`checkpoint ${e.dir}`);
    }
  };
  return { onEvent, stop: () => bar?.stop() };
}

async function runTrain(o: TrainCliOptions): Promise<void> {
  const resume = o.resume !== undefined;
  if (resume && o.out !== undefined && o.out !== o.resume) throw new ConfigError('--resume names the run folder: leave out --out', { field: '--out' });
  const out = o.resume ?? o.out;
  if (out === undefined) throw new ConfigError('--out RUN_DIR is required', { field: '--out', hint: 'or --resume RUN_DIR to continue a run' });
  const config = configFrom(o);
  if (!resume && (config.model === undefined || config.data === undefined)) {
    throw new ConfigError('--model and --data are required', { field: config.model === undefined ? '--model' : '--data', hint: 'or give them in --config' });
  }
  const threads = o.threads === undefined ? undefined : positiveIntegerOption(o.threads, '--threads');
  const kernels = await createKernels({ backend: o.kernels, threads, int16Activations: o.activations === 'int16' });
  verboseLine(`kernels: ${kernels.description}; node ${process.version}`);
  const interrupt = abortOnSigint('saving a checkpoint after this step');
  const progress = progressReporter(o.progress && verbosity() !== 'quiet', o.json === true);
  try {
    const result = await train({ config: resume ? (Object.keys(config).length > 0 ? config : null) : config, out, resume, overwrite: o.overwrite === true, kernels, onEvent: progress.onEvent, signal: interrupt.signal,
      activationMemoryBytes: o.activationMemory === undefined ? undefined : nonNegativeMiB(o.activationMemory) * 2 ** 20 });
    progress.stop();
    if (o.json === true) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else {
      const evalText = result.finalEval === null ? '' : `, eval loss ${result.finalEval.loss.toFixed(4)} (perplexity ${result.finalEval.perplexity.toFixed(3)})`;
      process.stdout.write(`${result.interrupted ? 'interrupted' : 'done'} at step ${result.steps}/${result.totalSteps}: loss ${result.finalLoss.toFixed(4)}${evalText}, ${Math.round(result.tokensPerS)} tokens/s\n`);
      process.stdout.write(`${result.output}\n`);
      if (result.interrupted) process.stdout.write(`continue with: qlora train --resume ${out}\n`);
    }
    if (result.interrupted) process.exitCode = 130;
  } finally {
    progress.stop();
    interrupt.dispose();
    await kernels.dispose();
  }
}
