// Fuzz targets for the JSON formats: config.json (+ generation_config.json, through the HF
// folder opener), tokenizer files (tokenizer.json, tokenizer_config.json, chat_template.jinja)
// and PEFT LoRA adapters (adapter_config.json + adapter_model.safetensors). Each mixes
// generated objects and mutations of the real fixtures in ../shared/fixtures.

import fc from 'fast-check';
import { openHfFolder } from '../../src/formats/hf-folder.js';
import { readPeftAdapter, type LinearShape } from '../../src/formats/peft.js';
import { TextTokenizer } from '../../src/formats/tokenizer.js';
import type { CaseFiles, FuzzTarget } from './harness.js';
import { applyByteOps, applyJsonMutation, byteOps, hostileJsonValue, jsonMutation, type ByteOp, type JsonMutation } from './mutate.js';
import { applyHeaderMutation, encodeSafetensors, headerMutation, type HeaderMutation } from './safetensors-bytes.js';
import { fixtureBytes, stages } from './targets-binary.js';

const decoder = new TextDecoder();
const encoder = new TextEncoder();
const parseFixture = (...parts: string[]): unknown => JSON.parse(decoder.decode(fixtureBytes(...parts)));

/** A value for a known key: usually plausible, sometimes hostile. */
const valueFor = (plausible: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> => fc.oneof({ weight: 3, arbitrary: plausible }, { weight: 1, arbitrary: hostileJsonValue });

// ------------------------------------------------------------------------------------------------
// config.json

const CONFIG_FIXTURES = ['models/stories260K', 'bnb-models/stories260K-nf4-dq', 'models/llama-2-tiny-random/hf', 'bnb/linear4bit_nf4_dq_bf16'] as const;

const POSITIVE = fc.constantFrom(1, 2, 4, 8, 16, 64, 172, 512);
const generatedConfig = fc.record({
  architectures: valueFor(fc.constantFrom(['LlamaForCausalLM'], ['MistralForCausalLM'], ['Qwen2ForCausalLM'], ['GPT2'])),
  model_type: valueFor(fc.constantFrom('llama', 'mistral', 'qwen2', 'gpt2')),
  hidden_size: valueFor(POSITIVE),
  intermediate_size: valueFor(POSITIVE),
  num_attention_heads: valueFor(POSITIVE),
  num_key_value_heads: valueFor(POSITIVE),
  num_hidden_layers: valueFor(POSITIVE),
  head_dim: valueFor(POSITIVE),
  vocab_size: valueFor(POSITIVE),
  max_position_embeddings: valueFor(POSITIVE),
  rms_norm_eps: valueFor(fc.constantFrom(1e-5, 1e-6)),
  rope_theta: valueFor(fc.constantFrom(10000, 500000)),
  rope_scaling: valueFor(fc.constantFrom(null, { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 }, { type: 'linear', factor: 2 })),
  rope_parameters: valueFor(fc.constantFrom({ rope_theta: 10000, rope_type: 'default' })),
  tie_word_embeddings: valueFor(fc.boolean()),
  hidden_act: valueFor(fc.constantFrom('silu', 'gelu')),
  torch_dtype: valueFor(fc.constantFrom('float32', 'bfloat16', 'float16', 'auto')),
  bos_token_id: valueFor(fc.constantFrom(1, 0, null)),
  eos_token_id: valueFor(fc.constantFrom(2, [2, 3], null)),
  attention_bias: valueFor(fc.boolean()),
  quantization_config: valueFor(fc.constantFrom({ quant_method: 'bitsandbytes', load_in_4bit: true, bnb_4bit_quant_type: 'nf4', bnb_4bit_use_double_quant: true }, { quant_method: 'gptq' })),
}, { requiredKeys: [] });

const generatedGenerationConfig = fc.record({
  temperature: valueFor(fc.constantFrom(0.7, 1, 0)),
  top_p: valueFor(fc.constantFrom(0.9, 1)),
  top_k: valueFor(fc.constantFrom(50, 0)),
  do_sample: valueFor(fc.boolean()),
  max_length: valueFor(POSITIVE),
  max_new_tokens: valueFor(POSITIVE),
  repetition_penalty: valueFor(fc.constantFrom(1.1, 1)),
  eos_token_id: valueFor(fc.constantFrom(2, [2, 3])),
}, { requiredKeys: [] });

/** Weights for the folder opener: one valid tensor (the header is all openHfFolder reads). */
const MINIMAL_WEIGHTS = encodeSafetensors([{ name: 'model.norm.weight', dtype: 'F32', shape: [2], data: new Uint8Array(8) }]);

type ConfigSpec =
  | { kind: 'mutate'; fixture: (typeof CONFIG_FIXTURES)[number]; config: JsonMutation; generation: JsonMutation | null }
  | { kind: 'generated'; config: unknown; generation: unknown };

export const configTarget: FuzzTarget<ConfigSpec> = {
  format: 'config.json',
  cases: fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('mutate' as const), fixture: fc.constantFrom(...CONFIG_FIXTURES), config: jsonMutation, generation: fc.option(jsonMutation, { freq: 3 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('generated' as const), config: generatedConfig, generation: fc.option(generatedGenerationConfig) }) },
  ),
  materialize(spec) {
    const files: CaseFiles = { 'model.safetensors': MINIMAL_WEIGHTS };
    if (spec.kind === 'generated') {
      files['config.json'] = encoder.encode(JSON.stringify(spec.config));
      if (spec.generation !== null) files['generation_config.json'] = encoder.encode(JSON.stringify(spec.generation));
      return files;
    }
    files['config.json'] = applyJsonMutation(parseFixture(spec.fixture, 'config.json'), spec.config, 2);
    if (spec.generation !== null) files['generation_config.json'] = applyJsonMutation({ bos_token_id: 1, eos_token_id: 2, max_length: 512, temperature: 0.7 }, spec.generation);
    return files;
  },
  run(dir) {
    openHfFolder(dir).weights.close();
  },
};

// ------------------------------------------------------------------------------------------------
// Tokenizer files

/** Folders with tokenizer.json (+ tokenizer_config.json); the large vocabularies are drawn rarely. */
const TOKENIZER_FIXTURES = ['models/stories260K', 'bnb-models/stories260K-nf4-dq'] as const;
const LARGE_TOKENIZER_FIXTURES = ['tokenizers/llama2', 'tokenizers/gpt2'] as const;
type TokenizerFixture = (typeof TOKENIZER_FIXTURES)[number] | (typeof LARGE_TOKENIZER_FIXTURES)[number];

const CHAT_TEMPLATES = [
  "{% for m in messages %}{{ bos_token + '[INST] ' + m['content'] + ' [/INST]' }}{% endfor %}",
  '{% for m in messages %}{{ m.content | upper }}{% endfor %}{% if add_generation_prompt %}A:{% endif %}',
  "{{ raise_exception('no') }}",
  '{% for %}',
  '{{ messages[10].content }}',
  '{% set x = 1 %}{{ x / 0 }}',
  '{{ messages | tojson }}',
  '',
];

const tokenizerConfigObject = fc.record({
  bos_token: valueFor(fc.constantFrom('<s>', '</s>', '<unk>', 'missing', { content: '<s>', lstrip: false }, null)),
  eos_token: valueFor(fc.constantFrom('</s>', '<s>', null)),
  unk_token: valueFor(fc.constantFrom('<unk>', null)),
  pad_token: valueFor(fc.constantFrom('<unk>', null, 'PAD')),
  add_bos_token: valueFor(fc.boolean()),
  add_eos_token: valueFor(fc.boolean()),
  tokenizer_class: valueFor(fc.constantFrom('LlamaTokenizer', 'LlamaTokenizerFast', 'PreTrainedTokenizerFast', 'GPT2Tokenizer')),
  clean_up_tokenization_spaces: valueFor(fc.boolean()),
  chat_template: valueFor(fc.oneof(fc.constantFrom(...CHAT_TEMPLATES), fc.constant([{ name: 'default', template: CHAT_TEMPLATES[0] }]))),
  model_max_length: valueFor(POSITIVE),
}, { requiredKeys: [] });

type TokenizerSpec =
  | { kind: 'tokenizerJson'; fixture: TokenizerFixture; m: JsonMutation }
  | { kind: 'config'; fixture: TokenizerFixture; m: JsonMutation }
  | { kind: 'generatedConfig'; fixture: TokenizerFixture; config: unknown; template: string | null };

const tokenizerFixture = fc.oneof({ weight: 30, arbitrary: fc.constantFrom(...TOKENIZER_FIXTURES) }, { weight: 1, arbitrary: fc.constantFrom(...LARGE_TOKENIZER_FIXTURES) });

function tokenizerFiles(fixtureDir: TokenizerFixture): CaseFiles {
  const files: CaseFiles = { 'tokenizer.json': fixtureBytes(fixtureDir, 'tokenizer.json') };
  if (fixtureDir !== 'tokenizers/gpt2') files['tokenizer_config.json'] = fixtureBytes(fixtureDir, 'tokenizer_config.json');
  return files;
}

export const tokenizerTarget: FuzzTarget<TokenizerSpec> = {
  format: 'tokenizer',
  cases: fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('tokenizerJson' as const), fixture: tokenizerFixture, m: jsonMutation }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('config' as const), fixture: tokenizerFixture, m: jsonMutation }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('generatedConfig' as const), fixture: tokenizerFixture, config: tokenizerConfigObject, template: fc.option(fc.constantFrom(...CHAT_TEMPLATES)) }) },
  ),
  materialize(spec) {
    const files = tokenizerFiles(spec.fixture);
    if (spec.kind === 'tokenizerJson') files['tokenizer.json'] = applyJsonMutation(parseFixture(spec.fixture, 'tokenizer.json'), spec.m);
    else if (spec.kind === 'config') files['tokenizer_config.json'] = applyJsonMutation(files['tokenizer_config.json'] === undefined ? {} : parseFixture(spec.fixture, 'tokenizer_config.json'), spec.m);
    else {
      files['tokenizer_config.json'] = encoder.encode(JSON.stringify(spec.config));
      if (spec.template !== null) files['chat_template.jinja'] = encoder.encode(spec.template);
    }
    return files;
  },
  run(dir) {
    const tok = TextTokenizer.fromFolder(dir);
    stages(
      () => {
        const ids = tok.encode('Hello world, once upon a time. ü 1234 <s>');
        tok.decode(ids, { skipSpecialTokens: true });
        const stream = tok.createStreamDecoder();
        for (const id of ids) stream.push(id);
        stream.flush();
      },
      () => {
        if (tok.chatTemplate !== null) tok.applyChatTemplate([{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }], { addGenerationPrompt: true });
      },
    );
  },
};

// ------------------------------------------------------------------------------------------------
// PEFT adapters

const GOLDEN = 'golden/stories260K-lora';

/** The Linear shapes of stories260K (FORMATS.md §11.3), the model the golden adapter was trained on. */
const STORIES260K_LINEARS: ReadonlyMap<string, LinearShape> = (() => {
  const m = new Map<string, LinearShape>();
  const shapes: Array<[string, number, number]> = [['self_attn.q_proj', 64, 64], ['self_attn.k_proj', 64, 32], ['self_attn.v_proj', 64, 32], ['self_attn.o_proj', 64, 64], ['mlp.gate_proj', 64, 172], ['mlp.up_proj', 64, 172], ['mlp.down_proj', 172, 64]];
  for (let i = 0; i < 5; i++) for (const [name, inFeatures, outFeatures] of shapes) m.set(`model.layers.${i}.${name}`, { inFeatures, outFeatures });
  return m;
})();

const adapterConfigObject = fc.record({
  peft_type: valueFor(fc.constantFrom('LORA', 'IA3')),
  r: valueFor(fc.constantFrom(4, 8, 0, 2)),
  lora_alpha: valueFor(fc.constantFrom(8, 16, 0)),
  target_modules: valueFor(fc.constantFrom(['q_proj', 'v_proj'], 'all-linear', '.*proj', '(', ['k_proj', 'v_proj', 'down_proj', 'gate_proj', 'up_proj', 'q_proj', 'o_proj'], [])),
  use_rslora: valueFor(fc.boolean()),
  use_dora: valueFor(fc.boolean()),
  rank_pattern: valueFor(fc.constantFrom({}, { q_proj: 8 }, { '(': 2 }, { 'model.layers.0.self_attn.q_proj': 0 })),
  alpha_pattern: valueFor(fc.constantFrom({}, { q_proj: 2 })),
  lora_dropout: valueFor(fc.constantFrom(0, 0.1)),
  bias: valueFor(fc.constantFrom('none', 'all')),
  fan_in_fan_out: valueFor(fc.boolean()),
  layers_to_transform: valueFor(fc.constantFrom(null, [0, 1], 3)),
  modules_to_save: valueFor(fc.constantFrom(null, ['lm_head'])),
  task_type: valueFor(fc.constantFrom('CAUSAL_LM', null)),
}, { requiredKeys: [] });

type PeftSpec =
  | { kind: 'config'; m: JsonMutation }
  | { kind: 'generatedConfig'; config: unknown }
  | { kind: 'weights'; m: HeaderMutation | readonly ByteOp[] };

export const peftTarget: FuzzTarget<PeftSpec> = {
  format: 'peft',
  cases: fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('config' as const), m: jsonMutation }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('generatedConfig' as const), config: adapterConfigObject }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('weights' as const), m: fc.oneof(headerMutation, byteOps) }) },
  ),
  materialize(spec) {
    const files: CaseFiles = { 'adapter_config.json': fixtureBytes(GOLDEN, 'adapter_config.json'), 'adapter_model.safetensors': fixtureBytes(GOLDEN, 'adapter_model.safetensors') };
    if (spec.kind === 'config') files['adapter_config.json'] = applyJsonMutation(parseFixture(GOLDEN, 'adapter_config.json'), spec.m, 2);
    else if (spec.kind === 'generatedConfig') files['adapter_config.json'] = encoder.encode(JSON.stringify(spec.config));
    else {
      const w = files['adapter_model.safetensors'];
      files['adapter_model.safetensors'] = Array.isArray(spec.m) ? applyByteOps(w, spec.m, [{ at: 0, width: 8 }]) : applyHeaderMutation(w, spec.m as HeaderMutation);
    }
    return files;
  },
  run(dir) {
    readPeftAdapter(dir, STORIES260K_LINEARS);
  },
};
