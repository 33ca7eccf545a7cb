// The PEFT adapter writer against PEFT's own file (golden/stories260K-lora, written by PEFT 0.21.0
// save_pretrained): same config keys and values, byte-identical safetensors, read back by
// formats/peft.ts, and identical logits after save + reload.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPeftAdapter, type LinearShape, type PeftAdapter } from '../../src/formats/peft.js';
import { peftAdapterConfigJson, writePeftAdapter, type PeftConfigToWrite, type PeftModuleToWrite } from '../../src/formats/peft-write.js';
import { f16BitsToF32, f32ToF16Bits, bf16BitsToF32, f32ToBf16Bits } from '../../src/formats/dtype.js';
import { ConfigError, NumericError, ShapeError } from '../../src/errors.js';
import { RefKernels } from '../../src/kernels/ref/index.js';
import { loadModel } from '../../src/model/load.js';
import { loadPeftAdapter } from '../../src/model/peft-adapter.js';
import { fixture } from '../helpers/shared.js';

const GOLDEN = fixture('golden', 'stories260K-lora');

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'qlora-peft-write-'));
}

const GOLDEN_CONFIG: PeftConfigToWrite = {
  r: 4,
  loraAlpha: 8,
  useRslora: false,
  loraDropout: 0,
  targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  baseModelNameOrPath: 'stories260K/hf',
};

function toWrite(adapter: PeftAdapter, shapes: ReadonlyMap<string, LinearShape>): PeftModuleToWrite[] {
  return adapter.modules.map((m) => ({ module: m.module, r: m.r, A: m.A, B: m.B, ...shapes.get(m.module)! }));
}

describe('PEFT adapter writer', () => {
  let model: Awaited<ReturnType<typeof loadModel>>;
  let shapes: Map<string, LinearShape>;
  let golden: PeftAdapter;
  before(async () => {
    model = await loadModel(fixture('models', 'stories260K'), { kernels: new RefKernels(), quant: 'none' });
    shapes = new Map([...model.linears()].map((l) => [l.name, { inFeatures: l.inFeatures, outFeatures: l.outFeatures }]));
    golden = readPeftAdapter(GOLDEN, shapes);
  });
  after(() => model.dispose());

  it('writes the config with the key set and values PEFT writes (target_modules sorted)', () => {
    const ours = peftAdapterConfigJson(GOLDEN_CONFIG);
    const theirsText = readFileSync(join(GOLDEN, 'adapter_config.json'), 'utf8');
    const theirs = JSON.parse(theirsText) as Record<string, unknown>;
    const parsed = JSON.parse(ours) as Record<string, unknown>;
    assert.deepEqual(Object.keys(parsed), Object.keys(theirs));
    assert.deepEqual(parsed.target_modules, [...(theirs.target_modules as string[])].sort());
    // Apart from the list order, the text is PEFT's byte for byte (floats as 8.0, no final newline).
    const sortedTheirs = theirsText.replace(/"target_modules": \[[^\]]*\]/, `"target_modules": [\n${(parsed.target_modules as string[]).map((t) => `    "${t}"`).join(',\n')}\n  ]`);
    assert.equal(ours, sortedTheirs);
  });

  it('writes the safetensors file byte-identical to PEFT, and reads it back', () => {
    const dir = tempDir();
    try {
      writePeftAdapter(dir, GOLDEN_CONFIG, toWrite(golden, shapes));
      assert.deepEqual(readdirSync(dir).sort(), ['adapter_config.json', 'adapter_model.safetensors']);
      assert.ok(readFileSync(join(dir, 'adapter_model.safetensors')).equals(readFileSync(join(GOLDEN, 'adapter_model.safetensors'))));
      const back = readPeftAdapter(dir, shapes);
      assert.deepEqual(back.config, { ...golden.config, targetModules: [...golden.config.targetModules].sort() });
      assert.equal(back.modules.length, 35);
      back.modules.forEach((m, i) => {
        assert.equal(m.module, golden.modules[i].module);
        assert.equal(m.scale, golden.modules[i].scale);
        assert.deepEqual(m.A, golden.modules[i].A);
        assert.deepEqual(m.B, golden.modules[i].B);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives identical logits after save + reload (rsLoRA, rank_pattern)', () => {
    const dir = tempDir();
    try {
      const cfg: PeftConfigToWrite = { ...GOLDEN_CONFIG, useRslora: true, loraAlpha: 6, rankPattern: { 'layers.1.mlp.up_proj': 4 }, alphaPattern: { down_proj: 3.5 } };
      const scaled = golden.modules.map((m) => ({ ...m, B: m.B.map((x) => x * 1.5) }));
      for (const m of scaled) model.attachLora(m.module, m.A, m.B, m.r, m.module.endsWith('down_proj') ? 3.5 / 2 : 6 / 2);
      const ids = Int32Array.from([1, 403, 407, 261, 378, 4, 92, 30]);
      const direct = model.forward(ids, 1, ids.length, { logits: 'all' });
      writePeftAdapter(dir, cfg, toWrite({ ...golden, modules: scaled }, shapes));
      const loaded = loadPeftAdapter(model, dir);
      assert.equal(loaded.modules.find((m) => m.module.endsWith('0.mlp.down_proj'))!.scale, 3.5 / 2);
      const reloaded = model.forward(ids, 1, ids.length, { logits: 'all' });
      assert.deepEqual(reloaded, direct);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes f16 and bf16 tensors that read back as the rounded values', () => {
    for (const [dtype, enc, dec] of [['f16', f32ToF16Bits, f16BitsToF32], ['bf16', f32ToBf16Bits, bf16BitsToF32]] as const) {
      const dir = tempDir();
      try {
        writePeftAdapter(dir, GOLDEN_CONFIG, toWrite(golden, shapes), { dtype });
        const back = readPeftAdapter(dir, shapes);
        const m = back.modules[3];
        assert.deepEqual(m.A, golden.modules[3].A.map((x) => dec(enc(x))));
        assert.notDeepEqual(m.A, golden.modules[3].A);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  it('refuses bad input with typed errors and leaves no file behind', () => {
    const dir = tempDir();
    try {
      const mods = toWrite(golden, shapes);
      const huge = mods.map((m, i) => (i === 2 ? { ...m, B: m.B.map(() => 1e6) } : m));
      assert.throws(() => writePeftAdapter(dir, GOLDEN_CONFIG, huge, { dtype: 'f16' }), (e: unknown) => e instanceof NumericError && /0\.mlp\.up_proj\.lora_B/.test(String(e.field)));
      const short = mods.map((m, i) => (i === 0 ? { ...m, A: m.A.subarray(1) } : m));
      assert.throws(() => writePeftAdapter(dir, GOLDEN_CONFIG, short), ShapeError);
      assert.throws(() => writePeftAdapter(dir, { ...GOLDEN_CONFIG, targetModules: ['all-linear'] }, mods), ConfigError);
      assert.throws(() => writePeftAdapter(dir, { ...GOLDEN_CONFIG, r: 0 }, mods), ConfigError);
      assert.throws(() => writePeftAdapter(dir, GOLDEN_CONFIG, [...mods, mods[0]]), ConfigError);
      assert.deepEqual(readdirSync(dir), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
