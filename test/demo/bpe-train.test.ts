// The demo's BPE trainer: the tokenizer.json it writes loads in @huggingface/tokenizers (through
// TextTokenizer), round-trips its training text and text it never saw (byte fallback for new
// characters), segments with the learned merges (fewer tokens than characters), is the same for
// the same text, and converts to GGUF tokenizer metadata (no gaps, SentencePiece-style `llama`).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ggufTokenizerMetadata } from '../../src/export/gguf-tokenizer.js';
import type { GgufArray } from '../../src/formats/gguf/types.js';
import { TextTokenizer } from '../../src/formats/tokenizer.js';
import { trainBpeTokenizer } from '../../scripts/demo/bpe-train.js';

const TEXT = Array.from({ length: 60 }, (_, i) => `Once upon a time, a little ${['fox', 'bird', 'robot'][i % 3]} found ${i % 2 === 0 ? 'a red ball' : 'the old tree'}. It was happy.`).join('\n');

test('trained BPE tokenizer loads, round-trips, merges and converts to GGUF', () => {
  const files = trainBpeTokenizer(TEXT, 320, 256);
  const vocab = (files.tokenizerJson.model as { vocab: Record<string, number>; merges: unknown[] }).vocab;
  assert.equal(Object.keys(vocab).length, 320);
  assert.deepEqual(trainBpeTokenizer(TEXT, 320, 256), files, 'deterministic');
  const tok = TextTokenizer.fromObjects(files.tokenizerJson, files.tokenizerConfig);
  for (const text of [TEXT, 'A robot was happy.', 'Über naïve 🦊 words, never seen!']) {
    const ids = tok.encode(text);
    assert.equal(ids[0], 1, 'BOS first');
    assert.equal(tok.decode(ids, { skipSpecialTokens: true }), text);
  }
  const story = 'Once upon a time, a little fox found a red ball.';
  assert.ok(tok.encode(story).length < story.length / 2, `${tok.encode(story).length} tokens for ${story.length} characters`);
  assert.ok(tok.encode('🦊').some((id) => id >= 3 && id < 259), 'byte fallback for an unseen character');
  const meta = new Map(ggufTokenizerMetadata({ tokenizerJson: files.tokenizerJson, tokenizerConfig: files.tokenizerConfig, chatTemplate: null }, 'demo/tokenizer.json'));
  assert.equal(meta.get('tokenizer.ggml.model')?.value, 'llama');
  assert.equal((meta.get('tokenizer.ggml.tokens')?.value as GgufArray).values.length, 320);
  assert.throws(() => trainBpeTokenizer(TEXT, 270, 256), RangeError);
});
