// `qlora quantize` through commander in-process: options reach the library, the summary is
// printed, bad options are ConfigErrors (the CLI's main turns them into exit code 2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { register } from '../../src/cli/quantize.js';
import { ConfigError } from '../../src/errors.js';
import { fixture } from '../helpers/shared.js';

const tmp = mkdtempSync(join(tmpdir(), 'qlora-quantize-cli-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

async function run(args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  register(program);
  let printed = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string) => { printed += chunk; return true; }) as typeof process.stdout.write;
  try {
    await program.parseAsync(['node', 'qlora', 'quantize', ...args]);
  } finally {
    process.stdout.write = write;
  }
  return printed;
}

test('qlora quantize stories260K: fixture-identical output and a size summary', async () => {
  const out = join(tmp, 'nf4');
  const printed = await run([fixture('models', 'stories260K'), '--out', out, '--no-progress']);
  assert.ok(readFileSync(join(out, 'model.safetensors')).equals(readFileSync(fixture('bnb-models', 'stories260K-nf4-dq', 'model.safetensors'))));
  assert.match(printed, /size 0\.99 MiB -> 0\.28 MiB/);
  assert.match(printed, /4\.1\d\d bits per quantized parameter/);
});

test('qlora quantize options: fp4, no double quant, block 128, extra skip', async () => {
  const out = join(tmp, 'fp4');
  await run([fixture('models', 'stories260K'), '--out', out, '--quant', 'fp4', '--block-size', '128', '--skip', 'o_proj', '--kernels', 'ref', '--no-progress']);
  const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).quantization_config;
  assert.equal(cfg.bnb_4bit_quant_type, 'fp4');
  assert.equal(cfg.bnb_4bit_use_double_quant, false);
  assert.ok(cfg.llm_int8_skip_modules.includes('model.layers.0.self_attn.o_proj'));
  await assert.rejects(run([fixture('models', 'stories260K'), '--out', out, '--no-progress']), ConfigError);
  await assert.rejects(run([fixture('models', 'stories260K'), '--out', join(tmp, 'x'), '--block-size', '48', '--no-progress']), ConfigError);
});
