// `qlora inspect` run as a real CLI process on each fixture kind: model folder, safetensors file,
// bitsandbytes-4bit folder, GGUF models and a GGUF LoRA adapter; table and --json; errors.
// Several paths per process keep the test fast (each process start-up loads the whole CLI).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { qlora } from '../helpers/cli.js';
import { fixture } from '../helpers/shared.js';
import { inspectPath, type InspectReport } from '../../src/cli/inspect.js';
import { FormatError } from '../../src/errors.js';


const FIXTURES = [
  fixture('models', 'stories260K'),
  fixture('models', 'stories260K', 'model.safetensors'),
  fixture('bnb-models', 'stories260K-nf4-dq'),
  fixture('gguf', 'stories260K-Q4_0.gguf'),
  fixture('models', 'llama-2-tiny-random', 'llama-2-tiny-random.gguf'),
  fixture('gguf', 'stories260K-lora-f16.gguf'),
];

test('qlora inspect on every fixture kind: tables, JSON records, errors', async () => {
  const [tables, json, single, missing] = await Promise.all([
    qlora('inspect', ...FIXTURES),
    qlora('inspect', '--json', ...FIXTURES),
    qlora('inspect', FIXTURES[1], '--json'),
    qlora('inspect', fixture('models', 'no-such-model')),
  ]);

  assert.equal(tables.code, 0, tables.stderr);
  const blocks = tables.stdout.split(/^path {2,}/m).slice(1);
  assert.equal(blocks.length, FIXTURES.length);
  const folderTable = `path  ${blocks[0]}`;
  assert.match(folderTable, /^format\s+hf-folder$/m);
  assert.match(folderTable, /^architecture\s+llama \(LlamaForCausalLM\)$/m);
  assert.match(folderTable, /^layers\s+5$/m);
  assert.match(folderTable, /^heads \/ kv \/ dim\s+8 \/ 4 \/ 8$/m);
  assert.match(folderTable, /^tensors\s+47$/m);
  assert.match(folderTable, /^parameters\s+260,032 /m);
  assert.match(folderTable, /^quantization\s+none$/m);
  assert.match(folderTable, /^F32\s+47\s+260,032\s+1,040,128$/m);
  // Values of the key/value block (up to the blank line) start in one column.
  const lines = tables.stdout.split('\n');
  const block = lines.slice(0, lines.indexOf(''));
  const columns = new Set(block.map((l) => /^(.*?)\s{2,}/.exec(l)![0].length));
  assert.equal(columns.size, 1, block.join('\n'));
  assert.match(blocks[2], /^quantization\s+bitsandbytes 4-bit nf4, block 64, double quant yes, 35 layers, compute float32$/m);
  assert.match(blocks[4], /^size\s+1,750,560 bytes/m);
  assert.match(blocks[4], /^vocab\s+32000$/m);
  assert.match(blocks[4], /^F16\s+9\s/m);
  assert.match(blocks[5], /^adapter\s+lora for llama, alpha/m);

  assert.equal(json.code, 0, json.stderr);
  const [folder, file, bnb, q40, tiny, lora] = JSON.parse(json.stdout) as InspectReport[];
  assert.equal(folder.format, 'hf-folder');
  assert.equal(folder.tokenizer!.vocabSize, 512);
  assert.equal(file.format, 'safetensors');
  assert.equal(file.tensorCount, 47);
  assert.equal(file.bytes, 1_044_984);
  assert.equal(file.parameterCount, 260_032);
  assert.deepEqual(file.metadata, { format: 'pt' });
  assert.equal(file.quantization, null);
  assert.deepEqual(JSON.parse(single.stdout), file, 'one path prints one record');

  // The 4-bit folder counts the same logical parameters as the f32 original.
  assert.equal(bnb.format, 'hf-folder');
  assert.equal(bnb.parameterCount, 260_032);
  assert.equal(bnb.tensorCount, 222);
  assert.deepEqual(bnb.quantization, {
    method: 'bitsandbytes-4bit', quantType: 'nf4', doubleQuant: true, blockSize: 64, quantizedLayers: 35, computeDtype: 'float32',
  });
  assert.equal(bnb.model!.layers, 5);

  assert.equal(q40.format, 'gguf');
  assert.equal(q40.tensorCount, 47);
  assert.equal(q40.parameterCount, 260_032);
  assert.equal(q40.quantization!.fileType, '2 (MOSTLY_Q4_0)');
  assert.equal(q40.dtypes.Q4_0.tensors, 30);
  assert.deepEqual([q40.model!.layers, q40.model!.hiddenSize, q40.model!.heads, q40.model!.kvHeads, q40.model!.vocabSize], [5, 64, 8, 4, 512]);
  assert.deepEqual([tiny.gguf!.version, tiny.tensorCount, tiny.model!.vocabSize], [3, 12, 32000]);

  assert.equal(lora.gguf!.type, 'adapter');
  assert.equal(lora.adapter!.type, 'lora');
  assert.equal(lora.model, undefined);
  assert.equal(lora.tensorCount, 70);

  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no-such-model/);
});

test('inspectPath refuses a file that is neither safetensors nor GGUF, naming it', () => {
  assert.throws(() => inspectPath(fixture('models', 'stories260K', 'config.json')), (e: unknown) => e instanceof FormatError && /config\.json/.test(e.message));
});
