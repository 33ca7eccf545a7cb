// Rebuilds a Hugging Face tokenizer (tokenizer.json + tokenizer_config objects) from GGUF
// tokenizer metadata, for the two tokenizer models llama-family GGUF files use:
//   - "llama": SentencePiece BPE, expressed as HF BPE with byte fallback (the form transformers'
//     LlamaConverter writes). GGUF stores no merges for it, so they are derived from the
//     vocabulary and the scores: every normal piece that splits into two vocabulary pieces gives
//     merges, ordered by the merged piece's score (higher first; ties keep id order; the splits of
//     one piece ordered by the ids of their halves), as transformers' SentencePieceExtractor does.
//     When the scores carry no order (all equal, e.g. the -1000 that gguf-py's LlamaHfVocab writes),
//     merge priority falls back to token id, which is SentencePiece's own order for BPE vocabularies
//     (their scores are -(id - 259), FORMATS.md §9). llama.cpp itself has no priorities to follow
//     in that case and tokenizes such files differently (fixtures/gguf/README.md).
//   - "gpt2": byte-level BPE with the merges stored in the file; the pre-tokenizer comes from
//     `tokenizer.ggml.pre` (only the values mapped below; others are refused by name).
//
// Sources: ggml-org/llama.cpp `src/llama-vocab.cpp` (load, pre-tokenizer regexes), `gguf-py/gguf/
// vocab.py`; huggingface/transformers `convert_slow_tokenizer.py` (LlamaConverter,
// SentencePieceExtractor). FORMATS.md §9, §13.
// Not here: running the tokenizer (formats/tokenizer.ts, TextTokenizer.fromObjects).

import { FormatError, UnsupportedError } from '../../errors.js';
import { TextTokenizer } from '../tokenizer.js';
import { GgufValueType, metaArray, metaBool, metaNumber, metaString, type GgufFile } from './types.js';

/** llama.h enum llama_token_type / gguf-py TokenType. */
export enum GgufTokenType {
  UNDEFINED = 0,
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6,
}

/** SentencePiece's word-boundary marker U+2581. */
const SPM_SPACE = '\u2581';

export const KEY = Object.freeze({
  model: 'tokenizer.ggml.model',
  pre: 'tokenizer.ggml.pre',
  tokens: 'tokenizer.ggml.tokens',
  scores: 'tokenizer.ggml.scores',
  tokenType: 'tokenizer.ggml.token_type',
  merges: 'tokenizer.ggml.merges',
  bos: 'tokenizer.ggml.bos_token_id',
  eos: 'tokenizer.ggml.eos_token_id',
  unk: 'tokenizer.ggml.unknown_token_id',
  pad: 'tokenizer.ggml.padding_token_id',
  addBos: 'tokenizer.ggml.add_bos_token',
  addEos: 'tokenizer.ggml.add_eos_token',
  addSpacePrefix: 'tokenizer.ggml.add_space_prefix',
  chatTemplate: 'tokenizer.chat_template',
});

/** Llama 3's split regex (LLAMA_VOCAB_PRE_TYPE_LLAMA3). */
const LLAMA3_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** Qwen2's split regex (LLAMA_VOCAB_PRE_TYPE_QWEN2): single digits. */
const QWEN2_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const byteLevel = (useRegex: boolean): Record<string, unknown> => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: useRegex });
const splitThenByteLevel = (regex: string): Record<string, unknown> => ({
  type: 'Sequence',
  pretokenizers: [{ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false }, byteLevel(false)],
});

/**
 * HF pre-tokenizer and ignore_merges for each `tokenizer.ggml.pre` value handled. ByteLevel with
 * use_regex applies GPT-2's split regex (llama.cpp LLAMA_VOCAB_PRE_TYPE_GPT2, FORMATS.md §13.3).
 */
const BPE_PRE_TOKENIZERS: Readonly<Record<string, { preTokenizer: Record<string, unknown>; ignoreMerges: boolean }>> = Object.freeze({
  default: { preTokenizer: byteLevel(true), ignoreMerges: false },
  'gpt-2': { preTokenizer: byteLevel(true), ignoreMerges: false },
  'llama-bpe': { preTokenizer: splitThenByteLevel(LLAMA3_REGEX), ignoreMerges: true },
  'llama3': { preTokenizer: splitThenByteLevel(LLAMA3_REGEX), ignoreMerges: true },
  qwen2: { preTokenizer: splitThenByteLevel(QWEN2_REGEX), ignoreMerges: false },
  smollm: {
    preTokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevel(true)] },
    ignoreMerges: false,
  },
});

/** Canonical JSON text (keys sorted) for comparing tokenizer.json fragments. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/**
 * The `tokenizer.ggml.pre` value whose split rules equal a byte-level BPE tokenizer.json's
 * pre_tokenizer (and ignore_merges), for writing GGUF; undefined when llama.cpp has none we know.
 * Inverse of the table above; `gpt-2` is preferred over `default` for plain ByteLevel.
 */
export function ggufPreTokenizerName(preTokenizer: unknown, ignoreMerges: boolean): string | undefined {
  const wanted = canonicalJson(preTokenizer);
  for (const name of ['gpt-2', 'llama-bpe', 'qwen2', 'smollm']) {
    const entry = BPE_PRE_TOKENIZERS[name];
    if (canonicalJson(entry.preTokenizer) === wanted && entry.ignoreMerges === ignoreMerges) return name;
  }
  return undefined;
}

/** How the merges of the rebuilt tokenizer were obtained. */
export type MergeSource = 'file' | 'scores' | 'token-id';

export interface GgufTokenizerObjects {
  readonly tokenizerJson: Record<string, unknown>;
  readonly tokenizerConfig: Record<string, unknown>;
  readonly mergeSource: MergeSource;
}

interface Vocab {
  tokens: string[];
  types: Int32Array | null;
  ids: Map<string, number>;
}

function readVocab(file: GgufFile): Vocab {
  const tokens = metaArray(file, KEY.tokens, GgufValueType.STRING) as string[] | undefined;
  if (tokens === undefined || tokens.length === 0) {
    throw new FormatError('GGUF has no tokenizer vocabulary', { file: file.path, field: KEY.tokens, expected: 'an ARRAY of STRING', got: tokens === undefined ? 'no such key' : 'empty array' });
  }
  const types = (metaArray(file, KEY.tokenType, GgufValueType.INT32) as Int32Array | undefined) ?? null;
  if (types !== null && types.length < tokens.length) {
    throw new FormatError('token_type is shorter than the vocabulary', { file: file.path, field: KEY.tokenType, expected: `>= ${tokens.length} entries`, got: String(types.length) });
  }
  const ids = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (ids.has(t)) {
      throw new UnsupportedError('the vocabulary holds the same token twice; a tokenizer.json cannot express that', { file: file.path, field: `${KEY.tokens}[${i}]`, got: JSON.stringify(t), expected: `unique tokens (first at id ${ids.get(t)})` });
    }
    ids.set(t, i);
  });
  return { tokens, types, ids };
}

function tokenId(file: GgufFile, key: string, vocabSize: number, fallback: number | null): number | null {
  const id = metaNumber(file, key, [GgufValueType.UINT32, GgufValueType.INT32]) ?? fallback;
  if (id === null || id === -1) return null;
  if (id < 0 || id >= vocabSize) throw new FormatError('special token id is outside the vocabulary', { file: file.path, field: key, expected: `0..${vocabSize - 1}`, got: String(id) });
  return id;
}

function addedTokens(v: Vocab): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  if (v.types === null) return out;
  for (let id = 0; id < v.tokens.length; id++) {
    const t = v.types[id];
    if (t !== GgufTokenType.CONTROL && t !== GgufTokenType.UNKNOWN && t !== GgufTokenType.USER_DEFINED) continue;
    out.push({ id, content: v.tokens[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special: t !== GgufTokenType.USER_DEFINED });
  }
  return out;
}

/** True when the scores of normal pieces are not all equal (i.e. they can order merges). */
function scoresAreInformative(scores: Float32Array, v: Vocab): boolean {
  let first: number | undefined;
  for (let id = 0; id < v.tokens.length; id++) {
    if (v.types !== null && v.types[id] !== GgufTokenType.NORMAL) continue;
    if (first === undefined) first = scores[id];
    else if (scores[id] !== first) return true;
  }
  return false;
}

/** SentencePiece BPE merges from vocabulary + priorities (see the file header). */
export function deriveSpmMerges(v: Vocab, priority: (id: number) => number): Array<[string, string]> {
  const merges: Array<{ l: number; r: number; score: number }> = [];
  for (let id = 0; id < v.tokens.length; id++) {
    if (v.types !== null && v.types[id] !== GgufTokenType.NORMAL) continue;
    const chars = Array.from(v.tokens[id]); // code points, like Python string indexing
    if (chars.length < 2) continue;
    const local: Array<{ l: number; r: number; score: number }> = [];
    for (let k = 1; k < chars.length; k++) {
      const l = v.ids.get(chars.slice(0, k).join(''));
      const r = v.ids.get(chars.slice(k).join(''));
      if (l !== undefined && r !== undefined) local.push({ l, r, score: priority(id) });
    }
    local.sort((a, b) => a.l - b.l || a.r - b.r);
    merges.push(...local);
  }
  merges.sort((a, b) => b.score - a.score); // stable: equal scores keep id order
  return merges.map((m) => [v.tokens[m.l], v.tokens[m.r]]);
}

function vocabObject(v: Vocab): Record<string, number> {
  const o: Record<string, number> = {};
  v.tokens.forEach((t, i) => (o[t] = i));
  return o;
}

function templateProcessing(bos: string | null, bosId: number | null, eos: string | null, eosId: number | null): Record<string, unknown> {
  const seq = (id: 'A' | 'B', typeId: number): Record<string, unknown> => ({ Sequence: { id, type_id: typeId } });
  const spec = (tok: string, typeId: number): Record<string, unknown> => ({ SpecialToken: { id: tok, type_id: typeId } });
  const single: Array<Record<string, unknown>> = [];
  const pair: Array<Record<string, unknown>> = [];
  const specials: Record<string, unknown> = {};
  if (bos !== null) {
    single.push(spec(bos, 0));
    pair.push(spec(bos, 0));
    specials[bos] = { id: bos, ids: [bosId], tokens: [bos] };
  }
  single.push(seq('A', 0));
  pair.push(seq('A', 0));
  if (eos !== null) {
    single.push(spec(eos, 0));
    pair.push(spec(eos, 0));
    specials[eos] = { id: eos, ids: [eosId], tokens: [eos] };
  }
  if (bos !== null) pair.push(spec(bos, 1));
  pair.push(seq('B', 1));
  if (eos !== null) pair.push(spec(eos, 1));
  return { type: 'TemplateProcessing', single, pair, special_tokens: specials };
}

/** Builds tokenizer.json and tokenizer_config objects from the GGUF tokenizer metadata. */
export function ggufTokenizerObjects(file: GgufFile): GgufTokenizerObjects {
  const model = metaString(file, KEY.model, true);
  if (model !== 'llama' && model !== 'gpt2') {
    throw new UnsupportedError(`GGUF tokenizer model ${JSON.stringify(model)} is not supported`, { file: file.path, field: KEY.model, expected: 'llama (SentencePiece) or gpt2 (byte-level BPE)', got: model });
  }
  const v = readVocab(file);
  const spm = model === 'llama';
  const n = v.tokens.length;
  const bosId = tokenId(file, KEY.bos, n, spm ? 1 : null);
  const eosId = tokenId(file, KEY.eos, n, spm ? 2 : null);
  const unkId = tokenId(file, KEY.unk, n, spm ? 0 : null);
  const padId = tokenId(file, KEY.pad, n, null);
  const addBos = metaBool(file, KEY.addBos) ?? spm;
  const addEos = metaBool(file, KEY.addEos) ?? false;
  const text = (id: number | null): string | null => (id === null ? null : v.tokens[id]);
  const bos = text(bosId), eos = text(eosId);

  let mergeSource: MergeSource;
  let merges: Array<[string, string]> | string[];
  let normalizer: unknown = null;
  let preTokenizer: unknown;
  let decoder: unknown;
  let ignoreMerges = false;
  if (spm) {
    const scores = (metaArray(file, KEY.scores, GgufValueType.FLOAT32) as Float32Array | undefined) ?? null;
    if (scores !== null && scores.length < n) {
      throw new FormatError('scores are shorter than the vocabulary', { file: file.path, field: KEY.scores, expected: `>= ${n} entries`, got: String(scores.length) });
    }
    const byScore = scores !== null && scoresAreInformative(scores, v);
    mergeSource = byScore ? 'scores' : 'token-id';
    merges = deriveSpmMerges(v, byScore ? (id) => scores[id] : (id) => -id);
    const addSpacePrefix = metaBool(file, KEY.addSpacePrefix) ?? true;
    const replaceSpace = { type: 'Replace', pattern: { String: ' ' }, content: SPM_SPACE };
    normalizer = { type: 'Sequence', normalizers: addSpacePrefix ? [{ type: 'Prepend', prepend: SPM_SPACE }, replaceSpace] : [replaceSpace] };
    preTokenizer = null;
    const decoders: unknown[] = [{ type: 'Replace', pattern: { String: SPM_SPACE }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }];
    if (addSpacePrefix) decoders.push({ type: 'Strip', content: ' ', start: 1, stop: 0 });
    decoder = { type: 'Sequence', decoders };
  } else {
    const stored = metaArray(file, KEY.merges, GgufValueType.STRING) as string[] | undefined;
    if (stored === undefined) throw new FormatError('gpt2 tokenizer has no merges', { file: file.path, field: KEY.merges, expected: 'an ARRAY of STRING', got: 'no such key' });
    mergeSource = 'file';
    merges = stored;
    const pre = metaString(file, KEY.pre) ?? 'default';
    const mapped = BPE_PRE_TOKENIZERS[pre];
    if (mapped === undefined) {
      throw new UnsupportedError(`BPE pre-tokenizer ${JSON.stringify(pre)} is not supported`, { file: file.path, field: KEY.pre, expected: Object.keys(BPE_PRE_TOKENIZERS).join(', '), got: pre });
    }
    preTokenizer = mapped.preTokenizer;
    ignoreMerges = mapped.ignoreMerges;
    decoder = { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true };
  }
  const postProcessor = addBos || addEos
    ? templateProcessing(addBos ? bos : null, bosId, addEos ? eos : null, eosId)
    : spm ? null : { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true };

  const tokenizerJson: Record<string, unknown> = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens(v),
    normalizer,
    pre_tokenizer: preTokenizer,
    post_processor: postProcessor,
    decoder,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: spm ? text(unkId) : null,
      continuing_subword_prefix: spm ? null : '',
      end_of_word_suffix: spm ? null : '',
      fuse_unk: spm,
      byte_fallback: spm,
      ignore_merges: ignoreMerges,
      vocab: vocabObject(v),
      merges,
    },
  };
  const tokenizerConfig: Record<string, unknown> = {
    add_bos_token: addBos,
    add_eos_token: addEos,
    bos_token: bos,
    eos_token: eos,
    unk_token: text(unkId),
    pad_token: text(padId),
    clean_up_tokenization_spaces: false,
    model_max_length: metaNumber(file, 'llama.context_length', [GgufValueType.UINT32]) ?? null,
    tokenizer_class: spm ? 'LlamaTokenizerFast' : 'PreTrainedTokenizerFast',
    chat_template: metaString(file, KEY.chatTemplate) ?? null,
    ...(spm ? { legacy: true } : {}),
  };
  return { tokenizerJson, tokenizerConfig, mergeSource };
}

/** The GGUF file's tokenizer, ready to encode and decode. */
export function ggufTextTokenizer(file: GgufFile): TextTokenizer {
  const { tokenizerJson, tokenizerConfig } = ggufTokenizerObjects(file);
  return TextTokenizer.fromObjects(tokenizerJson, tokenizerConfig);
}
