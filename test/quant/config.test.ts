// QuantizationConfig: defaults, refusal of invalid options and combinations, module patterns and
// planModuleQuantization on real checkpoint names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePattern, parseQuantizationOptions, planModuleQuantization, resolveQuantizationConfig } from '../../src/quant/config.js';
import { ConfigError } from '../../src/errors.js';

test('defaults: nf4, block 64, double quant on, blockwise, symmetric, f32 compute, skip lm_head and embeddings', () => {
  const c = resolveQuantizationConfig();
  assert.equal(c.quantType, 'nf4');
  assert.equal(c.blockSize, 64);
  assert.equal(c.doubleQuant, true);
  assert.equal(c.strategy, 'blockwise');
  assert.equal(c.zeroPoint, false);
  assert.equal(c.computeDtype, 'f32');
  assert.deepEqual(c.skip, ['lm_head', 'embed_tokens']);
  assert.equal(c.allowNonFinite, false);
  assert.ok(Object.isFrozen(c));
});

test('fp4 defaults to no double quant (bitsandbytes default) unless asked', () => {
  assert.equal(resolveQuantizationConfig({ quantType: 'fp4' }).doubleQuant, false);
  assert.equal(resolveQuantizationConfig({ quantType: 'fp4', doubleQuant: true }).doubleQuant, true);
  assert.equal(resolveQuantizationConfig({ doubleQuant: false }).doubleQuant, false);
});

test('block sizes: powers of two from 32 to 4096 only', () => {
  for (const bs of [32, 64, 128, 256, 512, 1024, 2048, 4096]) assert.equal(resolveQuantizationConfig({ blockSize: bs }).blockSize, bs);
  for (const bs of [0, 16, 48, 100, 8192, 64.5, -64, NaN]) assert.throws(() => resolveQuantizationConfig({ blockSize: bs }), ConfigError, String(bs));
});

test('unknown keys and wrong types are refused with the field named', () => {
  assert.throws(() => parseQuantizationOptions({ quant_type: 'nf4' }), /quantization\.quant_type/);
  assert.throws(() => parseQuantizationOptions({ quantType: 'int4' }), /quantType/);
  assert.throws(() => parseQuantizationOptions({ doubleQuant: 'yes' }), /doubleQuant/);
  assert.throws(() => parseQuantizationOptions({ computeDtype: 'f64' }), /computeDtype/);
  assert.throws(() => parseQuantizationOptions({ skip: 'lm_head' }), /skip/);
  assert.throws(() => parseQuantizationOptions([]), ConfigError);
});

test('overrides: exactly one kind per entry; bad patterns refused', () => {
  assert.throws(() => resolveQuantizationConfig({ overrides: [{ match: 'down_proj', keep: 'f16', int8: true }] }), /exactly one of/);
  assert.throws(() => resolveQuantizationConfig({ overrides: [{ match: 'down_proj', keep: 'f16', blockSize: 128 }] }), /exactly one of/);
  assert.throws(() => resolveQuantizationConfig({ overrides: [{ match: 'down_proj' }] }), /exactly one of/);
  assert.throws(() => resolveQuantizationConfig({ overrides: [{ match: '/(unclosed/' }] }), /regular expression/);
  assert.throws(() => resolveQuantizationConfig({ overrides: [{ match: 'x', blockSize: 100 }] }), /overrides\[0\]\.blockSize/);
});

test('patterns: whole name parts, globs, regexes', () => {
  assert.ok(compilePattern('lm_head')('lm_head'));
  assert.ok(compilePattern('down_proj')('model.layers.3.mlp.down_proj'));
  assert.ok(compilePattern('mlp.down_proj')('model.layers.3.mlp.down_proj'));
  assert.ok(!compilePattern('proj')('model.layers.3.mlp.down_proj'), 'no partial-word hits');
  assert.ok(compilePattern('model.layers.*.self_attn.q_proj')('model.layers.12.self_attn.q_proj'));
  assert.ok(!compilePattern('model.layers.*.q_proj')('model.layers.12.self_attn.q_proj'), '* stays within one part');
  assert.ok(compilePattern('model.**.q_proj')('model.layers.12.self_attn.q_proj'));
  assert.ok(compilePattern('/layers\\.(0|1)\\./')('model.layers.1.mlp.up_proj'));
  assert.ok(!compilePattern('/layers\\.(0|1)\\./')('model.layers.11.mlp.up_proj'));
});

test('planModuleQuantization: Linear weights of decoder layers only; overrides before skips', () => {
  const c = resolveQuantizationConfig({
    overrides: [
      { match: 'model.layers.0.mlp.down_proj', keep: 'bf16' },
      { match: '/layers\\.1\\.mlp/', int8: true },
      { match: 'v_proj', quantType: 'fp4', blockSize: 128 },
      { match: 'lm_head', quantType: 'nf4' },
    ],
  });
  const plan = (name: string, shape: number[]) => planModuleQuantization(c, name, shape);
  assert.deepEqual(plan('model.layers.2.self_attn.q_proj.weight', [64, 64]), {
    action: 'quant4', module: 'model.layers.2.self_attn.q_proj',
    settings: { quantType: 'nf4', blockSize: 64, doubleQuant: true, strategy: 'blockwise', zeroPoint: false },
  });
  assert.equal(plan('model.embed_tokens.weight', [512, 64]).action, 'keep');
  assert.equal(plan('model.norm.weight', [64]).action, 'keep');
  assert.equal(plan('model.layers.0.input_layernorm.weight', [64]).action, 'keep');
  assert.equal(plan('model.layers.0.self_attn.q_proj.bias', [64]).action, 'keep');
  assert.deepEqual(plan('model.layers.0.mlp.down_proj.weight', [64, 172]), { action: 'keep', module: 'model.layers.0.mlp.down_proj', dtype: 'bf16', reason: 'override model.layers.0.mlp.down_proj' });
  assert.equal(plan('model.layers.1.mlp.up_proj.weight', [172, 64]).action, 'int8');
  const v = plan('model.layers.4.self_attn.v_proj.weight', [32, 64]);
  assert.ok(v.action === 'quant4' && v.settings.quantType === 'fp4' && v.settings.blockSize === 128 && v.settings.doubleQuant === false);
  assert.equal(plan('lm_head.weight', [512, 64]).action, 'quant4', 'an override can quantize a default-skipped module');
  const noOverride = resolveQuantizationConfig({ skip: ['o_proj', 'lm_head'] });
  assert.deepEqual(noOverride.skip, ['lm_head', 'embed_tokens', 'o_proj'], 'skip adds to the defaults');
  assert.equal(planModuleQuantization(noOverride, 'lm_head.weight', [512, 64]).action, 'keep');
  assert.equal(planModuleQuantization(noOverride, 'model.layers.0.self_attn.o_proj.weight', [64, 64]).action, 'keep');
});
