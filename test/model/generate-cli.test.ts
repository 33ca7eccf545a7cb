// `qlora generate` end to end on stories260K, run as a child process through tsx: greedy JSON
// record, streaming output with timings on stderr, stop strings, a PEFT adapter, a GGUF model,
// typed errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT, fixture } from '../helpers/shared.js';

const STORIES = fixture('models', 'stories260K');
const ADAPTER = fixture('golden', 'stories260K-lora');
/** FORMATS.md §14.2 greedy ids from BOS; "Once upon a time" is its first four. */
const GREEDY_FROM_BOS = [403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292];

interface GenerateRecord {
  text: string;
  ids: number[];
  promptIds: number[];
  promptTokens: number;
  generatedTokens: number;
  promptTokensPerS: number;
  genTokensPerS: number;
  finishReason: string;
  activations: string;
}

function qlora(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const FAST = ['--quant', 'none', '--kernels', 'ref', '--no-progress'];

describe('qlora generate', () => {
  it('--json: one record with the greedy continuation and timings', () => {
    const r = qlora('generate', STORIES, '--prompt', 'Once upon a time', '--max-new-tokens', '20', '--json', ...FAST);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1);
    const rec = JSON.parse(lines[0]) as GenerateRecord;
    assert.deepEqual(rec.promptIds, [1, ...GREEDY_FROM_BOS.slice(0, 4)]);
    assert.deepEqual(rec.ids, GREEDY_FROM_BOS.slice(4, 24));
    assert.equal(rec.finishReason, 'length');
    assert.equal(rec.activations, 'f32'); // --quant none: no 4-bit matmuls to quantize activations for
    assert.equal(rec.generatedTokens, 20);
    assert.ok(rec.text.startsWith(', there was a little girl named Lily. She loved to play outsid'), rec.text);
    assert.ok(rec.promptTokensPerS > 0 && rec.genTokensPerS > 0);
  });

  it('--verbose names the kernels the runtime probe chose; without it stderr has no such line', () => {
    const args = ['generate', STORIES, '--prompt', 'Once', '--max-new-tokens', '2', '--quant', 'nf4', '--threads', '1', '--no-progress', '--json'];
    const verbose = qlora('--verbose', ...args);
    assert.equal(verbose.status, 0, verbose.stderr);
    assert.match(verbose.stderr, /qlora: kernels: wasm (relaxed-fused|relaxed|simd) \(.*\), 1 thread, int8 activations; node v\d+/);
    const plain = qlora(...args, '--verbose');
    assert.match(plain.stderr, /qlora: kernels: wasm /, 'the global flag is also read after the command');
    assert.doesNotMatch(qlora(...args).stderr, /kernels:/);
  });

  it('streams text to stdout, reports tokens/s on stderr, honours --stop', () => {
    const r = qlora('generate', STORIES, '--prompt', 'Once upon a time', '--max-new-tokens', '40', '--stop', 'Lily', 'zebra', ...FAST);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, ', there was a little girl named \n');
    assert.match(r.stderr, /prompt: 5 tokens .* tokens\/s\); generation: \d+ tokens .* tokens\/s\); finish: stop/);
  });

  it('--adapter attaches a PEFT adapter and changes the output; a GGUF model in NF4 on the wasm kernels runs', () => {
    // Without the adapter the greedy story goes "She loved to play outside in the park", with the
    // golden PEFT adapter (its logits are checked in generate-adapter.test.ts) "play with her toys".
    const lora = qlora('generate', STORIES, '--prompt', 'Once upon a time', '--max-new-tokens', '24', '--json', '--adapter', ADAPTER, ...FAST);
    assert.equal(lora.status, 0, lora.stderr);
    assert.match(lora.stderr, /35 LoRA modules, r=4, alpha=8/);
    const b = JSON.parse(lora.stdout) as GenerateRecord;
    assert.ok(b.text.startsWith(', there was a little girl named Lily. She loved to play with her toys'), b.text);
    // A GGUF file (Q4_0, dequantized then quantized to NF4) on the wasm kernels.
    const nf4 = qlora('generate', fixture('gguf', 'stories260K-Q4_0.gguf'), '--prompt', 'Once upon a time', '--max-new-tokens', '8', '--json', '--quant', 'nf4', '--threads', '2', '--no-progress');
    assert.equal(nf4.status, 0, nf4.stderr);
    const rec = JSON.parse(nf4.stdout) as GenerateRecord & { kernels: string; quant: string };
    assert.equal(rec.generatedTokens, 8);
    assert.equal(rec.quant, 'nf4');
    assert.ok(rec.text.startsWith(', there was a'), rec.text);
  });

  it('bad input: typed errors and exit code 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'qlora-gen-cli-'));
    try {
      copyFileSync(join(ADAPTER, 'adapter_model.safetensors'), join(dir, 'adapter_model.safetensors'));
      const cfg = JSON.parse(readFileSync(join(ADAPTER, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
      writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...cfg, use_dora: true }));
      const dora = qlora('generate', STORIES, '--prompt', 'Hi', '--adapter', dir, ...FAST);
      assert.equal(dora.status, 2);
      assert.match(dora.stderr, /qlora: UnsupportedError: .*adapter_config\.json.*use_dora/);
      const missing = qlora('generate', join(dir, 'no-such-model'), '--prompt', 'Hi', ...FAST);
      assert.equal(missing.status, 2);
      assert.match(missing.stderr, /qlora: IoError/);
      const chat = qlora('generate', STORIES, '--prompt', 'Hi', '--chat', ...FAST);
      assert.equal(chat.status, 2);
      assert.match(chat.stderr, /qlora: ConfigError: .*chat template/);
      const temp = qlora('generate', STORIES, '--prompt', 'Hi', '--temperature', 'hot', ...FAST);
      assert.equal(temp.status, 2);
      assert.match(temp.stderr, /--temperature/);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});
