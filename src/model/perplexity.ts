// Perplexity over a long token stream with strided windows — the Hugging Face recipe
// (transformers docs "Perplexity of fixed-length models"): windows of `context` tokens start
// every `stride` tokens; each window scores only the tokens not scored by the previous one
// (earlier tokens serve as context with label -100), so every token after the first is scored
// once, with up to context − stride tokens of left context.
// Not here: reading or tokenizing datasets (the CLI / train data pipeline does that).
import { ConfigError } from '../errors.js';
import { IGNORE_INDEX } from '../nn/loss.js';
import type { LlamaModel } from './llama.js';

export interface PerplexityOptions {
  /** Window length in tokens; default (and maximum) the model context. */
  readonly context?: number;
  /** Window start step; default = context (no overlap). 1 <= stride <= context. */
  readonly stride?: number;
  /** Called after each window with tokens scored so far / to score. */
  readonly onProgress?: (scored: number, total: number) => void;
}

export interface PerplexityResult {
  /** Summed negative log-likelihood (nats) over the scored tokens. */
  readonly nll: number;
  readonly tokens: number;
  /** nll / tokens */
  readonly loss: number;
  /** exp(loss) */
  readonly perplexity: number;
  readonly windows: number;
  readonly context: number;
  readonly stride: number;
}

export function evaluatePerplexity(model: LlamaModel, tokens: Int32Array, opts: PerplexityOptions = {}): PerplexityResult {
  const maxContext = model.config.maxPositionEmbeddings;
  const context = opts.context ?? maxContext;
  const stride = opts.stride ?? context;
  if (!Number.isInteger(context) || context < 2 || context > maxContext) {
    throw new ConfigError('evaluation context must be between 2 and the model context', { field: 'context', expected: `2..${maxContext}`, got: String(context) });
  }
  if (!Number.isInteger(stride) || stride < 1 || stride > context) {
    throw new ConfigError('stride must be between 1 and the context', { field: 'stride', expected: `1..${context}`, got: String(stride) });
  }
  if (tokens.length < 2) throw new ConfigError('need at least 2 tokens to evaluate', { field: 'data', expected: '>= 2 tokens', got: String(tokens.length) });
  const total = tokens.length - 1;
  let nll = 0;
  let scored = 0;
  let windows = 0;
  let prevEnd = 0;
  for (let begin = 0; ; begin += stride) {
    const end = Math.min(begin + context, tokens.length);
    const T = end - begin;
    const newTokens = end - prevEnd;
    const ids = tokens.subarray(begin, end);
    const labels = Int32Array.from(ids);
    labels.fill(IGNORE_INDEX, 0, T - newTokens);
    const r = model.loss(ids, 1, T, labels);
    nll += r.sum;
    scored += r.count;
    windows++;
    prevEnd = end;
    opts.onProgress?.(scored, total);
    if (end === tokens.length) break;
  }
  const loss = nll / scored;
  return { nll, tokens: scored, loss, perplexity: Math.exp(loss), windows, context, stride };
}
