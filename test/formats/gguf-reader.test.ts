// GGUF reader: every fixture's header and tensor bytes against the manifest llama.cpp's tools
// produced, the llama-2-tiny-random figures of FORMATS.md §14.3, and every kind of bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture } from '../helpers/shared.js';
import { FormatError, UnsupportedError } from '../../src/errors.js';
import { readGgufFile, readTensorBytes } from '../../src/formats/gguf/reader.js';
import { GgufValueType, ggufValueTypeName, type GgufValue } from '../../src/formats/gguf/types.js';
import { GgmlType, ggmlTypeName } from '../../src/formats/gguf/ggml-types.js';

interface ManifestKv { key: string; type: string; value?: unknown; count?: number; first?: unknown[] }
interface ManifestTensor { name: string; type: string; ne: number[]; offset: number; nbytes: number; sha256: string }
interface ManifestFile { bytes: number; gguf_version: number; alignment: number; data_start: number; n_kv: number; n_tensors: number; kv: ManifestKv[]; tensors: ManifestTensor[] }
const manifest = JSON.parse(readFileSync(fixture('gguf', 'manifest.json'), 'utf8')) as Record<string, ManifestFile>;

function manifestType(v: GgufValue): string {
  return v.type === GgufValueType.ARRAY ? `ARRAY[${ggufValueTypeName(v.value.elementType)}]` : ggufValueTypeName(v.type);
}

test('every gguf fixture matches manifest.json: header, KVs in order with types, tensor infos, tensor sha256', () => {
  for (const [name, m] of Object.entries(manifest)) {
    const g = readGgufFile(fixture('gguf', name));
    assert.equal(g.version, m.gguf_version, name);
    assert.equal(g.fileSize, m.bytes, name);
    assert.equal(g.alignment, m.alignment, name);
    assert.equal(g.dataOffset, m.data_start, name);
    assert.equal(g.metadata.size, m.n_kv, name);
    assert.equal(g.tensors.length, m.n_tensors, name);
    const kvs = [...g.metadata];
    m.kv.forEach((kv, i) => {
      const [key, v] = kvs[i];
      assert.equal(key, kv.key, `${name} kv ${i}`);
      assert.equal(manifestType(v), kv.type, `${name} ${key}`);
      if (v.type === GgufValueType.ARRAY) {
        assert.equal(v.value.values.length, kv.count, key);
        assert.deepEqual(Array.from(v.value.values as ArrayLike<unknown>).slice(0, kv.first!.length), kv.first, key);
      } else if (v.type === GgufValueType.FLOAT32) {
        assert.equal(v.value, Math.fround(kv.value as number), key);
      } else {
        assert.deepEqual(v.value, kv.value, key);
      }
    });
    m.tensors.forEach((t, i) => {
      const info = g.tensors[i];
      assert.deepEqual([info.name, ggmlTypeName(info.type), [...info.ne], info.offset, info.nbytes], [t.name, t.type, t.ne, t.offset, t.nbytes], name);
      assert.equal(info.absoluteOffset, m.data_start + t.offset);
      assert.equal(createHash('sha256').update(readTensorBytes(g, info)).digest('hex'), t.sha256, `${name} ${t.name}`);
    });
  }
});

test('llama-2-tiny-random.gguf header as in FORMATS.md §14.3', () => {
  const g = readGgufFile(fixture('models', 'llama-2-tiny-random', 'llama-2-tiny-random.gguf'));
  assert.equal(g.version, 3);
  assert.equal(g.metadata.size, 18);
  assert.equal(g.alignment, 32);
  assert.equal(g.dataOffset, 724416);
  assert.deepEqual([...g.metadata.keys()].slice(0, 11), [
    'general.architecture', 'general.name', 'llama.context_length', 'llama.embedding_length', 'llama.block_count',
    'llama.feed_forward_length', 'llama.rope.dimension_count', 'llama.attention.head_count', 'llama.attention.head_count_kv',
    'llama.attention.layer_norm_rms_epsilon', 'general.file_type',
  ]);
  assert.deepEqual(g.metadata.get('llama.attention.layer_norm_rms_epsilon'), { type: GgufValueType.FLOAT32, value: Math.fround(1e-5) });
  const tokens = g.metadata.get('tokenizer.ggml.tokens')!;
  assert.equal(tokens.type, GgufValueType.ARRAY);
  if (tokens.type === GgufValueType.ARRAY) {
    assert.equal(tokens.value.elementType, GgufValueType.STRING);
    assert.equal((tokens.value.values as string[])[15043], '▁Hello');
  }
  const scores = g.metadata.get('tokenizer.ggml.scores')!;
  assert.ok(scores.type === GgufValueType.ARRAY && scores.value.values instanceof Float32Array);
  const types = g.metadata.get('tokenizer.ggml.token_type')!;
  assert.ok(types.type === GgufValueType.ARRAY && types.value.values instanceof Int32Array);
  assert.deepEqual(g.tensors.map((t) => [t.name, t.offset]), [
    ['token_embd.weight', 0], ['blk.0.attn_q.weight', 512000], ['blk.0.attn_k.weight', 512128], ['blk.0.attn_v.weight', 512256],
    ['blk.0.attn_output.weight', 512384], ['blk.0.ffn_gate.weight', 512512], ['blk.0.ffn_up.weight', 513024], ['blk.0.ffn_down.weight', 513536],
    ['blk.0.attn_norm.weight', 514048], ['blk.0.ffn_norm.weight', 514080], ['output_norm.weight', 514112], ['output.weight', 514144],
  ]);
  assert.deepEqual([...g.tensors[0].ne], [8, 32000]);
  assert.equal(g.tensors[0].type, GgmlType.F16);
  assert.equal(g.tensors[8].type, GgmlType.F32);
});

// ---- bad input: hand-built headers -------------------------------------------------------------

class Bytes {
  parts: Buffer[] = [];
  raw(b: Uint8Array | number[]): this { this.parts.push(Buffer.from(b)); return this; }
  u32(v: number): this { const b = Buffer.alloc(4); b.writeUInt32LE(v); return this.raw(b); }
  u64(v: bigint | number): this { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); return this.raw(b); }
  str(s: string | Buffer): this { const b = typeof s === 'string' ? Buffer.from(s) : s; return this.u64(b.length).raw(b); }
  header(nTensors: bigint | number, nKv: bigint | number, version = 3): this { return this.raw(Buffer.from('GGUF')).u32(version).u64(nTensors).u64(nKv); }
  kvU32(key: string, v: number): this { return this.str(key).u32(GgufValueType.UINT32).u32(v); }
  tensor(name: string, ne: number[], type: number, offset: number): this {
    this.str(name).u32(ne.length);
    for (const n of ne) this.u64(n);
    return this.u32(type).u64(offset);
  }
  pad(to: number): this { const len = this.parts.reduce((s, p) => s + p.length, 0); return this.raw(new Uint8Array((to - (len % to)) % to)); }
  zeros(n: number): this { return this.raw(new Uint8Array(n)); }
  build(): Buffer { return Buffer.concat(this.parts); }
}

const dir = mkdtempSync(join(tmpdir(), 'gguf-bad-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;
function parse(bytes: Buffer): unknown {
  const p = join(dir, `f${counter++}.gguf`);
  writeFileSync(p, bytes);
  return readGgufFile(p);
}

function rejects(bytes: Buffer, Err: typeof FormatError | typeof UnsupportedError, pattern: RegExp, field?: string): void {
  assert.throws(() => parse(bytes), (e: unknown) => {
    assert.ok(e instanceof Err, `expected ${Err.name}, got ${String(e)}`);
    assert.match(e.message, pattern);
    assert.ok(e.file !== undefined && e.file.endsWith('.gguf'));
    if (field !== undefined) assert.equal(e.field, field);
    return true;
  });
}

test('a minimal valid file with one tensor parses', () => {
  const g = parse(new Bytes().header(1, 1).kvU32('a', 7).tensor('t', [4], GgmlType.F32, 0).pad(32).zeros(32).build()) as ReturnType<typeof readGgufFile>;
  assert.equal(g.tensors[0].nbytes, 16);
  assert.equal(g.dataOffset % 32, 0);
  const zeroTensors = parse(new Bytes().header(0, 1).kvU32('a', 7).build()) as ReturnType<typeof readGgufFile>;
  assert.equal(zeroTensors.dataOffset, zeroTensors.fileSize);
});

test('magic, version and endianness are checked', () => {
  rejects(Buffer.from('GGML0000000000000000000000'), FormatError, /not a GGUF file/, 'magic');
  rejects(new Bytes().header(0, 0, 1).build(), UnsupportedError, /version/, 'version');
  rejects(new Bytes().header(0, 0, 4).build(), UnsupportedError, /version/, 'version');
  rejects(new Bytes().header(0, 0, 0x03000000).build(), UnsupportedError, /big-endian/, 'version');
  rejects(Buffer.from('GGU'), FormatError, /truncated/, 'magic');
  const v2 = parse(new Bytes().header(0, 1, 2).kvU32('a', 1).build()) as ReturnType<typeof readGgufFile>;
  assert.equal(v2.version, 2);
});

test('absurd counts are refused before allocating', () => {
  rejects(new Bytes().header(1n << 63n, 0).build(), FormatError, /tensor count/, 'n_tensors');
  rejects(new Bytes().header(0, (1n << 64n) - 1n).build(), FormatError, /metadata count/, 'n_kv');
  rejects(new Bytes().header(0, 1).str('k').u32(GgufValueType.ARRAY).u32(GgufValueType.UINT32).u64(1n << 62n).build(), FormatError, /array length/, 'k.count');
  rejects(new Bytes().header(0, 1).u64(1n << 40n).raw([0, 0, 0, 0]).build(), FormatError, /string length/, 'kv[0].key');
  rejects(new Bytes().header(0, 1).str('k').u32(GgufValueType.STRING).u64(100).raw(Buffer.from('short')).build(), FormatError, /string length/, 'k');
});

test('metadata values are validated', () => {
  rejects(new Bytes().header(0, 1).str('k').u32(13).u32(0).build(), FormatError, /unknown metadata value type/);
  rejects(new Bytes().header(0, 1).str('k').u32(GgufValueType.ARRAY).u32(GgufValueType.ARRAY).u64(1).build(), FormatError, /nested arrays/, 'k.element_type');
  rejects(new Bytes().header(0, 1).str('k').u32(GgufValueType.ARRAY).u32(42).u64(1).build(), FormatError, /element type/, 'k.element_type');
  rejects(new Bytes().header(0, 1).str('k').u32(GgufValueType.STRING).str(Buffer.from([0xff, 0xfe])).build(), FormatError, /UTF-8/, 'k');
  rejects(new Bytes().header(0, 1).str(Buffer.from([0xc3])).u32(GgufValueType.UINT8).raw([1]).build(), FormatError, /UTF-8/);
  rejects(new Bytes().header(0, 1).str('k').u32(GgufValueType.BOOL).raw([2]).build(), FormatError, /BOOL/);
  rejects(new Bytes().header(0, 2).kvU32('k', 1).kvU32('k', 2).build(), FormatError, /duplicate metadata key/, 'k');
  rejects(new Bytes().header(0, 1).kvU32('', 1).build(), FormatError, /empty metadata key/);
  rejects(new Bytes().header(0, 1).str('k').u32(GgufValueType.UINT64).raw([1, 2, 3]).build(), FormatError, /truncated/, 'k');
  rejects(new Bytes().header(0, 1).str('general.alignment').u32(GgufValueType.UINT64).u64(32).build(), FormatError, /alignment/, 'general.alignment');
  rejects(new Bytes().header(0, 1).kvU32('general.alignment', 48).build(), FormatError, /power of two/, 'general.alignment');
  rejects(new Bytes().header(0, 1).kvU32('general.alignment', 0).build(), FormatError, /power of two/, 'general.alignment');
});

test('tensor infos are validated', () => {
  const one = (name: string, ne: number[], type: number, offset = 0, dataBytes = 64): Buffer =>
    new Bytes().header(1, 0).tensor(name, ne, type, offset).pad(32).zeros(dataBytes).build();
  rejects(one('x'.repeat(64), [4], GgmlType.F32), FormatError, /name is too long/);
  assert.doesNotThrow(() => parse(one('x'.repeat(63), [4], GgmlType.F32)));
  rejects(new Bytes().header(2, 0).tensor('t', [4], 0, 0).tensor('t', [4], 0, 32).pad(32).zeros(64).build(), FormatError, /duplicate tensor name/);
  rejects(one('t', [], GgmlType.F32), FormatError, /dimensions/, 'tensor t.n_dims');
  rejects(one('t', [1, 1, 1, 1, 1], GgmlType.F32), FormatError, /dimensions/, 'tensor t.n_dims');
  rejects(one('t', [4], 4), UnsupportedError, /unknown or removed ggml tensor type/, 'tensor t.type');
  rejects(one('t', [4], 99), UnsupportedError, /unknown or removed/, 'tensor t.type');
  rejects(one('t', [48], GgmlType.Q4_0), FormatError, /multiple of the block size/, 'tensor t.ne[0]');
  rejects(one('t', [2 ** 40, 2 ** 40], GgmlType.F32), FormatError, /dimension is larger than the file/, 'tensor t.ne[0]');
  rejects(one('t', [1000, 1000], GgmlType.F32), FormatError, /more elements than the file/, 'tensor t.ne');
  rejects(one('t', [4], GgmlType.F32, 32), FormatError, /not contiguous/, 'tensor t.offset');
  rejects(new Bytes().header(2, 0).tensor('a', [4], 0, 0).tensor('b', [4], 0, 16).pad(32).zeros(64).build(), FormatError, /not contiguous/, 'tensor b.offset');
  rejects(one('t', [64], GgmlType.F32, 0, 100), FormatError, /past the end/, 'tensor t');
  rejects(new Bytes().header(1, 0).tensor('t', [4], 0, 0).build().subarray(0, 56), FormatError, /truncated|larger than the file allows/);
  rejects(new Bytes().header(1, 0).tensor('t', [4], 0, 0).build(), FormatError, /past the end/);
});

test('a missing file is an IoError naming it', () => {
  assert.throws(() => readGgufFile(join(dir, 'nope.gguf')), /nope\.gguf/);
});
