// generate() on stories260K (f32 weights, reference kernels): the greedy continuation of
// FORMATS.md §14.2, stop strings, token budgets, EOS, seeds, streaming, chat prompts, aborts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { ConfigError, ShapeError } from '../../src/errors.js';
import { TextTokenizer } from '../../src/formats/tokenizer.js';
import { RefKernels } from '../../src/kernels/ref/index.js';
import { generate, generateBatch, resolveGenerationSampling, type GenerateOptions } from '../../src/model/generate.js';
import { openHfFolder } from '../../src/formats/hf-folder.js';
import { loadModel } from '../../src/model/load.js';
import { fixture } from '../helpers/shared.js';

const STORIES = fixture('models', 'stories260K');
/** FORMATS.md §14.2: first 64 greedy ids from BOS. */
const GREEDY_FROM_BOS = [
  403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433,
  426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267, 337, 335, 312, 432, 398, 312, 286, 267, 414, 270, 333, 415,
  426, 13, 438, 310,
];
/** FORMATS.md §14.2: the first 120 greedy tokens decoded. */
const GREEDY_TEXT =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily\'s mom said, "Lily, let\'s go to the park." Lily was sad and didn\'t know what to do. She said, "I want to play with your ball, but';
const BOS = [1];

describe('generate on stories260K', () => {
  const kernels = new RefKernels();
  let model: Awaited<ReturnType<typeof loadModel>>;
  let tokenizer: TextTokenizer;
  const run = (input: Parameters<typeof generate>[1], opts: GenerateOptions = {}): ReturnType<typeof generate> => generate(model, input, { eosTokenIds: [2], ...opts });

  before(async () => {
    model = await loadModel(STORIES, { kernels, quant: 'none' });
    assert.ok(model.tokenizer !== null, 'loadModel attaches the folder tokenizer');
    tokenizer = model.tokenizer;
  });
  after(() => model.dispose());

  it('greedy from BOS gives the 64 reference ids and text', async () => {
    const r = await run(BOS, { maxNewTokens: 64 });
    assert.deepEqual(r.ids, GREEDY_FROM_BOS);
    assert.equal(r.finishReason, 'length');
    assert.equal(r.promptTokens, 1);
    assert.equal(r.generatedTokens, 64);
    assert.ok(r.text.length > 100 && GREEDY_TEXT.startsWith(r.text), JSON.stringify(r.text));
    assert.equal(r.text, tokenizer.decode(r.ids, { skipSpecialTokens: true }));
    assert.ok(r.promptMs > 0 && r.genMs > 0 && r.genTokensPerS > 0 && r.promptTokensPerS > 0);
  });

  it('120 greedy tokens decode to the reference text; streamed deltas concatenate to it', async () => {
    const deltas: string[] = [];
    const seen: number[] = [];
    const r = await run(BOS, { maxNewTokens: 120, onToken: (d, id) => (deltas.push(d), seen.push(id)) });
    assert.equal(r.text, GREEDY_TEXT);
    assert.equal(deltas.join(''), r.text);
    assert.deepEqual(seen, r.ids);
    assert.equal(r.ids.length, 120);
  });

  it('a text prompt is encoded with BOS and continued', async () => {
    const r = await run('Once upon a time', { maxNewTokens: 8 });
    assert.deepEqual(r.promptIds, tokenizer.encode('Once upon a time'));
    assert.equal(r.promptIds[0], 1);
    // The greedy story continues the same way after its own first four tokens.
    const fromBos = await run(BOS, { maxNewTokens: 12 });
    assert.deepEqual(r.promptIds.slice(1), fromBos.ids.slice(0, 4));
    assert.deepEqual(r.ids, fromBos.ids.slice(4, 12));
  });

  it('stop strings end the text before them and are never streamed, even in part', async () => {
    const deltas: string[] = [];
    const r = await run(BOS, { maxNewTokens: 64, stop: ['Lily'], onToken: (d) => deltas.push(d) });
    assert.equal(r.finishReason, 'stop');
    assert.equal(r.text, 'Once upon a time, there was a little girl named ');
    assert.equal(deltas.join(''), r.text);
    assert.ok(tokenizer.decode(r.ids).endsWith('Lily'), 'the ids include the tokens that spelled the stop string');
    // Two stops: the earliest in the text wins; a stop that never occurs changes nothing.
    const two = await run(BOS, { maxNewTokens: 64, stop: ['park', 'time', 'zebra'] });
    assert.equal(two.text, 'Once upon a ');
    const none = await run(BOS, { maxNewTokens: 20, stop: ['zebra'] });
    assert.equal(none.finishReason, 'length');
    assert.equal(none.text, (await run(BOS, { maxNewTokens: 20 })).text);
  });

  it('a held-back partial stop match is released when it does not complete', async () => {
    // "Once upon a time, there was a little girl named Lily." contains "Lil" but not "Lilac".
    const deltas: string[] = [];
    const r = await run(BOS, { maxNewTokens: 14, stop: ['Lilac'], onToken: (d) => deltas.push(d) });
    assert.equal(r.finishReason, 'length');
    assert.equal(deltas.join(''), r.text);
    assert.equal(r.text, (await run(BOS, { maxNewTokens: 14 })).text);
  });

  it('max new tokens, EOS and the context end', async () => {
    const five = await run(BOS, { maxNewTokens: 5 });
    assert.deepEqual(five.ids, GREEDY_FROM_BOS.slice(0, 5));
    assert.equal(five.finishReason, 'length');
    const zero = await run(BOS, { maxNewTokens: 0 });
    assert.deepEqual(zero.ids, []);
    // Treat id 432 (the 5th greedy token) as EOS: generation ends on it and it is not decoded.
    const eos = await run(BOS, { maxNewTokens: 64, eosTokenIds: [432] });
    assert.equal(eos.finishReason, 'eos');
    assert.deepEqual(eos.ids, GREEDY_FROM_BOS.slice(0, 5));
    assert.equal(eos.text, tokenizer.decode(GREEDY_FROM_BOS.slice(0, 4)));
    // Context 512: a 500-token prompt leaves room for 12 tokens.
    const long = new Array<number>(500).fill(403);
    long[0] = 1;
    const clipped = await run(long, { maxNewTokens: 64 });
    assert.equal(clipped.generatedTokens, 12);
    assert.equal(clipped.finishReason, 'length');
    await assert.rejects(run(new Array<number>(512).fill(1), { maxNewTokens: 1 }), (e: unknown) => e instanceof ShapeError && e.field === 'prompt');
    await assert.rejects(run([1, 512]), (e: unknown) => e instanceof ShapeError && e.field === 'prompt[1]');
    await assert.rejects(run([]), ShapeError);
  });

  it('sampling is reproducible for a seed and differs between seeds', async () => {
    const opts = { maxNewTokens: 24, temperature: 1, seed: 7 };
    const a = await run(BOS, opts);
    const b = await run(BOS, opts);
    const c = await run(BOS, { ...opts, seed: 8 });
    assert.deepEqual(a.ids, b.ids);
    assert.equal(a.text, b.text);
    assert.notDeepEqual(a.ids, c.ids);
    // top-k 1 is greedy whatever the temperature and seed.
    assert.deepEqual((await run(BOS, { maxNewTokens: 16, temperature: 1.5, topK: 1, seed: 3 })).ids, GREEDY_FROM_BOS.slice(0, 16));
    // A strong repetition penalty changes the greedy story.
    assert.notDeepEqual((await run(BOS, { maxNewTokens: 32, repetitionPenalty: 2 })).ids, GREEDY_FROM_BOS.slice(0, 32));
  });

  it('chat messages go through the chat template; no template is a ConfigError', async () => {
    await assert.rejects(run({ messages: [{ role: 'user', content: 'hi' }] }), ConfigError);
    const json = JSON.parse(readFileSync(`${STORIES}/tokenizer.json`, 'utf8')) as object;
    const config = JSON.parse(readFileSync(`${STORIES}/tokenizer_config.json`, 'utf8')) as object;
    const template = '{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}{% if add_generation_prompt %} time{% endif %}';
    const chatTok = TextTokenizer.fromObjects(json, config, template);
    const r = await generate(model, { messages: [{ role: 'user', content: 'Once upon a' }] }, { tokenizer: chatTok, maxNewTokens: 4 });
    assert.deepEqual(r.promptIds, tokenizer.encode('Once upon a time'));
    assert.deepEqual(r.ids, (await run('Once upon a time', { maxNewTokens: 4 })).ids);
  });

  it('an abort signal stops between tokens and returns what was generated', async () => {
    const ac = new AbortController();
    const deltas: string[] = [];
    const r = await run(BOS, { maxNewTokens: 64, signal: ac.signal, onToken: (d) => (deltas.push(d), deltas.length === 3 && ac.abort()) });
    assert.equal(r.finishReason, 'aborted');
    assert.deepEqual(r.ids, GREEDY_FROM_BOS.slice(0, 3));
    assert.equal(deltas.join(''), r.text);
  });

  it('an abort from a timer is seen between tokens (the event loop runs during generation)', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 1);
    const r = await run(BOS, { maxNewTokens: 64, signal: ac.signal });
    assert.equal(r.finishReason, 'aborted');
    assert.ok(r.ids.length >= 1 && r.ids.length < 64);
    assert.deepEqual(r.ids, GREEDY_FROM_BOS.slice(0, r.ids.length));
  });

  it('a left-padded batch gives each sequence the same tokens as generating it alone', async () => {
    const prompts = ['Once upon a time', BOS, 'One day, a clever fox found a shiny key'];
    const check = async (opts: GenerateOptions): Promise<void> => {
      const deltas = ['', '', ''];
      const batch = await generateBatch(model, prompts, { eosTokenIds: [2], ...opts, onToken: (d, _id, i) => (deltas[i] += d) });
      for (let i = 0; i < prompts.length; i++) {
        const alone = await run(prompts[i], { ...opts, seed: (opts.seed ?? 0) + i });
        assert.deepEqual(batch[i].ids, alone.ids, `sequence ${i}`);
        assert.equal(batch[i].text, alone.text);
        assert.equal(batch[i].finishReason, alone.finishReason);
        assert.equal(deltas[i], batch[i].text);
      }
    };
    await check({ maxNewTokens: 16 });
    // Sequences end at different steps (EOS / stop string) while the others go on.
    await check({ maxNewTokens: 24, eosTokenIds: [432], stop: ['park'] });
    await check({ maxNewTokens: 12, temperature: 1, topP: 0.9, seed: 11 });
    assert.deepEqual(await generateBatch(model, [], {}), []);
    // Copies of one prompt sample differently (seed + index).
    const copies = await generateBatch(model, [BOS, BOS], { maxNewTokens: 12, temperature: 1, seed: 5 });
    assert.notDeepEqual(copies[0].ids, copies[1].ids);
  });

  it('needs a tokenizer', async () => {
    await assert.rejects(generate({ ...model, tokenizer: null, config: model.config, createKvCache: () => model.createKvCache(1, 2), forward: () => new Float32Array(512) }, BOS), ConfigError);
  });
});

describe('sampling defaults from generation_config.json', () => {
  it('follows transformers: greedy unless sampling is asked for, top_k 50 by default', async () => {
    const g = openHfFolder(STORIES);
    g.weights.close();
    assert.equal(g.generationConfig.doSample, false);
    assert.deepEqual(resolveGenerationSampling({}, g.generationConfig), { temperature: 0, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1, seed: 0 });
    assert.deepEqual(resolveGenerationSampling({ temperature: 0.7, seed: 3 }, g.generationConfig), { temperature: 0.7, topK: 50, topP: 1, minP: 0, repetitionPenalty: 1, seed: 3 });
    const sampled = { ...g.generationConfig, doSample: true, temperature: 0.6, topP: 0.9 };
    assert.equal(resolveGenerationSampling({}, sampled).temperature, 0.6);
    assert.equal(resolveGenerationSampling({}, sampled).topP, 0.9);
    assert.equal(resolveGenerationSampling({ topK: 5 }, sampled).topK, 5);
    assert.equal(resolveGenerationSampling({ temperature: 0 }, sampled).temperature, 0);
    assert.equal(resolveGenerationSampling({ temperature: 1 }, null).topK, 50);
  });
});
