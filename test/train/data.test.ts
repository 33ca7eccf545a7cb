// Data pipeline: formats, completion masks, packing, overlong handling, bad input, split and
// batch order determinism, on the shared data sets and the stories260K tokenizer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { TextTokenizer } from '../../src/formats/tokenizer.js';
import { ConfigError, FormatError } from '../../src/errors.js';
import { ALPACA_PROMPT_NO_INPUT, BatchIterator, evalBatches, loadDataset, splitDataset } from '../../src/train/data.js';
import { DATA, fixture } from '../helpers/shared.js';

const MODEL = fixture('models', 'stories260K');
const tok = TextTokenizer.fromFolder(MODEL);
const tmp = mkdtempSync(join(tmpdir(), 'qlora-data-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
}

test('plain text is packed into seqLen windows with BOS first, labels = ids', () => {
  let last = 0;
  const ds = loadDataset(join(DATA, 'tinyshakespeare.txt'), tok, { seqLen: 256, onProgress: (d) => { last = d; } });
  assert.equal(ds.format, 'text');
  assert.equal(last, readFileSync(join(DATA, 'tinyshakespeare.txt'), 'utf8').length);
  assert.equal(ds.examples[0].ids[0], tok.bosTokenId);
  assert.ok(ds.examples.slice(0, -1).every((e) => e.ids.length === 256));
  assert.deepEqual([...ds.examples[3].labels], [...ds.examples[3].ids]);
  assert.equal(ds.stats.tokens, ds.examples.reduce((s, e) => s + e.ids.length, 0));
  assert.equal(ds.stats.trainedTokens, ds.stats.tokens - ds.examples.length);
});

test('alpaca rows: stanford prompt masked, output + EOS trained', () => {
  const ds = loadDataset(join(DATA, 'identity.json'), tok, { seqLen: 512 });
  assert.equal(ds.format, 'alpaca');
  assert.equal(ds.stats.rows, 91);
  const ex = ds.examples[0];
  const prompt = ALPACA_PROMPT_NO_INPUT.replace('{instruction}', 'hi');
  const promptLen = tok.encode(prompt).length;
  assert.ok(ex.labels.slice(0, promptLen).every((l) => l === -100));
  assert.equal(ex.ids[ex.ids.length - 1], tok.eosTokenIds[0]);
  assert.equal(ex.labels[ex.labels.length - 1], tok.eosTokenIds[0]);
  const trained = [...ex.ids].filter((_, t) => ex.labels[t] !== -100);
  assert.match(tok.decode(trained.slice(0, -1)), /^Hello! I am \{\{name\}\}/);
  const all = loadDataset(join(DATA, 'alpaca-seed-tasks.jsonl'), tok, { seqLen: 64, completionOnly: false });
  assert.ok(all.stats.truncated > 0 && all.warnings.some((w) => w.includes('truncated')));
  assert.ok(all.examples.every((e) => e.ids.length <= 64 && e.labels[1] !== -100));
  const dropped = loadDataset(join(DATA, 'alpaca-seed-tasks.jsonl'), tok, { seqLen: 200, overlong: 'drop' });
  assert.ok(dropped.stats.dropped > 0 && dropped.stats.examples > 0);
  assert.equal(dropped.stats.examples + dropped.stats.dropped, 175);
  // Completion-only rows cut inside the prompt train nothing: dropped, and said so.
  assert.throws(() => loadDataset(join(DATA, 'alpaca-seed-tasks.jsonl'), tok, { seqLen: 64 }), (e: unknown) => e instanceof ConfigError && /every example was dropped/.test(e.message));
});

test('packing concatenates rows with EOS into windows and keeps the masks', () => {
  const ds = loadDataset(join(DATA, 'identity.json'), tok, { seqLen: 128, packing: true });
  const unpacked = loadDataset(join(DATA, 'identity.json'), tok, { seqLen: 512 });
  assert.equal(ds.stats.tokens, unpacked.stats.tokens);
  assert.ok(ds.examples.slice(0, -1).every((e) => e.ids.length === 128));
});

test('chat rows: template rendered, only assistant turns trained', () => {
  const dir = join(tmp, 'chat-model');
  cpSync(MODEL, dir, { recursive: true });
  const template = "{% for m in messages %}{% if m.role == 'user' %}{{ bos_token }}[INST] {{ m.content }} [/INST]{% else %} {{ m.content }} {{ eos_token }}{% endif %}{% endfor %}";
  writeFileSync(join(dir, 'chat_template.jinja'), template);
  const chatTok = TextTokenizer.fromFolder(dir);
  const file = write('chat.jsonl', JSON.stringify({ messages: [{ role: 'user', content: 'Hi there' }, { role: 'assistant', content: 'Once upon a time' }, { role: 'user', content: 'More' }, { role: 'assistant', content: 'The end' }] }) + '\n');
  const ds = loadDataset(file, chatTok, { seqLen: 256 });
  assert.equal(ds.format, 'chat');
  const ex = ds.examples[0];
  const trained = [...ex.ids].filter((_, t) => ex.labels[t] !== -100);
  assert.equal(chatTok.decode(trained), ' Once upon a time </s> The end </s>'.replace(/^ /, ''));
  assert.throws(() => loadDataset(file, tok, { seqLen: 256 }), (e: unknown) => e instanceof ConfigError && /chat template/.test(e.message));
});

test('bad input: typed errors naming file, line and field', () => {
  const cases: [string, string, RegExp][] = [
    ['empty.jsonl', '\n\n', /no rows/],
    ['empty.txt', '  \n', /empty/],
    ['badjson.jsonl', '{"text": "a"}\n{"text": \n', /line 2/],
    ['missing.jsonl', '{"instruction": "a", "output": "b"}\n{"instruction": "a"}\n', /line 2: output.*missing|line 2: output/],
    ['wrongtype.jsonl', '{"text": "a"}\n{"text": 3}\n', /line 2: text.*expected a string, got number/],
    ['array.json', '[\n  {"instruction": "a", "output": "b"},\n  {"instruction": 1, "output": "b"}\n]', /line 3: instruction/],
  ];
  for (const [name, text, re] of cases) {
    const file = write(name, text);
    assert.throws(() => loadDataset(file, tok, { seqLen: 64 }), (e: unknown) => e instanceof FormatError && re.test(e.message) && e.message.includes(file.split('/').pop()!), name);
  }
  const long = write('long.jsonl', JSON.stringify({ text: 'Once upon a time there was a little girl.' }) + '\n');
  assert.throws(() => loadDataset(long, tok, { seqLen: 4, overlong: 'drop' }), ConfigError);
});

test('split and batch order are seeded, cursor resumes, padding right with -100', () => {
  const ds = loadDataset(join(DATA, 'alpaca-seed-tasks.jsonl'), tok, { seqLen: 1024 });
  assert.equal(ds.examples.length + ds.stats.dropped, 175);
  const a = splitDataset(ds, 0.1, 7);
  const b = splitDataset(ds, 0.1, 7);
  assert.equal(a.eval.examples.length, Math.round(ds.examples.length * 0.1));
  assert.deepEqual(a.eval.examples.map((e) => e.ids[5]), b.eval.examples.map((e) => e.ids[5]));
  assert.equal(a.train.examples.length + a.eval.examples.length, ds.examples.length);
  const it = new BatchIterator(a.train, 4, 3, { padId: 0 });
  const first = Array.from({ length: it.batchesPerEpoch + 3 }, () => it.next());
  const cur = it.cursor();
  assert.deepEqual(cur, { epoch: 1, index: 3 });
  const again = new BatchIterator(a.train, 4, 3, { padId: 0 });
  for (const batch of first) assert.deepEqual(again.next().ids, batch.ids);
  const resumed = new BatchIterator(a.train, 4, 3, { padId: 0, cursor: JSON.parse(JSON.stringify(cur)) });
  assert.deepEqual(resumed.next().ids, again.next().ids);
  assert.notDeepEqual(first[0].ids, first[it.batchesPerEpoch].ids);
  const batch = first[0];
  for (let bi = 0; bi < batch.B; bi++) {
    const row = batch.labels.subarray(bi * batch.T, (bi + 1) * batch.T);
    const ids = batch.ids.subarray(bi * batch.T, (bi + 1) * batch.T);
    let len = batch.T;
    while (len > 0 && ids[len - 1] === 0) len--;
    assert.ok(row.subarray(len).every((l) => l === -100));
  }
  const ev = evalBatches(a.eval, 5, 0);
  assert.equal(ev.length, 4);
  assert.equal(ev.reduce((s, x) => s + x.tokens, 0), a.eval.stats.trainedTokens);
});
