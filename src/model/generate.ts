// Text generation with a LlamaModel: the prompt (text, token ids or chat messages) is processed in
// one forward pass that fills the KV cache, then one token per forward until EOS, a stop string,
// the token budget, the context end or an abort. Tokens are chosen by sampling.ts; text is streamed
// through the tokenizer's incremental decoder (FORMATS.md §13.2: decode differences, never token
// by token).
//
// Stop strings are matched on the decoded text of the generated tokens. Text that could be the
// start of a stop string is held back until it is known not to be, so the streamed deltas never
// contain any part of a stop string and always concatenate to the final `text`, which ends before
// the stop string (as llama.cpp's server and OpenAI-style APIs do; `ids` keep every generated
// token, including the ones that spelled the stop string or the EOS token).
//
// Timings: `promptMs` covers the prompt forward and the choice of the first token; `genMs` covers
// the remaining tokens, one forward + choice each, so genTokensPerS = (generatedTokens − 1) / genMs.
// Batches (generateBatch): prompts are left-padded and masked, then one forward per step decodes a
// token for every sequence; generate() is the batch of one.
//
// Also here: sampling defaults from generation_config.json as transformers applies them.
// Not here: the forward pass (llama.ts), token selection (sampling.ts), tokenization (formats/).

import { ConfigError, ShapeError } from '../errors.js';
import type { GenerationConfig } from '../formats/hf-folder.js';
import type { ChatMessage, StreamDecoder, TextTokenizer } from '../formats/tokenizer.js';
import type { KvCache } from './kv-cache.js';
import type { ForwardOptions } from './llama.js';
import { Sampler, resolveSampling, type SamplingConfig, type SamplingOptions } from './sampling.js';

// ---- what generation needs from a model and its tokenizer -----------------------------------------------

/** What generation uses of a tokenizer (formats/tokenizer.ts). */
export type GenerationTokenizer = Pick<TextTokenizer, 'eosTokenIds' | 'encode' | 'decode' | 'applyChatTemplate' | 'createStreamDecoder'>;

/** What generation uses of a model (LlamaModel fits). */
export interface GenerationModel {
  readonly config: { readonly vocabSize: number; readonly maxPositionEmbeddings: number; readonly eosTokenIds?: readonly number[] };
  readonly tokenizer: object | null;
  createKvCache(batch: number, maxTokens: number): KvCache;
  forward(ids: Int32Array, B: number, T: number, opts: ForwardOptions): Float32Array;
}

// ---- options and result -------------------------------------------------------------------------------

/** A text prompt, token ids (used as given: no BOS is added), or chat messages for the chat template. */
export type GenerationInput = string | readonly number[] | Int32Array | { readonly messages: readonly ChatMessage[] };

export interface GenerateOptions extends SamplingOptions {
  /** Tokens to generate at most (the context end may stop earlier). Default 128. */
  maxNewTokens?: number;
  /** Stop when the generated text contains one of these; the text ends before it. */
  stop?: readonly string[];
  /** Token ids that end generation. Default: the tokenizer's and the model config's EOS ids. */
  eosTokenIds?: readonly number[];
  /** Called for every generated token with the text it releases (may be '' while held back); index = sequence in a batch. */
  onToken?: (delta: string, id: number, index: number) => void;
  /** Checked between tokens; once aborted, the result so far is returned with finishReason 'aborted'. */
  signal?: AbortSignal;
  /** Tokenizer to use when the model has none attached. */
  tokenizer?: GenerationTokenizer;
}

export type FinishReason = 'eos' | 'stop' | 'length' | 'aborted';

export interface GenerationResult {
  /** Generated text (without the prompt, special tokens or the stop string). */
  readonly text: string;
  /** Generated token ids (including a final EOS or the tokens of a stop string). */
  readonly ids: number[];
  readonly promptIds: number[];
  readonly promptTokens: number;
  readonly generatedTokens: number;
  readonly promptMs: number;
  readonly genMs: number;
  readonly promptTokensPerS: number;
  readonly genTokensPerS: number;
  readonly finishReason: FinishReason;
}

const DEFAULT_MAX_NEW_TOKENS = 128;
/** Prompt ids the stream decoder continues from. */
const STREAM_CONTEXT_IDS = 4;

// ---- generation ----------------------------------------------------------------------------------------

function tokenizerOf(model: GenerationModel, opts: GenerateOptions): GenerationTokenizer {
  const tok = opts.tokenizer ?? (model.tokenizer as GenerationTokenizer | null);
  if (tok === null || typeof tok.createStreamDecoder !== 'function') {
    throw new ConfigError('generation needs a tokenizer', { field: 'tokenizer', hint: 'load the model from a folder with tokenizer.json, or pass options.tokenizer' });
  }
  return tok;
}

function promptIdsOf(input: GenerationInput, tok: GenerationTokenizer): number[] {
  if (typeof input === 'string') return tok.encode(input);
  if (Array.isArray(input) || input instanceof Int32Array) return Array.from(input as ArrayLike<number>);
  return tok.applyChatTemplate((input as { messages: readonly ChatMessage[] }).messages, { addGenerationPrompt: true });
}

/** Length of the longest suffix of `text` that is a proper prefix of one of `stops`. */
function partialStopSuffix(text: string, stops: readonly string[]): number {
  let best = 0;
  for (const s of stops) {
    for (let n = Math.min(s.length - 1, text.length); n > best; n--) {
      if (text.endsWith(s.slice(0, n))) {
        best = n;
        break;
      }
    }
  }
  return best;
}

/** Earliest index of any stop string in `text`, or -1. */
function firstStop(text: string, stops: readonly string[]): number {
  let at = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at;
}

/** Lets timers, I/O and signal handlers run between tokens (a forward pass blocks the thread). */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** One sequence being generated: its sampler, tokens, streamed text and stop-string hold-back. */
class SequenceState {
  readonly ids: number[] = [];
  readonly history: number[];
  text = '';
  finishReason: FinishReason | null = null;
  private pending = '';
  private flushed = false;
  private readonly decoder: StreamDecoder;
  private readonly sampler: Sampler;

  constructor(
    readonly index: number,
    readonly promptIds: number[],
    tok: GenerationTokenizer,
    sampling: SamplingConfig,
    private readonly stops: readonly string[],
    private readonly eos: ReadonlySet<number>,
    private readonly onToken: ((delta: string, id: number, index: number) => void) | undefined,
  ) {
    this.history = promptIds.slice();
    // The prompt's tail as context: the text continues it ("time" + " was", not "timewas").
    this.decoder = tok.createStreamDecoder({ skipSpecialTokens: true, context: promptIds.slice(-STREAM_CONTEXT_IDS) });
    this.sampler = new Sampler(sampling);
  }

  /** Choose the next token from this sequence's logits [V] (modified), stream it, check the ends. */
  step(logits: Float32Array, budget: number): number {
    const id = this.sampler.next(logits, this.history);
    this.ids.push(id);
    this.history.push(id);
    if (this.eos.has(id)) {
      this.finishReason = 'eos';
    } else {
      this.pending += this.decoder.push(id);
      const at = firstStop(this.pending, this.stops);
      if (at >= 0) {
        this.emit(this.pending.slice(0, at), id);
        this.pending = '';
        this.finishReason = 'stop';
      } else {
        const hold = partialStopSuffix(this.pending, this.stops);
        this.emit(this.pending.slice(0, this.pending.length - hold), id);
        this.pending = this.pending.slice(this.pending.length - hold);
      }
    }
    if (this.finishReason === null && this.ids.length >= budget) this.finishReason = 'length';
    return id;
  }

  /** End (idempotent): unless a stop string ended it, release the held-back text and the decoder's tail. */
  finish(reason: FinishReason): void {
    this.finishReason ??= reason;
    if (this.flushed || this.finishReason === 'stop') return;
    this.flushed = true;
    const tail = this.pending + this.decoder.flush();
    this.pending = '';
    if (tail.length > 0) this.emit(tail, this.ids[this.ids.length - 1]);
  }

  private emit(delta: string, id: number): void {
    this.text += delta;
    this.onToken?.(delta, id, this.index);
  }
}

function checkPrompt(promptIds: readonly number[], V: number, context: number, field: string): void {
  if (promptIds.length === 0) throw new ShapeError('the prompt has no tokens', { field, hint: 'give some text, or token ids starting with BOS' });
  for (let i = 0; i < promptIds.length; i++) {
    const id = promptIds[i];
    if (!Number.isInteger(id) || id < 0 || id >= V) throw new ShapeError('prompt token id outside the vocabulary', { field: `${field}[${i}]`, expected: `0 <= id < ${V}`, got: String(id) });
  }
  if (promptIds.length >= context) {
    throw new ShapeError('the prompt does not fit in the model context', {
      field,
      expected: `fewer than ${context} tokens (max_position_embeddings), leaving room to generate`,
      got: `${promptIds.length} tokens`,
    });
  }
}

/**
 * Generate a continuation of `input`. Greedy by default (temperature 0); see SamplingOptions for
 * temperature / top-k / top-p / min-p / repetition penalty / seed. Between tokens the event loop
 * runs, so an abort signal raised by a signal handler or timer is seen before the next token.
 */
export async function generate(model: GenerationModel, input: GenerationInput, opts: GenerateOptions = {}): Promise<GenerationResult> {
  const onToken = opts.onToken;
  const [only] = await generateBatch(model, [input], { ...opts, onToken: onToken === undefined ? undefined : (delta, id) => onToken(delta, id, 0) });
  return only;
}

/**
 * Generate continuations of several inputs together: prompts are left-padded to one length and
 * masked (the model's attention mask), then every step decodes one token of each unfinished
 * sequence in one forward pass. Sequence i has its own sampler seeded with `seed + i`, so its
 * tokens do not depend on the others in the batch (they equal generate(inputs[i]) with that seed)
 * and several copies of one prompt give different samples. Timings are the batch's
 * (promptTokens counts this sequence's own tokens).
 */
export async function generateBatch(model: GenerationModel, inputs: readonly GenerationInput[], opts: GenerateOptions = {}): Promise<GenerationResult[]> {
  const tok = tokenizerOf(model, opts);
  const sampling = resolveSampling(opts);
  const maxNew = opts.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS;
  if (!Number.isInteger(maxNew) || maxNew < 0) throw new ConfigError('invalid maxNewTokens', { field: 'maxNewTokens', expected: 'an integer >= 0', got: String(maxNew) });
  if (inputs.length === 0) return [];
  const stops = (opts.stop ?? []).filter((s) => s.length > 0);
  const eos = new Set(opts.eosTokenIds ?? [...tok.eosTokenIds, ...(model.config.eosTokenIds ?? [])]);
  const V = model.config.vocabSize;
  const context = model.config.maxPositionEmbeddings;

  const B = inputs.length;
  const seqs = inputs.map((input, b) => {
    const promptIds = promptIdsOf(input, tok);
    checkPrompt(promptIds, V, context, B === 1 ? 'prompt' : `prompts[${b}]`);
    return new SequenceState(b, promptIds, tok, { ...sampling, seed: sampling.seed + b }, stops, eos, opts.onToken);
  });
  const T = Math.max(...seqs.map((q) => q.promptIds.length));
  const budget = Math.min(maxNew, context - T);
  if (budget === 0) return seqs.map((q) => result(q, 0, 0, 'length'));

  // Left padding: padded slots hold a valid id (never attended to: the mask starts each row at
  // its first real token) and the model's default positions start every prompt at 0.
  const padded = seqs.some((q) => q.promptIds.length < T);
  const ids = new Int32Array(B * T);
  const mask = new Uint8Array(B * T);
  for (const q of seqs) {
    const offset = T - q.promptIds.length;
    ids.set(q.promptIds, q.index * T + offset);
    mask.fill(1, q.index * T + offset, (q.index + 1) * T);
  }
  const cache = model.createKvCache(B, T + budget);
  let promptMs = 0;
  let genMs = 0;
  try {
    let t0 = performance.now();
    let logits = model.forward(ids, B, T, { cache, startPos: 0, logits: 'last', attentionMask: padded ? mask : undefined });
    const next = new Int32Array(B);
    for (let step = 0; ; step++) {
      for (const q of seqs) {
        // A finished sequence keeps a slot in the batch; its last token is fed again, unused.
        next[q.index] = q.finishReason === null ? q.step(logits.subarray(q.index * V, (q.index + 1) * V), budget) : next[q.index];
      }
      const t1 = performance.now();
      if (step === 0) promptMs = t1 - t0;
      else genMs += t1 - t0;
      if (seqs.every((q) => q.finishReason !== null)) break;
      await yieldToEventLoop();
      if (opts.signal?.aborted === true) {
        for (const q of seqs) q.finish('aborted');
        break;
      }
      t0 = performance.now();
      logits = model.forward(next, B, 1, { cache, startPos: T + step, logits: 'last' });
    }
  } finally {
    cache.dispose();
  }
  for (const q of seqs) q.finish('length');
  return seqs.map((q) => result(q, promptMs, genMs, q.finishReason ?? 'length'));
}

function result(q: SequenceState, promptMs: number, genMs: number, finishReason: FinishReason): GenerationResult {
  const rate = (n: number, ms: number): number => (n > 0 && ms > 0 ? (n * 1000) / ms : 0);
  return {
    text: q.text,
    ids: q.ids,
    promptIds: q.promptIds,
    promptTokens: q.promptIds.length,
    generatedTokens: q.ids.length,
    promptMs,
    genMs,
    promptTokensPerS: rate(q.promptIds.length, promptMs),
    genTokensPerS: rate(q.ids.length - 1, genMs),
    finishReason,
  };
}

// ---- defaults from generation_config.json ------------------------------------------------------------

/** transformers' GenerationConfig top_k default, used when sampling and nothing sets top_k. */
export const HF_DEFAULT_TOP_K = 50;

/**
 * Sampling options as transformers resolves them: explicit options win, then the model's
 * generation_config.json (formats/hf-folder.ts resolves its defaults). Sampling happens when an
 * explicit temperature > 0 is given, or else when the file sets do_sample; greedy otherwise.
 */
export function resolveGenerationSampling(explicit: SamplingOptions, gen: GenerationConfig | null): SamplingOptions {
  const sampling = explicit.temperature !== undefined ? explicit.temperature > 0 : gen?.doSample === true;
  return {
    temperature: sampling ? (explicit.temperature ?? gen?.temperature ?? 1) : 0,
    topK: explicit.topK ?? (sampling ? (gen?.topK ?? HF_DEFAULT_TOP_K) : 0),
    topP: explicit.topP ?? gen?.topP ?? 1,
    minP: explicit.minP ?? gen?.minP ?? 0,
    repetitionPenalty: explicit.repetitionPenalty ?? gen?.repetitionPenalty ?? 1,
    seed: explicit.seed ?? 0,
  };
}
