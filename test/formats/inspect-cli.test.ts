// `qlora inspect` run as a real CLI process (through tsx) on each fixture kind: model folder,
// safetensors file, bitsandbytes-4bit folder, GGUF models and a GGUF LoRA adapter; table and --json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { fixture, REPO_ROOT } from '../helpers/shared.js';
import type { InspectReport } from '../../src/cli/inspect.js';

const run = promisify(execFile);

// Compiled by tsc (npm test), run the compiled CLI; as TypeScript (development), run it through tsx.
const CLI = fileURLToPath(import.meta.url).endsWith('.js')
  ? [join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js')]
  : ['--import', 'tsx', join(REPO_ROOT, 'src', 'cli', 'main.ts')];

async function qlora(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [...CLI, ...args], { cwd: REPO_ROOT });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function inspectJson(path: string): Promise<InspectReport> {
  const r = await qlora('inspect', path, '--json');
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as InspectReport;
}

test('qlora inspect on every fixture kind', async () => {
  // Run the processes concurrently: each start-up compiles TypeScript through tsx.
  const [folderTable, file, bnb, q40, tiny, lora, missing, notAFormat] = await Promise.all([
    qlora('inspect', fixture('models', 'stories260K')),
    inspectJson(fixture('models', 'stories260K', 'model.safetensors')),
    inspectJson(fixture('bnb-models', 'stories260K-nf4-dq')),
    inspectJson(fixture('gguf', 'stories260K-Q4_0.gguf')),
    qlora('inspect', fixture('models', 'llama-2-tiny-random', 'llama-2-tiny-random.gguf')),
    inspectJson(fixture('gguf', 'stories260K-lora-f16.gguf')),
    qlora('inspect', fixture('models', 'no-such-model')),
    qlora('inspect', fixture('models', 'stories260K', 'config.json')),
  ]);

  assert.equal(folderTable.code, 0, folderTable.stderr);
  const lines = folderTable.stdout.split('\n');
  assert.match(folderTable.stdout, /^format\s+hf-folder$/m);
  assert.match(folderTable.stdout, /^architecture\s+llama \(LlamaForCausalLM\)$/m);
  assert.match(folderTable.stdout, /^layers\s+5$/m);
  assert.match(folderTable.stdout, /^heads \/ kv \/ dim\s+8 \/ 4 \/ 8$/m);
  assert.match(folderTable.stdout, /^tensors\s+47$/m);
  assert.match(folderTable.stdout, /^parameters\s+260,032 /m);
  assert.match(folderTable.stdout, /^quantization\s+none$/m);
  assert.match(folderTable.stdout, /^F32\s+47\s+260,032\s+1,040,128$/m);
  // Values of the key/value block (up to the blank line) start in one column.
  const block = lines.slice(0, lines.indexOf(''));
  const columns = new Set(block.map((l) => /^(.*?)\s{2,}/.exec(l)![0].length));
  assert.equal(columns.size, 1, block.join('\n'));

  assert.equal(file.format, 'safetensors');
  assert.equal(file.tensorCount, 47);
  assert.equal(file.bytes, 1_044_984);
  assert.equal(file.parameterCount, 260_032);
  assert.deepEqual(file.metadata, { format: 'pt' });
  assert.equal(file.quantization, null);

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

  assert.equal(tiny.code, 0, tiny.stderr);
  assert.match(tiny.stdout, /^size\s+1,750,560 bytes/m);
  assert.match(tiny.stdout, /^vocab\s+32000$/m);
  assert.match(tiny.stdout, /^F16\s+9\s/m);

  assert.equal(lora.gguf!.type, 'adapter');
  assert.equal(lora.adapter!.type, 'lora');
  assert.equal(lora.model, undefined);
  assert.equal(lora.tensorCount, 70);

  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no-such-model/);
  assert.equal(notAFormat.code, 2);
  assert.match(notAFormat.stderr, /FormatError: .*config\.json/);
});
