// GGUF tokenizer metadata (FORMATS.md §9) from a tokenizer.json: `llama` (SentencePiece-style BPE
// with byte fallback) with scores derived from the merge ranks, so llama.cpp's score-driven merger
// follows the same order as the HF BPE (llama.cpp's converter writes -1000 for every score on this
// path); or `gpt2` (byte-level BPE) with the merges and a pre-tokenizer name llama.cpp knows.
// Not here: the weights (gguf-model.ts), reading GGUF tokenizers (formats/gguf/tokenizer.ts).

import { UnsupportedError } from '../errors.js';
import { ggufPreTokenizerName, GgufTokenType } from '../formats/gguf/tokenizer.js';
import { GgufValueType, type GgufValue } from '../formats/gguf/types.js';
import type { TokenizerFiles } from './base.js';

type Entry = readonly [string, GgufValue];
const BYTE_TOKEN = /^<0x[0-9A-F]{2}>$/;
/** Score of pieces no merge produces (SentencePiece gives Llama-2's unreachable pieces -1e9). */
const UNREACHABLE_SCORE = -1e9;

const str = (value: string): GgufValue => ({ type: GgufValueType.STRING, value });
const u32 = (value: number): GgufValue => ({ type: GgufValueType.UINT32, value });
const bool = (value: boolean): GgufValue => ({ type: GgufValueType.BOOL, value });

function specialText(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v !== null && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return null;
}

function mergePair(m: unknown): [string, string] {
  if (Array.isArray(m)) return [String(m[0]), String(m[1])];
  const s = String(m);
  const at = s.indexOf(' ');
  return [s.slice(0, at), s.slice(at + 1)];
}

/** The tokenizer metadata entries, in the order llama.cpp's converter writes them. */
export function ggufTokenizerMetadata(t: TokenizerFiles, file: string): Entry[] {
  const model = t.tokenizerJson.model as Record<string, unknown>;
  if (model?.type !== 'BPE') throw new UnsupportedError('only BPE tokenizers can be written to GGUF', { file, field: 'model.type', expected: 'BPE', got: String(model?.type) });
  const vocab = model.vocab as Record<string, number>;
  const added = (t.tokenizerJson.added_tokens as Array<{ id: number; content: string; special: boolean }> | undefined) ?? [];
  const size = Math.max(...Object.values(vocab), ...added.map((a) => a.id)) + 1;
  const tokens = new Array<string>(size).fill('');
  for (const [tok, id] of Object.entries(vocab)) tokens[id] = tok;
  for (const a of added) tokens[a.id] = a.content;
  const missing = tokens.findIndex((x) => x === '');
  if (missing >= 0) throw new UnsupportedError('the vocabulary has a gap (GGUF needs every id)', { file, field: 'model.vocab', got: `no token for id ${missing}` });
  const types = new Int32Array(size).fill(GgufTokenType.NORMAL);
  const addedById = new Map(added.map((a) => [a.id, a]));
  const unk = typeof model.unk_token === 'string' ? vocab[model.unk_token] : undefined;
  const merges = ((model.merges as unknown[]) ?? []).map(mergePair);
  const cfg = t.tokenizerConfig;
  const isSpm = model.byte_fallback === true;
  const out: Entry[] = [];
  if (isSpm) {
    const scores = new Float32Array(size).fill(UNREACHABLE_SCORE);
    for (let id = 0; id < size; id++) {
      const a = addedById.get(id);
      if (id === unk) types[id] = GgufTokenType.UNKNOWN;
      else if (a !== undefined) types[id] = a.special ? GgufTokenType.CONTROL : GgufTokenType.USER_DEFINED;
      else if (BYTE_TOKEN.test(tokens[id])) types[id] = GgufTokenType.BYTE;
      if (types[id] !== GgufTokenType.NORMAL || Array.from(tokens[id]).length === 1) scores[id] = 0;
    }
    const idOf = new Map(tokens.map((tok, id) => [tok, id]));
    merges.forEach(([l, r], rank) => {
      const id = idOf.get(l + r);
      if (id !== undefined && scores[id] === UNREACHABLE_SCORE) scores[id] = -(rank + 1);
    });
    const normalizer = JSON.stringify(t.tokenizerJson.normalizer ?? null);
    out.push(['tokenizer.ggml.model', str('llama')], ['tokenizer.ggml.pre', str('default')]);
    out.push(['tokenizer.ggml.tokens', { type: GgufValueType.ARRAY, value: { elementType: GgufValueType.STRING, values: tokens } }]);
    out.push(['tokenizer.ggml.scores', { type: GgufValueType.ARRAY, value: { elementType: GgufValueType.FLOAT32, values: scores } }]);
    out.push(['tokenizer.ggml.token_type', { type: GgufValueType.ARRAY, value: { elementType: GgufValueType.INT32, values: types } }]);
    out.push(['tokenizer.ggml.add_space_prefix', bool(normalizer.includes('"Prepend"') || normalizer.includes('Metaspace'))]);
  } else {
    const pre = ggufPreTokenizerName(t.tokenizerJson.pre_tokenizer, model.ignore_merges === true);
    if (pre === undefined) {
      throw new UnsupportedError('the pre-tokenizer has no llama.cpp equivalent qlora-ts knows', { file, field: 'pre_tokenizer', expected: 'GPT-2 ByteLevel, Llama 3, Qwen2 or SmolLM splitting' });
    }
    for (const a of added) types[a.id] = a.special ? GgufTokenType.CONTROL : GgufTokenType.USER_DEFINED;
    out.push(['tokenizer.ggml.model', str('gpt2')], ['tokenizer.ggml.pre', str(pre)]);
    out.push(['tokenizer.ggml.tokens', { type: GgufValueType.ARRAY, value: { elementType: GgufValueType.STRING, values: tokens } }]);
    out.push(['tokenizer.ggml.token_type', { type: GgufValueType.ARRAY, value: { elementType: GgufValueType.INT32, values: types } }]);
    out.push(['tokenizer.ggml.merges', { type: GgufValueType.ARRAY, value: { elementType: GgufValueType.STRING, values: merges.map(([l, r]) => `${l} ${r}`) } }]);
  }
  const idOfText = (v: unknown): number | undefined => {
    const s = specialText(v);
    if (s === null) return undefined;
    return vocab[s] ?? added.find((a) => a.content === s)?.id;
  };
  const bos = idOfText(cfg.bos_token);
  const eos = idOfText(cfg.eos_token);
  const pad = idOfText(cfg.pad_token);
  if (bos !== undefined) out.push(['tokenizer.ggml.bos_token_id', u32(bos)]);
  if (eos !== undefined) out.push(['tokenizer.ggml.eos_token_id', u32(eos)]);
  if (unk !== undefined) out.push(['tokenizer.ggml.unknown_token_id', u32(unk)]);
  if (pad !== undefined) out.push(['tokenizer.ggml.padding_token_id', u32(pad)]);
  out.push(['tokenizer.ggml.add_bos_token', bool(typeof cfg.add_bos_token === 'boolean' ? cfg.add_bos_token : isSpm)]);
  out.push(['tokenizer.ggml.add_eos_token', bool(cfg.add_eos_token === true)]);
  if (t.chatTemplate !== null) out.push(['tokenizer.chat_template', str(t.chatTemplate)]);
  return out;
}
