// TextTokenizer against llama.cpp's golden ids (FORMATS.md §14.4), the stories260K sentence
// (§14.2), chat templates (§13.5) and the incremental decoder (§13.2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TextTokenizer, type ChatMessage } from '../../src/formats/tokenizer.js';
import { ConfigError, FormatError } from '../../src/errors.js';
import { fixture } from '../helpers/shared.js';

const SEPARATOR = '\n__ggml_vocab_test__\n';

function goldenCases(vocab: string): { text: string; ids: number[] }[] {
  const dir = fixture('tokenizers', 'llamacpp-tests');
  const texts = readFileSync(join(dir, `ggml-vocab-${vocab}.gguf.inp`), 'utf8').split(SEPARATOR);
  assert.equal(texts.pop(), '', 'separator after the last test');
  const lines = readFileSync(join(dir, `ggml-vocab-${vocab}.gguf.out`), 'utf8').split('\n');
  return texts.map((text, i) => ({ text, ids: lines[i].trim() === '' ? [] : lines[i].trim().split(' ').map(Number) }));
}

const llama2 = TextTokenizer.fromFolder(fixture('tokenizers', 'llama2'));
const gpt2 = TextTokenizer.fromFolder(fixture('tokenizers', 'gpt2'));
const stories = TextTokenizer.fromFolder(fixture('models', 'stories260K'));

test('Llama-2 vocabulary reproduces all 46 llama.cpp golden encodings (no BOS)', () => {
  const cases = goldenCases('llama-spm');
  assert.equal(cases.length, 46);
  for (const { text, ids } of cases) assert.deepEqual(llama2.encode(text, { addSpecialTokens: false }), ids, JSON.stringify(text));
  assert.deepEqual(llama2.encode('Hello world'), [1, 15043, 3186]);
  assert.deepEqual(llama2.encode(''), [1]);
  assert.equal(llama2.vocabSize, 32000);
  assert.equal(llama2.addsBosToken, true);
  assert.deepEqual([llama2.bosTokenId, llama2.eosTokenIds, llama2.padTokenId, llama2.unkTokenId], [1, [2], null, 0]);
});

test('GPT-2 vocabulary reproduces all 46 llama.cpp golden encodings', () => {
  const cases = goldenCases('gpt-2');
  assert.equal(cases.length, 46);
  for (const { text, ids } of cases) assert.deepEqual(gpt2.encode(text, { addSpecialTokens: false }), ids, JSON.stringify(text));
  assert.equal(gpt2.vocabSize, 50257);
  assert.equal(gpt2.addsBosToken, false);
  assert.equal(gpt2.tokenToId('<|endoftext|>'), 50256);
  assert.equal(gpt2.idToToken(198), 'Ċ');
});

test('decode inverts encode on the golden strings (both vocabularies)', () => {
  for (const [tok, vocab] of [[llama2, 'llama-spm'], [gpt2, 'gpt-2']] as const) {
    for (const { text } of goldenCases(vocab)) {
      assert.equal(tok.decode(tok.encode(text, { addSpecialTokens: false })), text, `${vocab} ${JSON.stringify(text)}`);
    }
  }
  assert.equal(llama2.decode([1, 15043, 3186], { skipSpecialTokens: true }), 'Hello world');
  assert.equal(llama2.decode([1, 15043, 3186]), '<s> Hello world');
});

test('stories260K sentence encodes to the 35 ids of FORMATS §14.2 (with BOS)', () => {
  const ids = stories.encode('One day, a clever fox found a shiny key under the old oak tree.');
  assert.deepEqual(ids, [1, 385, 328, 432, 261, 280, 305, 330, 272, 414, 444, 272, 277, 264, 261, 262, 415, 271, 422, 410, 354, 422, 318, 264, 285, 265, 334, 341, 334, 412, 433, 259, 276, 411, 426]);
  assert.equal(stories.vocabSize, 512);
  assert.equal(stories.chatTemplate, null);
  assert.throws(() => stories.applyChatTemplate([{ role: 'user', content: 'hi' }]), ConfigError);
});

test('stream decoder: concatenated deltas equal the full decode (multi-byte, leading space)', () => {
  const texts = [' Hello world', 'Führer 🦙 and 山田 ', '\n\n  tab\there', 'ö', '🚀 (normal) 😶‍🌫️ (multiple emojis concatenated) ✅'];
  for (const tok of [llama2, gpt2]) {
    for (const text of texts) {
      const ids = tok.encode(text);
      const dec = tok.createStreamDecoder();
      let streamed = '';
      const deltas: string[] = [];
      for (const id of ids) {
        const d = dec.push(id);
        deltas.push(d);
        streamed += d;
      }
      streamed += dec.flush();
      assert.equal(streamed, tok.decode(ids), JSON.stringify(text));
      for (const d of deltas) assert.ok(!d.includes('\uFFFD'), `no broken character in a delta of ${JSON.stringify(text)}`);
    }
  }
  // An unfinished byte sequence is released by flush, as U+FFFD like a full decode.
  const rocket = llama2.encode('🚀', { addSpecialTokens: false });
  assert.ok(rocket.length > 2);
  const dec = llama2.createStreamDecoder();
  assert.equal(dec.push(rocket[0]) + dec.push(rocket[1]), '');
  assert.equal(dec.flush(), llama2.decode(rocket.slice(0, 2)));
});

test('stream decoder with the prompt as context: the first new token keeps its leading space', () => {
  const prompt = llama2.encode('Once upon a time');
  const rest = llama2.encode('Once upon a time there was', { addSpecialTokens: true }).slice(prompt.length);
  assert.ok(rest.length > 0);
  const plain = llama2.createStreamDecoder({ skipSpecialTokens: true });
  const withContext = llama2.createStreamDecoder({ skipSpecialTokens: true, context: prompt.slice(-4) });
  let a = '';
  let b = '';
  for (const id of rest) {
    a += plain.push(id);
    b += withContext.push(id);
  }
  assert.equal(a + plain.flush(), 'there was', 'decoded alone, the leading space is stripped');
  assert.equal(b + withContext.flush(), ' there was');
});

// Chat templates written here (the fixtures ship none); expected strings are FORMATS §13.5's.
const LLAMA2_CHAT_TEMPLATE =
  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}" +
  '{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}' +
  '{% for message in loop_messages %}' +
  "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}" +
  "{% else %}{% set content = message['content'] %}{% endif %}" +
  "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}" +
  "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

// Multi-line on purpose: trim_blocks drops the newline after each block tag, lstrip_blocks the
// indentation before one.
const CHATML_TEMPLATE = `{% for message in messages %}
{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}
  {% if add_generation_prompt %}
{{ '<|im_start|>assistant\\n' }}{% endif %}`;

test('Llama-2 chat template: rendering, ids without doubled BOS, raise_exception', () => {
  const config = JSON.parse(readFileSync(fixture('tokenizers', 'llama2', 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  const tokJson = JSON.parse(readFileSync(fixture('tokenizers', 'llama2', 'tokenizer.json'), 'utf8')) as object;
  const tok = TextTokenizer.fromObjects(tokJson, { ...config, chat_template: LLAMA2_CHAT_TEMPLATE });
  const messages: ChatMessage[] = [
    { role: 'system', content: 'SYS' },
    { role: 'user', content: 'U1' },
    { role: 'assistant', content: 'A1' },
    { role: 'user', content: 'U2' },
  ];
  const text = tok.renderChatTemplate(messages);
  assert.equal(text, '<s>[INST] <<SYS>>\nSYS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]');
  const ids = tok.applyChatTemplate(messages);
  assert.equal(ids[0], 1);
  assert.notEqual(ids[1], 1, 'BOS not doubled');
  assert.equal(ids.filter((i) => i === 1).length, 2);
  assert.equal(ids.filter((i) => i === 2).length, 1, '</s> matched as the special token');
  // Legacy SentencePiece spacing (tokenizer_config legacy: true): the text after an added token is
  // normalized as a new segment, so "[INST]" after <s> starts with "▁[" (518), as in transformers.
  assert.deepEqual(ids.slice(0, 4), [1, 518, 25580, 29962]);
  assert.equal(tok.decode(ids, { skipSpecialTokens: true }), '[INST] <<SYS>>\nSYS\n<</SYS>>\n\nU1 [/INST] A1  [INST] U2 [/INST]');
  assert.throws(
    () => tok.renderChatTemplate([{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }]),
    (e: unknown) => e instanceof ConfigError && /alternate/.test(e.message),
  );
});

test('ChatML template from chat_template.jinja wins over tokenizer_config, named lists pick default', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qlora-tok-'));
  try {
    copyFileSync(fixture('tokenizers', 'gpt2', 'tokenizer.json'), join(dir, 'tokenizer.json'));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({
      eos_token: { __type: 'AddedToken', content: '<|endoftext|>', lstrip: false },
      chat_template: [{ name: 'tool_use', template: 'TOOLS' }, { name: 'default', template: 'DEFAULT {{ messages[0].content }}' }],
    }));
    const fromList = TextTokenizer.fromFolder(dir);
    assert.equal(fromList.eosToken, '<|endoftext|>');
    assert.deepEqual(fromList.eosTokenIds, [50256]);
    assert.equal(fromList.renderChatTemplate([{ role: 'user', content: 'x' }]), 'DEFAULT x');
    writeFileSync(join(dir, 'chat_template.jinja'), CHATML_TEMPLATE);
    const tok = TextTokenizer.fromFolder(dir);
    const text = tok.renderChatTemplate(
      [{ role: 'system', content: 'S' }, { role: 'user', content: 'U' }],
      { addGenerationPrompt: true },
    );
    assert.equal(text, '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n');
    writeFileSync(join(dir, 'chat_template.jinja'), '{% for m in messages %}{{ m.content }');
    assert.throws(() => TextTokenizer.fromFolder(dir).renderChatTemplate([]), FormatError);
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<nope>' }));
    assert.throws(() => TextTokenizer.fromFolder(dir), (e: unknown) => e instanceof FormatError && e.field === 'bos_token');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Llama tokenizer classes follow add_bos_token / add_eos_token from tokenizer_config', () => {
  const tokJson = JSON.parse(readFileSync(fixture('models', 'stories260K', 'tokenizer.json'), 'utf8')) as object;
  const config = JSON.parse(readFileSync(fixture('models', 'stories260K', 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  const hello = stories.encode('Hello', { addSpecialTokens: false });
  const withEos = TextTokenizer.fromObjects(tokJson, { ...config, add_eos_token: true });
  assert.deepEqual(withEos.encode('Hello'), [1, ...hello, 2]);
  const noBos = TextTokenizer.fromObjects(tokJson, { ...config, add_bos_token: false });
  assert.deepEqual(noBos.encode('Hello'), hello);
  assert.equal(noBos.addsBosToken, false);
  // Other classes keep tokenizer.json's post-processor.
  const other = TextTokenizer.fromObjects(tokJson, { ...config, tokenizer_class: 'PreTrainedTokenizerFast', add_bos_token: false });
  assert.deepEqual(other.encode('Hello'), [1, ...hello]);
});

test('folders without tokenizer.json, and tokenizer.json without a model, are refused', () => {
  assert.throws(() => TextTokenizer.fromFolder(fixture('bnb')), /tokenizer\.json/);
  assert.throws(() => TextTokenizer.fromObjects({ version: '1.0' }, null), FormatError);
});
