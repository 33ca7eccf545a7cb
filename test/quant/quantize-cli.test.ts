// `qlora quantize` through commander in-process: options reach the library, the summary is
// printed, bad options are ConfigErrors (the CLI's main turns them into exit code 2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { formatQuantizeSummary, register } from '../../src/cli/quantize.js';
import { quantizeCheckpoint } from '../../src/quant/quantize-checkpoint.js';
import { resolveQuantizationConfig } from '../../src/quant/config.js';
import { ConfigError } from '../../src/errors.js';
import { fixture } from '../helpers/shared.js';

const tmp = mkdtempSync(join(tmpdir(), 'qlora-quantize-cli-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

// The command prints its summary on stdout (harmless lines in the test runner's output).
async function run(args: string[]): Promise<void> {
  const program = new Command().exitOverride();
  register(program);
  await program.parseAsync(['node', 'qlora', 'quantize', ...args]);
}

test('qlora quantize stories260K: fixture-identical output and a size summary', async () => {
  const out = join(tmp, 'nf4');
  await run([fixture('models', 'stories260K'), '--out', out, '--no-progress']);
  assert.ok(readFileSync(join(out, 'model.safetensors')).equals(readFileSync(fixture('bnb-models', 'stories260K-nf4-dq', 'model.safetensors'))));
  const report = quantizeCheckpoint(fixture('models', 'stories260K'), out, { force: true });
  const printed = formatQuantizeSummary(report, resolveQuantizationConfig(), 1.5);
  assert.match(printed, /^wrote .* in 1\.5 s\nquantized 35 weights \(226,560 of 260,032 parameters\) as nf4, block 64, double quant on; kept 12 tensors\n/);
  assert.match(printed, /size 0\.99 MiB -> 0\.28 MiB \(28\.3% of the original\); 4\.1\d\d bits per quantized parameter\n$/);
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
