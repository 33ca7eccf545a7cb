// loadModel on altered copies of stories260K written into a temp folder: sharded and bf16
// checkpoints load; a folder without config or weights, a missing / misshapen / unexpected
// tensor and a tokenizer larger than the vocabulary are typed errors naming the file and tensor.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { f32ToBf16Bits } from '../../src/formats/dtype.js';
import { openCheckpoint, writeSafetensors, writeShardedSafetensors, type TensorToWrite } from '../../src/formats/safetensors.js';
import { RefKernels } from '../../src/kernels/ref/index.js';
import { loadModel } from '../../src/model/load.js';
import { fixture } from '../helpers/shared.js';
import { maxAbsDiff, SENTENCE_IDS } from './helpers.js';

const SOURCE = fixture('models', 'stories260K');
/** bf16 keeps 8 bits of mantissa: logits move by ~0.1 on this model (llama.cpp BF16: 0.08-0.15). */
const BF16_LOGITS_TOLERANCE = 0.3;

function f32Tensors(): TensorToWrite[] {
  const src = openCheckpoint(SOURCE);
  const out = src.names().map((name) => {
    const x = src.readF32(name);
    return { name, dtype: 'F32' as const, shape: src.entry(name).shape, data: new Uint8Array(x.buffer, x.byteOffset, x.byteLength) };
  });
  src.close();
  return out;
}

function bf16(t: TensorToWrite): TensorToWrite {
  const bytes = t.data as Uint8Array;
  const x = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f32ToBf16Bits(x[i]);
  return { ...t, dtype: 'BF16', data: new Uint8Array(out.buffer) };
}

describe('loadModel: checkpoint variants and bad input', () => {
  const kernels = new RefKernels();
  let root: string;
  let tensors: TensorToWrite[];
  let reference: Float32Array;
  let n = 0;

  /** A folder with stories260K's config and tokenizer and the given tensors. */
  function folder(ts: TensorToWrite[] | null, opts: { config?: boolean; sharded?: boolean; configEdit?: (c: Record<string, unknown>) => void } = {}): string {
    const dir = join(root, `m${n++}`);
    mkdirSync(dir);
    if (opts.config !== false) {
      const cfg = JSON.parse(readFileSync(join(SOURCE, 'config.json'), 'utf8')) as Record<string, unknown>;
      opts.configEdit?.(cfg);
      writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
    }
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(SOURCE, f), join(dir, f));
    if (ts !== null) {
      if (opts.sharded === true) writeShardedSafetensors(dir, ts, { maxShardBytes: 300_000 });
      else writeSafetensors(join(dir, 'model.safetensors'), ts);
    }
    return dir;
  }

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'qlora-load-'));
    tensors = f32Tensors();
    const m = await loadModel(SOURCE, { kernels, quant: 'none' });
    reference = m.forward(SENTENCE_IDS, 1, SENTENCE_IDS.length, { logits: 'all' });
    m.dispose();
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('a sharded f32 checkpoint gives identical logits, with progress per tensor', async () => {
    const seen: string[] = [];
    const m = await loadModel(folder(tensors, { sharded: true }), { kernels, quant: 'none', onProgress: (done, total, name) => seen.push(`${done}/${total} ${name}`) });
    assert.deepEqual(m.forward(SENTENCE_IDS, 1, SENTENCE_IDS.length, { logits: 'all' }), reference);
    assert.equal(seen.length, 47);
    assert.equal(seen[46].startsWith('47/47 '), true);
    m.dispose();
  });

  it('a bf16 checkpoint loads (converted to f32) and stays close', async () => {
    const m = await loadModel(folder(tensors.map(bf16)), { kernels, quant: 'none' });
    assert.ok(maxAbsDiff(m.forward(SENTENCE_IDS, 1, SENTENCE_IDS.length, { logits: 'all' }), reference) < BF16_LOGITS_TOLERANCE);
    m.dispose();
  });

  it('refuses a folder without config.json or without weights', async () => {
    await assert.rejects(loadModel(folder(tensors, { config: false }), { kernels }), { name: 'FormatError', message: /config\.json/ });
    await assert.rejects(loadModel(folder(null), { kernels }), { name: 'FormatError', message: /safetensors/ });
    await assert.rejects(loadModel(join(root, 'nowhere'), { kernels }), { name: 'IoError' });
  });

  it('names a missing tensor', async () => {
    const dir = folder(tensors.filter((t) => t.name !== 'model.layers.2.mlp.up_proj.weight'));
    await assert.rejects(loadModel(dir, { kernels }), { name: 'ShapeError', field: 'model.layers.2.mlp.up_proj.weight', message: /missing/ });
  });

  it('names a tensor with the wrong shape', async () => {
    const ts = tensors.map((t) => (t.name === 'model.layers.1.self_attn.k_proj.weight' ? { ...t, shape: [64, 32] } : t));
    await assert.rejects(loadModel(folder(ts), { kernels }), { name: 'ShapeError', field: 'model.layers.1.self_attn.k_proj.weight', message: /\[32, 64\]/ });
  });

  it('names an unexpected extra tensor', async () => {
    const extra: TensorToWrite = { name: 'model.layers.0.self_attn.rotary_proj.weight', dtype: 'F32', shape: [2], data: new Uint8Array(8) };
    await assert.rejects(loadModel(folder([...tensors, extra]), { kernels }), { name: 'ShapeError', field: extra.name, message: /unexpected/ });
  });

  it('refuses an unsupported architecture by name, listing the supported ones', async () => {
    const dir = folder(tensors, { configEdit: (c) => { c.model_type = 'gpt2'; c.architectures = ['GPT2LMHeadModel']; } });
    await assert.rejects(loadModel(dir, { kernels }), (err: Error) => err.name === 'UnsupportedError' && /gpt2|GPT2/.test(err.message) && /llama/i.test(err.message));
  });

  it('refuses a tokenizer with more tokens than the model vocabulary', async () => {
    const ts = tensors.map((t) => (t.name === 'model.embed_tokens.weight' ? { ...t, shape: [256, 64], data: (t.data as Uint8Array).subarray(0, 256 * 64 * 4) } : t));
    const dir = folder(ts, { configEdit: (c) => { c.vocab_size = 256; } });
    await assert.rejects(loadModel(dir, { kernels }), { name: 'ShapeError', message: /tokenizer has more tokens/ });
  });
});
