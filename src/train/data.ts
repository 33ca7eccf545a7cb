// Training data: reads a dataset file (plain text, JSON array or JSONL rows in Alpaca, chat
// `messages` or `text` form), tokenizes it with the model's tokenizer and builds examples of
// token ids with HF-convention labels (labels = ids, -100 = not trained; the model shifts).
// Alpaca prompts are tatsu-lab/stanford_alpaca train.py PROMPT_DICT (FORMATS.md §13.5), masked as
// its `preprocess` does (the first len(encode(prompt)) labels). Chat rows go through the model's
// chat template; assistant spans are found by rendering prefix by prefix.
// Not here: batching and shuffling (train/batches.ts), the trainer.

import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { ConfigError, FormatError, IoError } from '../errors.js';
import { isJsonObject, parseJsonStrict } from '../formats/json-strict.js';
import type { ChatMessage, TextTokenizer } from '../formats/tokenizer.js';

export { BatchIterator, evalBatches, splitDataset, type Batch, type BatchCursor } from './batches.js';

/** The start of a row's JSON for an error message; a value nested too deeply to print is named (found by fuzzing). */
function preview(v: unknown): string {
  try {
    return JSON.stringify(v)?.slice(0, 80) ?? 'nothing';
  } catch {
    return `${Array.isArray(v) ? 'an array' : typeof v} nested too deeply to show`;
  }
}

export const IGNORE_LABEL = -100;

export const ALPACA_PROMPT_WITH_INPUT =
  'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n';
export const ALPACA_PROMPT_NO_INPUT =
  'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n';

export type DatasetFormat = 'auto' | 'text' | 'alpaca' | 'chat' | 'text-field';

export interface DatasetOptions {
  readonly format?: DatasetFormat;
  /** Window / maximum length in tokens. */
  readonly seqLen: number;
  /** Concatenate examples (EOS between) into seqLen windows; text format always packs. */
  readonly packing?: boolean;
  /** Loss only on completions (Alpaca output, assistant turns). Default true (qlora.py train_on_source=False). */
  readonly completionOnly?: boolean;
  /** Examples longer than seqLen without packing. Default 'truncate'. */
  readonly overlong?: 'truncate' | 'drop';
  /** Append EOS to each row example (alpaca, chat, text-field). Default true. */
  readonly addEos?: boolean;
  /** Tokenization progress: rows (JSON) or bytes (text). */
  readonly onProgress?: (done: number, total: number) => void;
}

export interface TrainExample {
  readonly ids: Int32Array;
  /** -100 = ignored. */
  readonly labels: Int32Array;
}

export interface DatasetStats {
  rows: number;
  examples: number;
  tokens: number;
  /** Labels != -100 at positions >= 1 (what the shifted loss counts). */
  trainedTokens: number;
  truncated: number;
  dropped: number;
}

export interface TokenizedDataset {
  readonly file: string;
  readonly format: Exclude<DatasetFormat, 'auto'>;
  readonly examples: readonly TrainExample[];
  readonly stats: DatasetStats;
  readonly warnings: readonly string[];
  /** Padding id for batches: the tokenizer's pad, else EOS, else 0. */
  readonly padId: number;
}

/** Characters of plain text encoded per tokenizer call (cut at a line end), so progress moves. */
const TEXT_CHUNK_CHARS = 1 << 20;

interface Row {
  readonly value: unknown;
  readonly line: number;
}

function readText(file: string): string {
  try {
    const t = readFileSync(file, 'utf8');
    return t.charCodeAt(0) === 0xfeff ? t.slice(1) : t;
  } catch (cause) {
    throw new IoError('cannot read the dataset', { file, cause });
  }
}

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** Start offsets of the elements of a top-level JSON array (text is valid JSON). */
function arrayElementOffsets(text: string): number[] {
  const out: number[] = [];
  let depth = 0;
  let expect = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (expect && !/\s/.test(c)) {
      if (c !== ']') out.push(i);
      expect = false;
    }
    if (c === '"') {
      i++;
      while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    } else if (c === '[' || c === '{') {
      depth++;
      if (depth === 1 && c === '[') expect = true;
    } else if (c === ']' || c === '}') depth--;
    else if (c === ',' && depth === 1) expect = true;
  }
  return out;
}

function readRows(file: string, text: string): Row[] {
  const trimmed = text.trimStart();
  if (extname(file).toLowerCase() === '.json' && trimmed.startsWith('[')) {
    const value = parseJsonStrict(text, file, 'dataset');
    if (!Array.isArray(value)) throw new FormatError('dataset JSON is not an array of rows', { file });
    const offsets = arrayElementOffsets(text);
    return value.map((v, i) => ({ value: v, line: lineAt(text, offsets[i] ?? 0) }));
  }
  const rows: Row[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim().length === 0) continue;
    rows.push({ value: parseJsonStrict(lines[i], `${file}:${i + 1}`, `JSONL line ${i + 1}`), line: i + 1 });
  }
  return rows;
}

function detectFormat(file: string, first: Row | undefined): Exclude<DatasetFormat, 'auto'> {
  if (first === undefined) throw new FormatError('dataset has no rows', { file, expected: 'at least one row' });
  const v = first.value;
  if (isJsonObject(v)) {
    if ('messages' in v) return 'chat';
    if ('instruction' in v && 'output' in v) return 'alpaca';
    if ('text' in v) return 'text-field';
  }
  throw new FormatError('cannot tell the dataset format from its first row', {
    file, field: `line ${first.line}`,
    expected: 'an object with "messages", "instruction" + "output", or "text"',
    got: preview(v),
  });
}

function rowString(row: Row, file: string, field: string, optional = false): string {
  const obj = row.value as Record<string, unknown>;
  const v = obj[field];
  if (v === undefined && optional) return '';
  if (typeof v !== 'string') {
    throw new FormatError(v === undefined ? 'row is missing a field' : 'row field has the wrong type', {
      file, field: `line ${row.line}: ${field}`, expected: 'a string', got: v === undefined ? 'nothing' : typeof v,
    });
  }
  return v;
}

function requireObject(row: Row, file: string): void {
  if (!isJsonObject(row.value)) {
    throw new FormatError('row is not a JSON object', { file, field: `line ${row.line}`, got: preview(row.value) });
  }
}

interface Encoded { ids: number[]; labels: number[] }

function alpacaExample(row: Row, file: string, tok: TextTokenizer, completionOnly: boolean): Encoded {
  const instruction = rowString(row, file, 'instruction');
  const input = rowString(row, file, 'input', true);
  const output = rowString(row, file, 'output');
  const prompt = input.length > 0
    ? ALPACA_PROMPT_WITH_INPUT.replace('{instruction}', () => instruction).replace('{input}', () => input)
    : ALPACA_PROMPT_NO_INPUT.replace('{instruction}', () => instruction);
  const ids = tok.encode(prompt + output);
  const labels = ids.slice();
  if (completionOnly) {
    const promptLen = Math.min(tok.encode(prompt).length, ids.length);
    labels.fill(IGNORE_LABEL, 0, promptLen);
  }
  return { ids, labels };
}

function chatMessages(row: Row, file: string): ChatMessage[] {
  const m = (row.value as Record<string, unknown>).messages;
  if (!Array.isArray(m) || m.length === 0) {
    throw new FormatError('messages must be a non-empty array', { file, field: `line ${row.line}: messages`, got: preview(m) });
  }
  return m.map((msg, i) => {
    const field = `line ${row.line}: messages[${i}]`;
    if (!isJsonObject(msg) || typeof msg.role !== 'string' || typeof msg.content !== 'string') {
      throw new FormatError('message needs string role and content', { file, field, got: preview(msg) });
    }
    return msg as ChatMessage;
  });
}

function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

function chatExample(row: Row, file: string, tok: TextTokenizer, completionOnly: boolean): Encoded {
  const messages = chatMessages(row, file);
  const full = tok.renderChatTemplate(messages);
  const ids = tok.encode(full, { addSpecialTokens: false });
  if (!completionOnly) return { ids, labels: ids.slice() };
  const labels = new Array<number>(ids.length).fill(IGNORE_LABEL);
  for (let i = 0; i < messages.length; i++) {
    if (messages[i].role !== 'assistant') continue;
    const before = tok.renderChatTemplate(messages.slice(0, i), { addGenerationPrompt: true });
    const through = tok.renderChatTemplate(messages.slice(0, i + 1));
    if (!full.startsWith(before) || !full.startsWith(through)) {
      throw new ConfigError('chat template output is not prefix-stable, so assistant turns cannot be located', {
        file, field: `line ${row.line}: messages[${i}]`, hint: 'train without completion-only loss for this template',
      });
    }
    const start = commonPrefixLength(tok.encode(before, { addSpecialTokens: false }), ids);
    const end = commonPrefixLength(tok.encode(through, { addSpecialTokens: false }), ids);
    for (let t = start; t < end; t++) labels[t] = ids[t];
  }
  return { ids, labels };
}

function finish(ds: Omit<TokenizedDataset, 'stats'> & { rows: number; truncated: number; dropped: number }): TokenizedDataset {
  let tokens = 0;
  let trained = 0;
  for (const ex of ds.examples) {
    tokens += ex.ids.length;
    for (let t = 1; t < ex.labels.length; t++) if (ex.labels[t] !== IGNORE_LABEL) trained++;
  }
  const stats = { rows: ds.rows, examples: ds.examples.length, tokens, trainedTokens: trained, truncated: ds.truncated, dropped: ds.dropped };
  return { file: ds.file, format: ds.format, examples: ds.examples, warnings: ds.warnings, padId: ds.padId, stats };
}

/** Cuts one token stream into windows of seqLen (the last one shorter, kept when it has a target). */
function packWindows(ids: Int32Array, labels: Int32Array, seqLen: number): TrainExample[] {
  const out: TrainExample[] = [];
  for (let s = 0; s < ids.length; s += seqLen) {
    const e = Math.min(s + seqLen, ids.length);
    if (e - s < 2) break;
    out.push({ ids: ids.subarray(s, e), labels: labels === ids ? ids.subarray(s, e) : labels.subarray(s, e) });
  }
  return out;
}

function encodePlainText(text: string, tok: TextTokenizer, onProgress?: (done: number, total: number) => void): Int32Array {
  // Chunks after the first are encoded without special tokens; a SentencePiece-style normalizer
  // prepends "▁" to each chunk, so at most one token per MiB differs from a whole-file encode.
  const parts: number[][] = [];
  let start = 0;
  let total = 0;
  while (start < text.length) {
    let end = Math.min(start + TEXT_CHUNK_CHARS, text.length);
    if (end < text.length) {
      const nl = text.indexOf('\n', end);
      end = nl < 0 ? text.length : nl + 1;
    }
    const ids = tok.encode(text.slice(start, end), { addSpecialTokens: start === 0 });
    parts.push(ids);
    total += ids.length;
    start = end;
    onProgress?.(start, text.length);
  }
  const out = new Int32Array(total);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

function positiveInt(v: number, field: string): void {
  if (!Number.isSafeInteger(v) || v < 2) throw new ConfigError('must be an integer >= 2', { field, got: String(v) });
}

/** Reads and tokenizes a dataset file into training examples. */
export function loadDataset(path: string, tokenizer: TextTokenizer, opts: DatasetOptions): TokenizedDataset {
  positiveInt(opts.seqLen, 'seqLen');
  const text = readText(path);
  const eos = tokenizer.eosTokenIds[0];
  const padId = tokenizer.padTokenId ?? eos ?? 0;
  const warnings: string[] = [];
  const ext = extname(path).toLowerCase();
  let format: Exclude<DatasetFormat, 'auto'>;
  let rows: Row[] = [];
  if (opts.format === 'text' || ((opts.format ?? 'auto') === 'auto' && ext !== '.json' && ext !== '.jsonl')) {
    format = 'text';
  } else {
    rows = readRows(path, text);
    format = opts.format === undefined || opts.format === 'auto' ? detectFormat(path, rows[0]) : opts.format;
  }
  if (format === 'text') {
    if (text.trim().length === 0) throw new FormatError('dataset is empty', { file: path, expected: 'some text' });
    const ids = encodePlainText(text, tokenizer, opts.onProgress);
    const examples = packWindows(ids, ids, opts.seqLen);
    if (examples.length === 0) throw new FormatError('dataset has fewer than 2 tokens', { file: path });
    return finish({ file: path, format, examples, warnings, padId, rows: 1, truncated: 0, dropped: 0 });
  }
  if (rows.length === 0) throw new FormatError('dataset has no rows', { file: path, expected: 'at least one row' });
  if (format === 'chat' && tokenizer.chatTemplate === null) {
    throw new ConfigError('chat dataset, but the model has no chat template', {
      file: path, field: 'messages', hint: 'add chat_template.jinja to the model folder, or convert the rows to Alpaca form',
    });
  }
  const completionOnly = opts.completionOnly ?? true;
  const addEos = opts.addEos ?? true;
  const encoded: Encoded[] = [];
  let noTarget = 0;
  rows.forEach((row, i) => {
    requireObject(row, path);
    let ex: Encoded;
    if (format === 'alpaca') ex = alpacaExample(row, path, tokenizer, completionOnly);
    else if (format === 'chat') ex = chatExample(row, path, tokenizer, completionOnly);
    else { const ids = tokenizer.encode(rowString(row, path, 'text')); ex = { ids, labels: ids.slice() }; }
    const wantsEos = addEos || opts.packing === true;
    if (wantsEos && eos !== undefined && ex.ids[ex.ids.length - 1] !== eos) {
      const lastTrained = ex.labels.length > 0 && ex.labels[ex.labels.length - 1] !== IGNORE_LABEL;
      ex.ids.push(eos);
      ex.labels.push(lastTrained || !completionOnly ? eos : IGNORE_LABEL);
    }
    encoded.push(ex);
    opts.onProgress?.(i + 1, rows.length);
  });
  if (wantsEosMissing(addEos, eos)) warnings.push('the tokenizer has no EOS token: examples are not terminated');
  let examples: TrainExample[];
  let truncated = 0;
  let dropped = 0;
  if (opts.packing === true) {
    const n = encoded.reduce((s, e) => s + e.ids.length, 0);
    const ids = new Int32Array(n);
    const labels = new Int32Array(n);
    let o = 0;
    for (const e of encoded) { ids.set(e.ids, o); labels.set(e.labels, o); o += e.ids.length; }
    examples = packWindows(ids, labels, opts.seqLen);
  } else {
    examples = [];
    for (const e of encoded) {
      let ids = e.ids;
      let labels = e.labels;
      if (ids.length > opts.seqLen) {
        if (opts.overlong === 'drop') { dropped++; continue; }
        truncated++;
        ids = ids.slice(0, opts.seqLen);
        labels = labels.slice(0, opts.seqLen);
      }
      if (!labels.some((l, t) => t > 0 && l !== IGNORE_LABEL)) { noTarget++; dropped++; continue; }
      examples.push({ ids: Int32Array.from(ids), labels: Int32Array.from(labels) });
    }
  }
  if (truncated > 0) warnings.push(`${truncated} examples longer than ${opts.seqLen} tokens were truncated`);
  if (dropped - noTarget > 0) warnings.push(`${dropped - noTarget} examples longer than ${opts.seqLen} tokens were dropped`);
  if (noTarget > 0) warnings.push(`${noTarget} examples had no trained tokens and were dropped`);
  if (examples.length === 0) {
    throw new ConfigError('every example was dropped', { file: path, field: 'seqLen', got: String(opts.seqLen), hint: 'raise --seq-len or use truncation' });
  }
  return finish({ file: path, format, examples, warnings, padId, rows: rows.length, truncated, dropped });
}

function wantsEosMissing(addEos: boolean, eos: number | undefined): boolean {
  return addEos && eos === undefined;
}

/** Rebuilds a dataset around a subset of its examples (stats recomputed). */
export function withExamples(ds: TokenizedDataset, examples: readonly TrainExample[]): TokenizedDataset {
  return finish({ ...ds, examples, rows: ds.stats.rows, truncated: ds.stats.truncated, dropped: ds.stats.dropped });
}
