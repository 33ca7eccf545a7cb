// Tokenizers rebuilt from GGUF metadata (FORMATS.md §9): the Llama-2 vocabulary of
// llama-2-tiny-random.gguf reproduces llama.cpp's 46 golden encodings and the llama2 fixture
// tokenizer; stories260K-F32.gguf (all scores -1000) falls back to token-id merge order and equals
// its tokenizer.json; a gpt2 GGUF made from the GPT-2 tokenizer.json reproduces the gpt-2 vectors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture } from '../helpers/shared.js';
import { FormatError, UnsupportedError } from '../../src/errors.js';
import { TextTokenizer } from '../../src/formats/tokenizer.js';
import { readGgufFile } from '../../src/formats/gguf/reader.js';
import { writeGguf } from '../../src/formats/gguf/writer.js';
import { GgufValueType, type GgufValue } from '../../src/formats/gguf/types.js';
import { GgufTokenType, ggufTextTokenizer, ggufTokenizerObjects } from '../../src/formats/gguf/tokenizer.js';

const SEPARATOR = '\n__ggml_vocab_test__\n';

function goldenCases(vocab: string): { text: string; ids: number[] }[] {
  const dir = fixture('tokenizers', 'llamacpp-tests');
  const texts = readFileSync(join(dir, `ggml-vocab-${vocab}.gguf.inp`), 'utf8').split(SEPARATOR);
  assert.equal(texts.pop(), '');
  const lines = readFileSync(join(dir, `ggml-vocab-${vocab}.gguf.out`), 'utf8').split('\n');
  return texts.map((text, i) => ({ text, ids: lines[i].trim() === '' ? [] : lines[i].trim().split(' ').map(Number) }));
}

const json = (file: string): { model: { merges: unknown[] } } & Record<string, unknown> => JSON.parse(readFileSync(file, 'utf8'));
const dir = mkdtempSync(join(tmpdir(), 'gguf-tok-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('llama-2-tiny-random.gguf: derived merges equal the Llama-2 tokenizer.json; all 46 llama-spm vectors pass', () => {
  const g = readGgufFile(fixture('models', 'llama-2-tiny-random', 'llama-2-tiny-random.gguf'));
  const objects = ggufTokenizerObjects(g);
  assert.equal(objects.mergeSource, 'scores');
  const ref = json(fixture('tokenizers', 'llama2', 'tokenizer.json'));
  assert.deepEqual((objects.tokenizerJson.model as { merges: unknown[] }).merges, ref.model.merges);
  for (const key of ['added_tokens', 'normalizer', 'pre_tokenizer', 'post_processor', 'decoder']) assert.deepEqual(objects.tokenizerJson[key], ref[key], key);
  const tok = TextTokenizer.fromObjects(objects.tokenizerJson, objects.tokenizerConfig);
  const llama2 = TextTokenizer.fromFolder(fixture('tokenizers', 'llama2'));
  const cases = goldenCases('llama-spm');
  assert.equal(cases.length, 46);
  for (const { text, ids } of cases) {
    assert.deepEqual(tok.encode(text, { addSpecialTokens: false }), ids, JSON.stringify(text));
    assert.deepEqual(tok.encode(text), llama2.encode(text), JSON.stringify(text));
    assert.equal(tok.decode(ids), llama2.decode(ids), JSON.stringify(text));
  }
  assert.deepEqual(tok.encode('Hello world'), [1, 15043, 3186]);
  assert.deepEqual([tok.bosTokenId, tok.eosTokenIds, tok.unkTokenId, tok.padTokenId, tok.vocabSize], [1, [2], 0, null, 32000]);
});

test('stories260K-F32.gguf: scores all -1000, merges by token id equal its tokenizer.json', () => {
  const g = readGgufFile(fixture('gguf', 'stories260K-F32.gguf'));
  const objects = ggufTokenizerObjects(g);
  assert.equal(objects.mergeSource, 'token-id');
  const ref = json(fixture('models', 'stories260K', 'tokenizer.json'));
  assert.deepEqual((objects.tokenizerJson.model as { merges: unknown[] }).merges, ref.model.merges);
  const tok = ggufTextTokenizer(g);
  const hf = TextTokenizer.fromFolder(fixture('models', 'stories260K'));
  // §14.2 sentence. llama.cpp, which follows the equal scores, gives 409, 411 for " shiny" here instead.
  const sentence = 'One day, a clever fox found a shiny key under the old oak tree.';
  assert.deepEqual(tok.encode(sentence), [1, 385, 328, 432, 261, 280, 305, 330, 272, 414, 444, 272, 277, 264, 261, 262, 415, 271, 422, 410, 354, 422, 318, 264, 285, 265, 334, 341, 334, 412, 433, 259, 276, 411, 426]);
  for (const { text } of goldenCases('llama-spm')) assert.deepEqual(tok.encode(text), hf.encode(text), JSON.stringify(text));
});

/** A gpt2-model GGUF holding the GPT-2 tokenizer.json the way llama.cpp's converter stores it. */
function writeGpt2Gguf(path: string, pre: string): void {
  const ref = json(fixture('tokenizers', 'gpt2', 'tokenizer.json')) as unknown as { model: { vocab: Record<string, number>; merges: string[] }; added_tokens: Array<{ id: number; special: boolean }> };
  const tokens: string[] = [];
  for (const [t, id] of Object.entries(ref.model.vocab)) tokens[id] = t;
  const types = new Int32Array(tokens.length).fill(GgufTokenType.NORMAL);
  for (const a of ref.added_tokens) types[a.id] = a.special ? GgufTokenType.CONTROL : GgufTokenType.USER_DEFINED;
  const s = (value: string): GgufValue => ({ type: GgufValueType.STRING, value });
  const u32 = (value: number): GgufValue => ({ type: GgufValueType.UINT32, value });
  writeGguf(path, {
    metadata: [
      ['general.architecture', s('gpt2')],
      ['tokenizer.ggml.model', s('gpt2')],
      ['tokenizer.ggml.pre', s(pre)],
      ['tokenizer.ggml.tokens', { type: GgufValueType.ARRAY, value: { elementType: GgufValueType.STRING, values: tokens } }],
      ['tokenizer.ggml.token_type', { type: GgufValueType.ARRAY, value: { elementType: GgufValueType.INT32, values: types } }],
      ['tokenizer.ggml.merges', { type: GgufValueType.ARRAY, value: { elementType: GgufValueType.STRING, values: ref.model.merges } }],
      ['tokenizer.ggml.bos_token_id', u32(50256)],
      ['tokenizer.ggml.eos_token_id', u32(50256)],
    ],
    tensors: [],
  });
}

test('gpt2 tokenizer GGUF: byte-level BPE with stored merges reproduces all 46 gpt-2 vectors', () => {
  const p = join(dir, 'gpt2.gguf');
  writeGpt2Gguf(p, 'gpt-2');
  const objects = ggufTokenizerObjects(readGgufFile(p));
  assert.equal(objects.mergeSource, 'file');
  const tok = TextTokenizer.fromObjects(objects.tokenizerJson, objects.tokenizerConfig);
  const cases = goldenCases('gpt-2');
  assert.equal(cases.length, 46);
  for (const { text, ids } of cases) {
    assert.deepEqual(tok.encode(text), ids, JSON.stringify(text)); // no BOS for GPT-2
    assert.equal(tok.decode(ids), text, JSON.stringify(text));
  }
  assert.deepEqual(tok.eosTokenIds, [50256]);
  writeGpt2Gguf(p, 'falcon');
  assert.throws(() => ggufTokenizerObjects(readGgufFile(p)), (e: unknown) => e instanceof UnsupportedError && e.field === 'tokenizer.ggml.pre' && /falcon/.test(e.message));
});

test('unsupported tokenizer models and broken vocabularies are refused', () => {
  const write = (md: Array<[string, GgufValue]>): ReturnType<typeof readGgufFile> => {
    const p = join(dir, 'bad.gguf');
    writeGguf(p, { metadata: md, tensors: [] });
    return readGgufFile(p);
  };
  const s = (value: string): GgufValue => ({ type: GgufValueType.STRING, value });
  const toks = (values: string[]): GgufValue => ({ type: GgufValueType.ARRAY, value: { elementType: GgufValueType.STRING, values } });
  assert.throws(() => ggufTokenizerObjects(write([['tokenizer.ggml.model', s('bert')], ['tokenizer.ggml.tokens', toks(['a'])]])), (e: unknown) => e instanceof UnsupportedError && /bert/.test(e.message));
  assert.throws(() => ggufTokenizerObjects(write([['tokenizer.ggml.model', s('llama')]])), (e: unknown) => e instanceof FormatError && e.field === 'tokenizer.ggml.tokens');
  assert.throws(() => ggufTokenizerObjects(write([['tokenizer.ggml.model', s('llama')], ['tokenizer.ggml.tokens', toks(['<unk>', '<s>', '</s>', 'a', 'a'])]])), /same token twice/);
  assert.throws(() => ggufTokenizerObjects(write([['tokenizer.ggml.model', s('llama')], ['tokenizer.ggml.tokens', toks(['<unk>', '<s>'])]])), (e: unknown) => e instanceof FormatError && e.field === 'tokenizer.ggml.eos_token_id');
  assert.throws(() => ggufTokenizerObjects(write([['tokenizer.ggml.model', s('gpt2')], ['tokenizer.ggml.tokens', toks(['a'])]])), (e: unknown) => e instanceof FormatError && e.field === 'tokenizer.ggml.merges');
  assert.throws(() => ggufTokenizerObjects(write([['tokenizer.ggml.model', s('llama')], ['tokenizer.ggml.tokens', toks(['<unk>', '<s>', '</s>'])], ['tokenizer.ggml.scores', { type: GgufValueType.ARRAY, value: { elementType: GgufValueType.FLOAT64, values: Float64Array.of(0, 0, 0) } }]])), (e: unknown) => e instanceof FormatError && e.field === 'tokenizer.ggml.scores');
});
