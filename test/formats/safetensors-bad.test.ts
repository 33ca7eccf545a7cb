// The safetensors reader refuses malformed files with a typed error naming the problem (FORMATS.md
// §2.2), before allocating anything sized by the file's claims. Each case writes a corrupted file
// into a temporary folder.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsReader, ShardedSafetensors } from '../../src/formats/safetensors.js';
import { FormatError, UnsupportedError } from '../../src/errors.js';
import { fixture } from '../helpers/shared.js';

const dir = mkdtempSync(join(tmpdir(), 'qlora-st-bad-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let counter = 0;
/** A file with the given header bytes (length prefix = `claimedLength` or the real one) and data. */
function file(header: string | Uint8Array, data: Uint8Array = new Uint8Array(0), claimedLength?: bigint): string {
  const h = typeof header === 'string' ? Buffer.from(header, 'utf8') : header;
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(claimedLength ?? BigInt(h.byteLength));
  const path = join(dir, `case${counter++}.safetensors`);
  writeFileSync(path, Buffer.concat([prefix, h, data]));
  return path;
}

function refuses(path: string, kind: typeof FormatError | typeof UnsupportedError, pattern: RegExp): void {
  assert.throws(
    () => SafetensorsReader.open(path),
    (err: unknown) => {
      assert.ok(err instanceof kind, `expected ${kind.name}, got ${String(err)}`);
      assert.match(err.message, pattern);
      assert.ok(err.message.includes(path), 'message names the file');
      return true;
    },
  );
}

const one = (entry: object): string => JSON.stringify({ t: entry });

test('valid minimal files are accepted (control for the cases below)', () => {
  const r = SafetensorsReader.open(file(one({ dtype: 'F32', shape: [2], data_offsets: [0, 8] }), new Uint8Array(8)));
  assert.deepEqual(r.names(), ['t']);
  r.close();
  const empty = SafetensorsReader.open(file('{}'));
  assert.deepEqual(empty.names(), []);
  empty.close();
  // Metadata first or last, spaces after the JSON: all fine.
  const m = SafetensorsReader.open(file('{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"__metadata__":{"a":"b"}}    ', new Uint8Array(1)));
  assert.deepEqual(m.metadata, { a: 'b' });
  m.close();
});

test('truncated: shorter than the length prefix, and data cut short', () => {
  const tiny = join(dir, 'tiny.safetensors');
  writeFileSync(tiny, Buffer.from([1, 2, 3]));
  refuses(tiny, FormatError, /too short/);
  const stories = readFileSync(fixture('models', 'stories260K', 'model.safetensors'));
  const cut = join(dir, 'cut.safetensors');
  writeFileSync(cut, stories.subarray(0, stories.byteLength - 100));
  refuses(cut, FormatError, /outside the file/);
  const headerCut = join(dir, 'headercut.safetensors');
  writeFileSync(headerCut, stories.subarray(0, 1000));
  refuses(headerCut, FormatError, /header length exceeds the file size/);
});

test('header length absurd (2^63) or larger than the file', () => {
  refuses(file('{}', new Uint8Array(0), 1n << 63n), FormatError, /absurd/);
  refuses(file('{}', new Uint8Array(0), 1000n), FormatError, /exceeds the file size/);
});

test('offsets outside the data, overlapping, with holes, or trailing bytes', () => {
  const entry = (name: string, begin: number, end: number): [string, object] => [name, { dtype: 'U8', shape: [end - begin], data_offsets: [begin, end] }];
  const hdr = (...es: [string, object][]): string => JSON.stringify(Object.fromEntries(es));
  refuses(file(hdr(entry('a', 0, 16)), new Uint8Array(8)), FormatError, /outside the file.*a\.data_offsets|a\.data_offsets.*outside/);
  refuses(file(hdr(entry('a', 0, 4), entry('b', 2, 6)), new Uint8Array(6)), FormatError, /overlaps/);
  refuses(file(hdr(entry('a', 0, 4), entry('b', 6, 8)), new Uint8Array(8)), FormatError, /hole/);
  refuses(file(hdr(entry('a', 0, 4)), new Uint8Array(6)), FormatError, /trailing/);
  refuses(file(one({ dtype: 'U8', shape: [1], data_offsets: [3, 2] }), new Uint8Array(3)), FormatError, /begin <= end/);
  refuses(file(one({ dtype: 'U8', shape: [1], data_offsets: [-1, 0] }), new Uint8Array(3)), FormatError, /data_offsets/);
  refuses(file(one({ dtype: 'U8', shape: [1], data_offsets: [0] }), new Uint8Array(1)), FormatError, /data_offsets/);
});

test('byte size must equal product(shape) x dtype size', () => {
  refuses(file(one({ dtype: 'F32', shape: [3], data_offsets: [0, 8] }), new Uint8Array(8)), FormatError, /does not match shape/);
  refuses(file(one({ dtype: 'F16', shape: [2, 2], data_offsets: [0, 4] }), new Uint8Array(4)), FormatError, /does not match shape/);
});

test('absurd shapes are refused without allocating', () => {
  refuses(file(one({ dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 4] }), new Uint8Array(4)), FormatError, /does not match shape/);
  refuses(file(one({ dtype: 'F32', shape: [1e300], data_offsets: [0, 4] }), new Uint8Array(4)), FormatError, /shape/);
  refuses(file(one({ dtype: 'F32', shape: [-1], data_offsets: [0, 4] }), new Uint8Array(4)), FormatError, /non-negative/);
  refuses(file(one({ dtype: 'F32', shape: [1.5], data_offsets: [0, 4] }), new Uint8Array(4)), FormatError, /non-negative integers/);
  refuses(file(one({ dtype: 'F32', shape: 'big', data_offsets: [0, 4] }), new Uint8Array(4)), FormatError, /shape/);
});

test('unknown or unimplemented dtypes are UnsupportedError', () => {
  refuses(file(one({ dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] }), new Uint8Array(1)), UnsupportedError, /F8_E4M3/);
  refuses(file(one({ dtype: 'Q4', shape: [1], data_offsets: [0, 1] }), new Uint8Array(1)), UnsupportedError, /Q4/);
  refuses(file(one({ dtype: 7, shape: [1], data_offsets: [0, 1] }), new Uint8Array(1)), FormatError, /dtype/);
});

test('duplicate keys: tensor names, and fields inside an entry', () => {
  const dupName = '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}';
  refuses(file(dupName, new Uint8Array(2)), FormatError, /duplicate key.*field a\b|field a.*duplicate/);
  const dupField = '{"a":{"dtype":"U8","dtype":"F32","shape":[1],"data_offsets":[0,1]}}';
  refuses(file(dupField, new Uint8Array(1)), FormatError, /a\.dtype/);
  // Same key in different objects is fine; escaped quotes inside strings do not confuse the scan.
  const ok = SafetensorsReader.open(file('{"__metadata__":{"dtype":"x \\" ,\\"dtype\\":"},"dtype":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', new Uint8Array(1)));
  assert.deepEqual(ok.names(), ['dtype']);
  ok.close();
});

test('non-UTF-8, non-JSON and non-object headers', () => {
  refuses(file(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), FormatError, /UTF-8/);
  refuses(file('{"a": '), FormatError, /not valid JSON/);
  refuses(file('[1,2]'), FormatError, /not a JSON object/);
  refuses(file(one({ dtype: 'U8', shape: [1], data_offsets: [0, 1] }).replace('{"t"', '{"__metadata__":{"k":1},"t"'), new Uint8Array(1)), FormatError, /strings/);
  refuses(file('{"t": 5}'), FormatError, /not an object/);
});

test('sharded index: missing tensor in shard, path escaping the folder, bad JSON', () => {
  const shard = file(one({ dtype: 'U8', shape: [1], data_offsets: [0, 1] }), new Uint8Array(1));
  const shardName = shard.slice(dir.length + 1);
  const idx = (weightMap: object): string => {
    const p = join(dir, `idx${counter++}.json`);
    writeFileSync(p, JSON.stringify({ metadata: { total_size: 1 }, weight_map: weightMap }));
    return p;
  };
  const okIndex = ShardedSafetensors.open(idx({ t: shardName }));
  assert.deepEqual(okIndex.names(), ['t']);
  okIndex.close();
  assert.throws(() => ShardedSafetensors.open(idx({ u: shardName })), /does not hold/);
  assert.throws(() => ShardedSafetensors.open(idx({ t: '../x.safetensors' })), (e: unknown) => e instanceof FormatError && /file name/.test(e.message));
  const broken = join(dir, 'broken.json');
  writeFileSync(broken, '{"weight_map": {"a": "x", "a": "y"}}');
  assert.throws(() => ShardedSafetensors.open(broken), /duplicate key/);
});
