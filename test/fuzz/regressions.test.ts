// Bugs the parser fuzzer found, each pinned by the smallest input that showed it (the fuzz case
// that found it is named). Every one must now end in a typed error, quickly.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError, UnsupportedError } from '../../src/errors.js';
import { TextTokenizer } from '../../src/formats/tokenizer.js';
import { loadDataset } from '../../src/train/data.js';
import { fixture } from '../helpers/shared.js';

/** stories260K's tokenizer.json after `edit`, loaded from a scratch folder. */
function storiesTokenizerWith(edit: (json: Record<string, unknown> & { model: { vocab: Record<string, unknown> } }) => void): () => TextTokenizer {
  const json = JSON.parse(readFileSync(fixture('models', 'stories260K', 'tokenizer.json'), 'utf8')) as Record<string, unknown> & { model: { vocab: Record<string, unknown> } };
  edit(json);
  return () => {
    const dir = mkdtempSync(join(tmpdir(), 'fuzz-regression-'));
    try {
      writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
      return TextTokenizer.fromFolder(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test('tokenizer.json: a vocab id far beyond the vocabulary is refused (the library walked 2e9 slots: a hang)', () => {
  const load = storiesTokenizerWith((j) => { j.model.vocab.e = 2114090185; });
  const t0 = performance.now();
  assert.throws(load, (e: unknown) => e instanceof FormatError && e.field === 'model.vocab.e' && e.got === '2114090185');
  assert.ok(performance.now() - t0 < 5000);
});

test('tokenizer.json: a fractional or non-numeric vocab id is refused (decode threw an untyped Error)', () => {
  assert.throws(storiesTokenizerWith((j) => { j.model.vocab.a = 1e-210; }), (e: unknown) => e instanceof FormatError && e.field === 'model.vocab.a');
  assert.throws(storiesTokenizerWith((j) => { j.model.vocab.a = [1]; }), FormatError);
  assert.throws(storiesTokenizerWith((j) => { j.added_tokens = [{ id: -1, content: '<x>' }]; }), (e: unknown) => e instanceof FormatError && e.field === 'added_tokens[0].id');
});

test('tokenizer.json: a post-processor the library accepts but cannot apply gives a typed error at encode', () => {
  // Fuzz case: a TemplateProcessing item replaced by a string; the library threw a TypeError.
  const tok = storiesTokenizerWith((j) => {
    j.post_processor = { type: 'TemplateProcessing', single: ['Y', { Sequence: { id: 'A', type_id: 0 } }], pair: [], special_tokens: {} };
  })();
  assert.throws(() => tok.encode('hello'), (e: unknown) => e instanceof UnsupportedError && /could not be used to encode/.test(e.message));
});

test('dataset JSONL: a row nested 20,000 deep is a FormatError naming the line (the error message overflowed the stack)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fuzz-regression-'));
  try {
    const file = join(dir, 'data.jsonl');
    writeFileSync(file, `${JSON.stringify({ instruction: 'a', output: 'b' })}\n${'['.repeat(20_000)}${']'.repeat(20_000)}\n`);
    const tok = TextTokenizer.fromFolder(fixture('models', 'stories260K'));
    assert.throws(() => loadDataset(file, tok, { seqLen: 32 }), (e: unknown) => e instanceof FormatError && /line 2/.test(String(e.field)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
