// safetensors reader/writer against the fixtures: tensor inventory, values, round trips (single
// file and sharded), byte-identical rewrite of a file made by the reference writer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  openCheckpoint,
  SafetensorsReader,
  ShardedSafetensors,
  writeSafetensors,
  writeShardedSafetensors,
  type TensorToWrite,
} from '../../src/formats/safetensors.js';
import { FormatError, IoError, ShapeError } from '../../src/errors.js';
import { f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../../src/formats/dtype.js';
import { fixture } from '../helpers/shared.js';

const STORIES = fixture('models', 'stories260K', 'model.safetensors');
const STORIES_NF4 = fixture('bnb-models', 'stories260K-nf4-dq', 'model.safetensors');

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'qlora-st-'));
}

test('stories260K: 47 F32 tensors, header 4848, format pt, shapes of FORMATS §14.2', () => {
  const r = SafetensorsReader.open(STORIES);
  try {
    assert.equal(r.names().length, 47);
    assert.equal(r.headerBytes, 4848);
    assert.equal(r.fileSize, 1_044_984);
    assert.deepEqual(r.metadata, { format: 'pt' });
    assert.deepEqual(r.entry('model.embed_tokens.weight').shape, [512, 64]);
    assert.deepEqual(r.entry('model.layers.0.self_attn.k_proj.weight').shape, [32, 64]);
    assert.deepEqual(r.entry('model.layers.4.mlp.down_proj.weight').shape, [64, 172]);
    assert.equal(r.has('lm_head.weight'), false);
    assert.deepEqual(r.names(), [...r.names()].sort());
    const e = r.entry('model.embed_tokens.weight');
    assert.equal(e.offset, 8 + 4848);
    assert.equal(e.byteLength, 512 * 64 * 4);
    // readF32 of F32 data is the same bits as the raw bytes.
    const f = r.readF32('model.norm.weight');
    const raw = r.readBytes('model.norm.weight');
    assert.deepEqual(new Uint8Array(f.buffer), raw);
    assert.throws(() => r.entry('nope'), (err: unknown) => err instanceof FormatError && /nope/.test(err.message));
  } finally {
    r.close();
  }
});

test('round trip: every stories260K tensor written and read back; header aligned', () => {
  const dir = tempDir();
  try {
    const src = SafetensorsReader.open(STORIES);
    const out = join(dir, 'copy.safetensors');
    const tensors: TensorToWrite[] = src.names().map((name) => {
      const e = src.entry(name);
      return { name, dtype: e.dtype, shape: e.shape, data: () => src.readBytes(name) };
    });
    writeSafetensors(out, tensors, { format: 'pt' });
    const back = SafetensorsReader.open(out);
    assert.deepEqual(back.names(), src.names());
    for (const name of src.names()) {
      assert.deepEqual(back.entry(name).shape, src.entry(name).shape);
      assert.deepEqual(back.readBytes(name), src.readBytes(name));
    }
    assert.equal((8 + back.headerBytes) % 8, 0);
    assert.deepEqual(back.metadata, { format: 'pt' });
    assert.deepEqual(readdirSync(dir), ['copy.safetensors'], 'no temporary file left');
    back.close();
    src.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rewriting a file made by the reference writer reproduces it byte for byte', () => {
  const dir = tempDir();
  try {
    const src = SafetensorsReader.open(STORIES_NF4);
    // Feed tensors in reverse name order: the writer must sort them itself.
    const tensors: TensorToWrite[] = src
      .names()
      .reverse()
      .map((name) => ({ name, dtype: src.entry(name).dtype, shape: src.entry(name).shape, data: src.readBytes(name) }));
    const out = join(dir, 'model.safetensors');
    writeSafetensors(out, tensors, { ...src.metadata });
    assert.ok(Buffer.compare(readFileSync(out), readFileSync(STORIES_NF4)) === 0);
    src.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('dtype conversions: F16, BF16, F64, ints, BOOL, scalar and empty tensors', () => {
  const dir = tempDir();
  try {
    const values = [0, 1, -2.5, 65504, 1e-7, Infinity, -Infinity];
    const f16 = new Uint16Array(values.map(f32ToF16Bits));
    const bf16 = new Uint16Array(values.map(f32ToBf16Bits));
    const f64 = new Float64Array([1.5, -3.25]);
    const i64 = new BigInt64Array([-5n, 7n]);
    const i8 = new Int8Array([-128, 127]);
    const u16 = new Uint16Array([65535, 1]);
    const bytes = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const path = join(dir, 'types.safetensors');
    writeSafetensors(path, [
      { name: 'f16', dtype: 'F16', shape: [7], data: bytes(f16) },
      { name: 'bf16', dtype: 'BF16', shape: [7], data: bytes(bf16) },
      { name: 'f64', dtype: 'F64', shape: [2], data: bytes(f64) },
      { name: 'i64', dtype: 'I64', shape: [2], data: bytes(i64) },
      { name: 'i8', dtype: 'I8', shape: [2], data: bytes(i8) },
      { name: 'u16', dtype: 'U16', shape: [1, 2], data: bytes(u16) },
      { name: 'bool', dtype: 'BOOL', shape: [3], data: new Uint8Array([0, 1, 2]) },
      { name: 'scalar', dtype: 'F32', shape: [], data: bytes(new Float32Array([42])) },
      { name: 'empty', dtype: 'F32', shape: [3, 0], data: new Uint8Array(0) },
    ]);
    const r = SafetensorsReader.open(path);
    assert.deepEqual([...r.readF32('f16')], [0, 1, -2.5, 65504, 1.1920928955078125e-7, Infinity, -Infinity]);
    assert.deepEqual([...r.readF32('bf16')].slice(0, 4), [0, 1, -2.5, 65536]);
    assert.deepEqual([...r.readF32('f64')], [1.5, -3.25]);
    assert.deepEqual([...r.readF32('i64')], [-5, 7]);
    assert.deepEqual([...r.readF32('i8')], [-128, 127]);
    assert.deepEqual([...r.readF32('u16')], [65535, 1]);
    assert.deepEqual([...r.readF32('bool')], [0, 1, 1]);
    assert.deepEqual([...r.readF32('scalar')], [42]);
    assert.equal(r.readF32('empty').length, 0);
    assert.deepEqual(r.entry('scalar').shape, []);
    // readF32Into: the same values into a caller's array (a view at an offset; f32 and converted
    // dtypes, the reader's scratch reused across tensors); a wrong length is a ShapeError.
    const into = new Float32Array(12);
    for (const name of ['f16', 'bf16', 'f64', 'i8', 'scalar', 'f16']) {
      const want = r.readF32(name);
      const view = into.subarray(3, 3 + want.length);
      r.readF32Into(name, view);
      assert.deepEqual(view, want, name);
    }
    assert.throws(() => r.readF32Into('f16', new Float32Array(6)), ShapeError);
    assert.throws(() => r.readF32Into('scalar', new Float32Array(2)), ShapeError);
    // Reference order: F64, I64 (wider first, by enum rank), then F32, U16... BOOL last.
    const order = r.names().sort((a, b) => r.entry(a).offset - r.entry(b).offset || a.localeCompare(b));
    assert.deepEqual(order.slice(0, 2), ['i64', 'f64']);
    assert.equal(order[order.length - 1], 'bool');
    r.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writer refuses data whose size does not match, and leaves no file behind', () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'bad.safetensors');
    assert.throws(
      () => writeSafetensors(path, [{ name: 'a', dtype: 'F32', shape: [2], data: new Uint8Array(4) }]),
      ShapeError,
    );
    assert.throws(
      () => writeSafetensors(path, [{ name: 'a', dtype: 'F32', shape: [2], data: () => new Uint8Array(7) }]),
      ShapeError,
    );
    writeFileSync(path, 'old');
    assert.throws(() =>
      writeSafetensors(path, [
        { name: 'a', dtype: 'F32', shape: [1], data: new Uint8Array(4) },
        { name: 'b', dtype: 'F32', shape: [1], data: () => { throw new Error('producer failed'); } },
      ]),
    /producer failed/);
    assert.equal(readFileSync(path, 'utf8'), 'old', 'failed write leaves the old file untouched');
    assert.deepEqual(readdirSync(dir), ['bad.safetensors']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sharded write and read round trip through openCheckpoint', () => {
  const dir = tempDir();
  try {
    const src = SafetensorsReader.open(STORIES);
    const tensors: TensorToWrite[] = src.names().map((name) => ({
      name,
      dtype: src.entry(name).dtype,
      shape: src.entry(name).shape,
      data: () => src.readBytes(name),
    }));
    writeFileSync(join(dir, 'model-00009-of-00009.safetensors'), 'stale shard');
    writeFileSync(join(dir, 'model.safetensors'), 'stale single file');
    writeShardedSafetensors(dir, tensors, { maxShardBytes: 300_000, metadata: { format: 'pt' } });
    const files = readdirSync(dir).sort();
    assert.ok(files.includes('model.safetensors.index.json'));
    assert.ok(!files.includes('model-00009-of-00009.safetensors'), 'stale shard removed');
    assert.ok(!files.includes('model.safetensors'), 'stale single file removed');
    const shards = files.filter((f) => f.endsWith('.safetensors'));
    assert.ok(shards.length >= 4, `expected several shards, got ${shards.join(',')}`);
    for (const s of shards) assert.ok(statSync(join(dir, s)).size <= 300_000 + 20_000);
    const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8')) as {
      metadata: { total_size: number };
      weight_map: Record<string, string>;
    };
    assert.equal(index.metadata.total_size, 1_044_984 - 8 - 4848);
    const ck = openCheckpoint(dir);
    assert.ok(ck instanceof ShardedSafetensors);
    assert.deepEqual(ck.names(), src.names());
    for (const name of src.names()) assert.deepEqual(ck.readBytes(name), src.readBytes(name));
    assert.deepEqual(ck.metadata, { format: 'pt' });
    ck.close();
    src.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('llama-2-tiny-random: F16 tensors decode exactly; a closed reader refuses reads', () => {
  const r = SafetensorsReader.open(fixture('models', 'llama-2-tiny-random', 'hf', 'model.safetensors'));
  const e = r.entry('model.embed_tokens.weight');
  assert.equal(e.dtype, 'F16');
  assert.deepEqual(e.shape, [32000, 8]);
  const raw = r.readBytes(e.name);
  const dv = new DataView(raw.buffer);
  const f = r.readF32(e.name);
  assert.equal(f.length, 256000);
  for (let i = 0; i < f.length; i += 997) assert.equal(f[i], f16BitsToF32(dv.getUint16(2 * i, true)));
  r.close();
  assert.throws(() => r.readBytes(e.name), IoError);
});

test('openCheckpoint: file, folder, and a folder without weights', () => {
  const a = openCheckpoint(fixture('models', 'stories260K'));
  assert.ok(a instanceof SafetensorsReader);
  a.close();
  const b = openCheckpoint(STORIES);
  assert.equal(b.names().length, 47);
  b.close();
  assert.throws(() => openCheckpoint(fixture('tokenizers', 'gpt2')), (e: unknown) => e instanceof FormatError && /gpt2/.test(e.message));
});
