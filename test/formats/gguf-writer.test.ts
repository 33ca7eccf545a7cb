// GGUF writer: rewriting fixtures reproduces them byte for byte, every value type round-trips,
// custom alignment, and refusals that leave no file behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture } from '../helpers/shared.js';
import { ConfigError, FormatError, ShapeError } from '../../src/errors.js';
import { readGgufFile, readTensorBytes } from '../../src/formats/gguf/reader.js';
import { writeGguf, type GgufTensorToWrite } from '../../src/formats/gguf/writer.js';
import { GgmlType } from '../../src/formats/gguf/ggml-types.js';
import { GgufValueType, type GgufValue } from '../../src/formats/gguf/types.js';

const dir = mkdtempSync(join(tmpdir(), 'gguf-write-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('rewriting a fixture\'s metadata and tensors reproduces it byte for byte', () => {
  const files = [
    fixture('gguf', 'stories260K-F32.gguf'),
    fixture('gguf', 'stories260K-Q4_0.gguf'),
    fixture('gguf', 'stories260K-lora-f32.gguf'),
    fixture('models', 'llama-2-tiny-random', 'llama-2-tiny-random.gguf'),
  ];
  for (const src of files) {
    const g = readGgufFile(src);
    const out = join(dir, 'copy.gguf');
    writeGguf(out, {
      metadata: [...g.metadata],
      tensors: g.tensors.map((t) => ({ name: t.name, ne: t.ne, type: t.type, data: () => readTensorBytes(g, t) })),
    });
    assert.ok(Buffer.compare(readFileSync(out), readFileSync(src)) === 0, src);
  }
});

const allTypes: Array<[string, GgufValue]> = [
  ['u8', { type: GgufValueType.UINT8, value: 255 }],
  ['i8', { type: GgufValueType.INT8, value: -128 }],
  ['u16', { type: GgufValueType.UINT16, value: 65535 }],
  ['i16', { type: GgufValueType.INT16, value: -32768 }],
  ['u32', { type: GgufValueType.UINT32, value: 4294967295 }],
  ['i32', { type: GgufValueType.INT32, value: -2147483648 }],
  ['f32', { type: GgufValueType.FLOAT32, value: Math.fround(0.1) }],
  ['bool', { type: GgufValueType.BOOL, value: true }],
  ['str', { type: GgufValueType.STRING, value: '\uFEFFhé ▁ 😀' }],
  ['empty', { type: GgufValueType.STRING, value: '' }],
  ['u64', { type: GgufValueType.UINT64, value: (1n << 64n) - 1n }],
  ['i64', { type: GgufValueType.INT64, value: -(1n << 63n) }],
  ['f64', { type: GgufValueType.FLOAT64, value: 0.1 }],
  ['a.u8', { type: GgufValueType.ARRAY, value: { elementType: GgufValueType.UINT8, values: Uint8Array.of(1, 2, 255) } }],
  ['a.i8', { type: GgufValueType.ARRAY, value: { elementType: GgufValueType.INT8, values: Int8Array.of(-1, 127) } }],
  ['a.u16', { type: GgufValueType.ARRAY, value: { elementType: GgufValueType.UINT16, values: Uint16Array.of(7) } }],
  ['a.i16', { type: GgufValueType.ARRAY, value: { elementType: GgufValueType.INT16, values: Int16Array.of(-7) } }],
  ['a.u32', { type: GgufValueType.ARRAY, value: { elementType: GgufValueType.UINT32, values: Uint32Array.of(1, 4294967295) } }],
  ['a.i32', { type: GgufValueType.ARRAY, value: { elementType: GgufValueType.INT32, values: Int32Array.of(-5, 6) } }],
  ['a.f32', { type: GgufValueType.ARRAY, value: { elementType: GgufValueType.FLOAT32, values: Float32Array.of(-1000, 1.5, Infinity) } }],
  ['a.f64', { type: GgufValueType.ARRAY, value: { elementType: GgufValueType.FLOAT64, values: Float64Array.of(Math.PI) } }],
  ['a.u64', { type: GgufValueType.ARRAY, value: { elementType: GgufValueType.UINT64, values: BigUint64Array.of(0n, 1n << 63n) } }],
  ['a.i64', { type: GgufValueType.ARRAY, value: { elementType: GgufValueType.INT64, values: BigInt64Array.of(-1n) } }],
  ['a.bool', { type: GgufValueType.ARRAY, value: { elementType: GgufValueType.BOOL, values: [true, false] } }],
  ['a.str', { type: GgufValueType.ARRAY, value: { elementType: GgufValueType.STRING, values: ['a', '', 'ñ'] } }],
  ['a.empty', { type: GgufValueType.ARRAY, value: { elementType: GgufValueType.INT32, values: new Int32Array(0) } }],
];

test('every metadata value type round-trips, in order, with its type id', () => {
  const out = join(dir, 'values.gguf');
  writeGguf(out, { metadata: allTypes, tensors: [] });
  const g = readGgufFile(out);
  assert.deepEqual([...g.metadata], allTypes);
  assert.equal(g.tensors.length, 0);
  assert.equal(g.dataOffset, g.fileSize); // no padding after the KVs without tensors
});

function tensors(): GgufTensorToWrite[] {
  return [
    { name: 'a', ne: [3], type: GgmlType.F32, data: new Uint8Array(12).fill(1) },
    { name: 'b', ne: [32, 2], type: GgmlType.Q4_0, data: () => new Uint8Array(36).fill(2) },
    { name: 'c', ne: [5, 1, 1, 2], type: GgmlType.F16, data: new Uint8Array(20).fill(3) },
  ];
}

test('alignment 64: general.alignment appended, data section and every tensor 64-aligned', () => {
  const out = join(dir, 'align64.gguf');
  writeGguf(out, { metadata: [['general.architecture', { type: GgufValueType.STRING, value: 'llama' }]], tensors: tensors(), alignment: 64 });
  const g = readGgufFile(out);
  assert.equal(g.alignment, 64);
  assert.deepEqual(g.metadata.get('general.alignment'), { type: GgufValueType.UINT32, value: 64 });
  assert.equal(g.dataOffset % 64, 0);
  assert.deepEqual(g.tensors.map((t) => [t.offset, t.nbytes]), [[0, 12], [64, 36], [128, 20]]);
  assert.equal(g.fileSize, g.dataOffset + 192); // padded after the last tensor too
  assert.deepEqual(Array.from(readTensorBytes(g, g.tensors[1])), new Array(36).fill(2));
  // The key given explicitly is kept where it is; the option must agree with it.
  const out2 = join(dir, 'align64b.gguf');
  writeGguf(out2, { metadata: [['general.alignment', { type: GgufValueType.UINT32, value: 64 }]], tensors: tensors() });
  assert.equal(readGgufFile(out2).alignment, 64);
  assert.throws(() => writeGguf(out2, { metadata: [['general.alignment', { type: GgufValueType.UINT32, value: 64 }]], tensors: tensors(), alignment: 32 }), ConfigError);
  assert.throws(() => writeGguf(out2, { metadata: [], tensors: tensors(), alignment: 48 }), ConfigError);
});

test('refusals name the file and leave the destination untouched, with no temporary behind', () => {
  const out = join(dir, 'keep.gguf');
  writeFileSync(out, 'old');
  const attempt = (spec: Parameters<typeof writeGguf>[1], Err: typeof ConfigError, re: RegExp): void => {
    assert.throws(() => writeGguf(out, spec), (e: unknown) => e instanceof Err && re.test(e.message) && e.file === out);
    assert.equal(readFileSync(out, 'utf8'), 'old');
  };
  const md = (v: GgufValue): Array<[string, GgufValue]> => [['k', v]];
  attempt({ metadata: md({ type: GgufValueType.UINT8, value: 256 }), tensors: [] }, ConfigError, /does not fit/);
  attempt({ metadata: md({ type: GgufValueType.UINT32, value: 1.5 }), tensors: [] }, ConfigError, /does not fit/);
  attempt({ metadata: md({ type: GgufValueType.UINT64, value: 5 as unknown as bigint }), tensors: [] }, ConfigError, /does not fit/);
  attempt({ metadata: md({ type: GgufValueType.ARRAY, value: { elementType: GgufValueType.ARRAY as never, values: [] } }), tensors: [] }, ConfigError, /nested arrays/);
  attempt({ metadata: md({ type: GgufValueType.ARRAY, value: { elementType: GgufValueType.INT32, values: Float32Array.of(1) } }), tensors: [] }, ConfigError, /do not match/);
  attempt({ metadata: [['k', { type: GgufValueType.BOOL, value: true }], ['k', { type: GgufValueType.BOOL, value: true }]], tensors: [] }, ConfigError, /duplicate metadata key/);
  attempt({ metadata: [], tensors: [...tensors(), tensors()[0]] }, ConfigError, /duplicate tensor name/);
  attempt({ metadata: [], tensors: [{ name: 'x'.repeat(64), ne: [1], type: GgmlType.F32, data: new Uint8Array(4) }] }, ConfigError, /name length/);
  attempt({ metadata: [], tensors: [{ name: 't', ne: [48], type: GgmlType.Q4_0, data: new Uint8Array(27) }] }, ShapeError, /block size/);
  attempt({ metadata: [], tensors: [{ name: 't', ne: [1, 1, 1, 1, 1], type: GgmlType.F32, data: new Uint8Array(4) }] }, ShapeError, /shape/);
  attempt({ metadata: [], tensors: [{ name: 't', ne: [4], type: 4 as GgmlType, data: new Uint8Array(4) }] }, ConfigError, /unknown ggml type/);
  // Data of the wrong size is found while streaming: the temporary file is removed.
  attempt({ metadata: [], tensors: [{ name: 't', ne: [4], type: GgmlType.F32, data: () => new Uint8Array(15) }] }, FormatError, /data size/);
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
  assert.ok(existsSync(out));
});
