// quantizeCheckpoint: stories260K -> bnb-4bit folder identical to the transformers-made fixture
// (model.safetensors byte for byte), sharded input and output, refusal of non-empty outputs and of
// non-bnb layouts, and no finished-looking output after a failure mid-way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCheckpoint, writeShardedSafetensors } from '../../src/formats/safetensors.js';
import { quantizeCheckpoint } from '../../src/quant/quantize-checkpoint.js';
import { resolveQuantizationConfig } from '../../src/quant/config.js';
import { ConfigError, UnsupportedError } from '../../src/errors.js';
import { fixture } from '../helpers/shared.js';

const SRC = fixture('models', 'stories260K');
const BNB = fixture('bnb-models', 'stories260K-nf4-dq');
const tmp = mkdtempSync(join(tmpdir(), 'qlora-quantize-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

function assertSameTensors(dirA: string, dirB: string): void {
  const a = openCheckpoint(dirA);
  const b = openCheckpoint(dirB);
  try {
    assert.deepEqual(a.names(), b.names());
    for (const n of a.names()) {
      assert.deepEqual(a.entry(n).shape, b.entry(n).shape, n);
      assert.equal(a.entry(n).dtype, b.entry(n).dtype, n);
      assert.ok(Buffer.from(a.readBytes(n)).equals(Buffer.from(b.readBytes(n))), n);
    }
  } finally {
    a.close();
    b.close();
  }
}

test('stories260K -> nf4/64/DQ: model.safetensors identical to the transformers+bitsandbytes fixture', () => {
  const out = join(tmp, 'stories-nf4');
  const phases = new Set<string>();
  let last = 0;
  const report = quantizeCheckpoint(SRC, out, { onProgress: (p) => { phases.add(p.phase); assert.ok(p.doneBytes >= last); last = p.doneBytes; } });
  assert.ok(readFileSync(join(out, 'model.safetensors')).equals(readFileSync(join(BNB, 'model.safetensors'))));
  assert.deepEqual(report.files, ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
  assert.deepEqual([...phases].sort(), ['quantize', 'write']);
  assert.equal(report.quantizedTensors, 35);
  assert.ok(Math.abs(report.bitsPerParameter - 4.127) < 0.03, String(report.bitsPerParameter));
  assert.equal(report.sourceBytes, 1044984 - 8 - 4848);
  const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  const want = JSON.parse(readFileSync(join(BNB, 'config.json'), 'utf8'));
  assert.deepEqual(cfg.quantization_config, want.quantization_config);
  const src = JSON.parse(readFileSync(join(SRC, 'config.json'), 'utf8'));
  delete cfg.quantization_config;
  assert.deepEqual(cfg, src);
  const text = readFileSync(join(out, 'config.json'), 'utf8');
  assert.ok(text.includes('"rms_norm_eps": 1e-05,\n') && text.includes('"rope_theta": 10000.0,\n') && text.includes('"llm_int8_threshold": 6.0,'), 'Python number spellings kept');
  assert.ok(readFileSync(join(out, 'tokenizer.json')).equals(readFileSync(join(SRC, 'tokenizer.json'))));
  assert.deepEqual(readdirSync(tmp).filter((f) => f.startsWith('.')), [], 'no temp folder left');
});

test('sharded input and sharded output give the same tensors; --force replaces, otherwise refused', () => {
  const sharded = join(tmp, 'stories-sharded');
  mkdirSync(sharded);
  const src = openCheckpoint(SRC);
  writeShardedSafetensors(sharded, src.names().map((n) => ({ name: n, dtype: src.entry(n).dtype, shape: src.entry(n).shape, data: src.readBytes(n) })), { maxShardBytes: 300_000, metadata: { format: 'pt' } });
  src.close();
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) copyFileSync(join(SRC, f), join(sharded, f));
  const out = join(tmp, 'stories-nf4-sharded');
  quantizeCheckpoint(sharded, out, { maxShardBytes: 100_000, packedCacheBytes: 0 }); // packed codes via the scratch file
  assert.ok(existsSync(join(out, 'model.safetensors.index.json')));
  assert.deepEqual(readdirSync(out).filter((f) => f.startsWith('.')), [], 'no scratch file left');
  assert.ok(readdirSync(out).filter((f) => f.endsWith('.safetensors')).length > 1);
  assertSameTensors(out, BNB);
  assert.throws(() => quantizeCheckpoint(SRC, out), ConfigError);
  quantizeCheckpoint(SRC, out, { force: true });
  assert.ok(readFileSync(join(out, 'model.safetensors')).equals(readFileSync(join(BNB, 'model.safetensors'))));
  assert.ok(!existsSync(join(out, 'model.safetensors.index.json')), 'the replaced folder is gone entirely');
});

test('non-bnb layouts are refused before anything is written', () => {
  const out = join(tmp, 'refused');
  for (const options of [{ strategy: 'perChannel' as const }, { zeroPoint: true }, { overrides: [{ match: 'down_proj', int8: true }] }]) {
    assert.throws(() => quantizeCheckpoint(SRC, out, { config: resolveQuantizationConfig(options) }), UnsupportedError);
    assert.ok(!existsSync(out));
  }
});

test('a failure mid-way leaves no output and no temp folder', () => {
  const out = join(tmp, 'interrupted');
  assert.throws(() => quantizeCheckpoint(SRC, out, { onProgress: (p) => { if (p.phase === 'write') throw new Error('interrupted'); } }), /interrupted/);
  assert.ok(!existsSync(out));
  assert.deepEqual(readdirSync(tmp).filter((f) => f.includes('interrupted')), []);
});

test('kept Linear modules are listed in llm_int8_skip_modules; fp4 without DQ and other options reach the config', () => {
  const out = join(tmp, 'fp4-mixed');
  const config = resolveQuantizationConfig({ quantType: 'fp4', computeDtype: 'bf16', overrides: [{ match: 'down_proj', keep: 'bf16' }] });
  quantizeCheckpoint(SRC, out, { config });
  const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).quantization_config;
  assert.equal(cfg.bnb_4bit_quant_type, 'fp4');
  assert.equal(cfg.bnb_4bit_use_double_quant, false);
  assert.equal(cfg.bnb_4bit_compute_dtype, 'bfloat16');
  assert.deepEqual(cfg.llm_int8_skip_modules, ['lm_head', ...[0, 1, 2, 3, 4].map((l) => `model.layers.${l}.mlp.down_proj`)]);
  const r = openCheckpoint(out);
  assert.equal(r.entry('model.layers.0.mlp.down_proj.weight').dtype, 'BF16');
  assert.equal(r.entry('model.layers.0.mlp.up_proj.weight.absmax').dtype, 'F32');
  r.close();
});
