// safetensors reader: one file (SafetensorsReader) or a sharded checkpoint (ShardedSafetensors),
// both behind the TensorSource interface. Tensors are read one at a time from their file offsets
// with synchronous positioned reads; the whole file is never loaded. The header is validated as
// the reference reader does (huggingface/safetensors `safetensors/src/tensor.rs`,
// `Metadata::validate`; FORMATS.md §2.2) before anything else is allocated.
// The writer lives in safetensors-write.ts and is re-exported here.

import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { FormatError, IoError, ShapeError } from '../errors.js';
import { bytesToF32, HOST_LITTLE_ENDIAN } from './convert.js';
import { dtypeBytes, type DType } from './dtype.js';
import { isJsonObject, parseJsonStrict } from './json-strict.js';

export { writeSafetensors, writeShardedSafetensors, type TensorToWrite } from './safetensors-write.js';

/** Largest header the reference reader accepts (`MAX_HEADER_SIZE` in tensor.rs). */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;
/** Bytes of the little-endian u64 header length that starts every file. */
export const SAFETENSORS_LENGTH_PREFIX_BYTES = 8;
/** Key of the free-form string map in the header. */
export const SAFETENSORS_METADATA_KEY = '__metadata__';
/** File names used by Hugging Face checkpoints. */
export const SAFE_WEIGHTS_NAME = 'model.safetensors';
export const SAFE_WEIGHTS_INDEX_NAME = 'model.safetensors.index.json';

export interface TensorEntry {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly file: string;
  /** absolute byte offset of the data in file */
  readonly offset: number;
  readonly byteLength: number;
}

/** One file or a sharded checkpoint, same API. */
export interface TensorSource {
  /** Tensor names, sorted. */
  names(): string[];
  has(name: string): boolean;
  /** Throws FormatError naming the tensor if absent. */
  entry(name: string): TensorEntry;
  /** Raw little-endian bytes, a fresh copy, read from the file offset. */
  readBytes(name: string): Uint8Array;
  /** Any float/int dtype converted to f32 (exact for every dtype but F64 and large 64-bit ints). */
  readF32(name: string): Float32Array;
  /** readF32 into `out` (exactly the tensor's element count): no fresh array per tensor. */
  readF32Into(name: string, out: Float32Array): void;
  readonly metadata: Readonly<Record<string, string>>;
  close(): void;
}

/** Largest single readSync (Node caps one call at 2 GiB); larger tensors are read in pieces. */
const MAX_READ_CHUNK = 1 << 30;

/** Reads exactly `length` bytes at `position` into `target`, or throws naming the file. */
function readExactly(fd: number, file: string, target: Uint8Array, position: number): void {
  let done = 0;
  while (done < target.byteLength) {
    const len = Math.min(target.byteLength - done, MAX_READ_CHUNK);
    let n: number;
    try {
      n = readSync(fd, target, done, len, position + done);
    } catch (cause) {
      throw new IoError('read failed', { file, offset: position + done, cause });
    }
    if (n === 0) {
      throw new FormatError('file ended early (was it truncated while open?)', {
        file,
        offset: position + done,
        expected: `${target.byteLength - done} more bytes`,
        got: 'end of file',
      });
    }
    done += n;
  }
}

interface ParsedHeader {
  readonly entries: Map<string, TensorEntry>;
  readonly metadata: Readonly<Record<string, string>>;
}

function isSafeNonNegativeInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Validates a header (already decoded JSON) against the file size and returns its entries with
 * absolute offsets. `dataStart` = 8 + N; `fileSize` bounds every offset.
 */
function validateHeader(header: unknown, file: string, dataStart: number, fileSize: number): ParsedHeader {
  if (!isJsonObject(header)) {
    throw new FormatError('safetensors header is not a JSON object', { file, offset: 8, got: Array.isArray(header) ? 'array' : typeof header });
  }
  const bufferBytes = fileSize - dataStart;
  let metadata: Record<string, string> = {};
  const raw: { name: string; dtype: DType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === SAFETENSORS_METADATA_KEY) {
      metadata = parseMetadata(value, file);
      continue;
    }
    if (!isJsonObject(value)) {
      throw new FormatError('tensor entry is not an object', { file, field: name, expected: '{dtype, shape, data_offsets}' });
    }
    const { dtype, shape, data_offsets: offsets } = value;
    if (typeof dtype !== 'string') {
      throw new FormatError('tensor dtype is not a string', { file, field: `${name}.dtype`, got: JSON.stringify(dtype) });
    }
    const elementBytes = dtypeBytes(dtype, { file, field: `${name}.dtype` });
    if (!Array.isArray(shape) || !shape.every(isSafeNonNegativeInt)) {
      throw new FormatError('tensor shape is not a list of non-negative integers', { file, field: `${name}.shape`, got: JSON.stringify(shape) });
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isSafeNonNegativeInt) || offsets[0] > offsets[1]) {
      throw new FormatError('tensor data_offsets is not [begin, end] with 0 <= begin <= end', {
        file,
        field: `${name}.data_offsets`,
        got: JSON.stringify(offsets),
      });
    }
    const [begin, end] = offsets as [number, number];
    if (end > bufferBytes) {
      throw new FormatError('tensor data lies outside the file', {
        file,
        field: `${name}.data_offsets`,
        expected: `end <= ${bufferBytes} (byte buffer size)`,
        got: String(end),
      });
    }
    // BigInt product: a shape like [2^40, 2^40] must be refused, not rounded.
    const wanted = (shape as number[]).reduce((acc: bigint, d: number) => acc * BigInt(d), 1n) * BigInt(elementBytes);
    if (wanted !== BigInt(end - begin)) {
      throw new FormatError('tensor byte size does not match shape x dtype', {
        file,
        field: name,
        expected: `${wanted} bytes (shape ${JSON.stringify(shape)} x ${elementBytes})`,
        got: `${end - begin} bytes`,
      });
    }
    raw.push({ name, dtype: dtype as DType, shape: shape as number[], begin, end });
  }
  // The tensors must tile the buffer exactly (no holes, no overlaps, no trailing bytes).
  const byBegin = [...raw].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const t of byBegin) {
    if (t.begin !== cursor) {
      throw new FormatError(t.begin < cursor ? 'tensor data overlaps another tensor' : 'hole before tensor data', {
        file,
        field: `${t.name}.data_offsets`,
        expected: `begin = ${cursor}`,
        got: String(t.begin),
      });
    }
    cursor = t.end;
  }
  if (cursor !== bufferBytes) {
    throw new FormatError('tensor data does not cover the byte buffer exactly (trailing bytes)', {
      file,
      offset: dataStart + cursor,
      expected: `${bufferBytes} data bytes`,
      got: `${cursor}`,
    });
  }
  const entries = new Map<string, TensorEntry>();
  for (const t of raw) {
    entries.set(
      t.name,
      Object.freeze({
        name: t.name,
        dtype: t.dtype,
        shape: Object.freeze(t.shape),
        file,
        offset: dataStart + t.begin,
        byteLength: t.end - t.begin,
      }),
    );
  }
  return { entries, metadata: Object.freeze(metadata) };
}

function parseMetadata(value: unknown, file: string): Record<string, string> {
  if (value === null) return {};
  if (!isJsonObject(value)) {
    throw new FormatError('__metadata__ is not an object', { file, field: SAFETENSORS_METADATA_KEY, expected: '{string: string}' });
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') {
      throw new FormatError('__metadata__ values must be strings', { file, field: `${SAFETENSORS_METADATA_KEY}.${k}`, got: JSON.stringify(v) });
    }
    out[k] = v;
  }
  return out;
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** A single .safetensors file, read by tensor from file offsets. */
export class SafetensorsReader implements TensorSource {
  readonly metadata: Readonly<Record<string, string>>;
  /** Header length N. */
  readonly headerBytes: number;
  readonly fileSize: number;
  private fd: number;
  private readonly sortedNames: string[];
  /** File bytes of a non-f32 tensor on their way to readF32Into's output (grown on demand). */
  private scratch = new Uint8Array(0);

  private constructor(
    readonly file: string,
    fd: number,
    fileSize: number,
    headerBytes: number,
    private readonly entries: Map<string, TensorEntry>,
    metadata: Readonly<Record<string, string>>,
  ) {
    this.fd = fd;
    this.fileSize = fileSize;
    this.headerBytes = headerBytes;
    this.metadata = metadata;
    this.sortedNames = [...entries.keys()].sort();
  }

  static open(path: string): SafetensorsReader {
    const file = resolve(path);
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (cause) {
      throw new IoError('cannot open safetensors file', { file, cause });
    }
    try {
      const fileSize = fstatSync(fd).size;
      if (fileSize < SAFETENSORS_LENGTH_PREFIX_BYTES) {
        throw new FormatError('file too short for a safetensors header length', {
          file,
          expected: `at least ${SAFETENSORS_LENGTH_PREFIX_BYTES} bytes`,
          got: `${fileSize} bytes`,
        });
      }
      const prefix = new Uint8Array(SAFETENSORS_LENGTH_PREFIX_BYTES);
      readExactly(fd, file, prefix, 0);
      const n = new DataView(prefix.buffer).getBigUint64(0, true);
      if (n > BigInt(SAFETENSORS_MAX_HEADER_BYTES)) {
        throw new FormatError('safetensors header length is absurd', {
          file,
          offset: 0,
          expected: `at most ${SAFETENSORS_MAX_HEADER_BYTES}`,
          got: String(n),
          hint: 'is this a safetensors file?',
        });
      }
      const headerBytes = Number(n);
      if (SAFETENSORS_LENGTH_PREFIX_BYTES + headerBytes > fileSize) {
        throw new FormatError('safetensors header length exceeds the file size', {
          file,
          offset: 0,
          expected: `at most ${fileSize - SAFETENSORS_LENGTH_PREFIX_BYTES}`,
          got: String(headerBytes),
          hint: 'the file is truncated or not a safetensors file',
        });
      }
      const headerRaw = new Uint8Array(headerBytes);
      readExactly(fd, file, headerRaw, SAFETENSORS_LENGTH_PREFIX_BYTES);
      let text: string;
      try {
        text = utf8Strict.decode(headerRaw);
      } catch (cause) {
        throw new FormatError('safetensors header is not valid UTF-8', { file, offset: SAFETENSORS_LENGTH_PREFIX_BYTES, cause });
      }
      const header = parseJsonStrict(text, file, 'safetensors header');
      const dataStart = SAFETENSORS_LENGTH_PREFIX_BYTES + headerBytes;
      const { entries, metadata } = validateHeader(header, file, dataStart, fileSize);
      return new SafetensorsReader(file, fd, fileSize, headerBytes, entries, metadata);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  names(): string[] {
    return [...this.sortedNames];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  entry(name: string): TensorEntry {
    const e = this.entries.get(name);
    if (e === undefined) {
      throw new FormatError('no such tensor', { file: this.file, field: name, hint: `the file holds ${this.entries.size} tensors` });
    }
    return e;
  }

  readBytes(name: string): Uint8Array {
    const out = new Uint8Array(this.entry(name).byteLength);
    this.readInto(name, out);
    return out;
  }

  readF32(name: string): Float32Array {
    const e = this.entry(name);
    if (e.dtype === 'F32' && HOST_LITTLE_ENDIAN) {
      // Read straight into the result: no second copy of a possibly large tensor.
      const out = new Float32Array(e.byteLength / 4);
      this.readInto(name, new Uint8Array(out.buffer));
      return out;
    }
    return bytesToF32(this.readBytes(name), e.dtype, name);
  }

  readF32Into(name: string, out: Float32Array): void {
    const e = this.entry(name);
    if (e.dtype === 'F32' && HOST_LITTLE_ENDIAN) {
      if (out.length * 4 !== e.byteLength) throw new ShapeError('output length does not match the tensor', { file: this.file, field: name, expected: String(e.byteLength / 4), got: String(out.length) });
      this.readInto(name, new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
      return;
    }
    // The file bytes go through one scratch buffer kept by the reader (grown to the largest tensor).
    if (this.scratch.length < e.byteLength) this.scratch = new Uint8Array(e.byteLength);
    const bytes = this.scratch.subarray(0, e.byteLength);
    this.readInto(name, bytes);
    bytesToF32(bytes, e.dtype, name, out);
  }

  private readInto(name: string, target: Uint8Array): void {
    const e = this.entry(name);
    if (this.fd === -1) throw new IoError('reader is closed', { file: this.file, field: name });
    readExactly(this.fd, this.file, target, e.offset);
  }

  close(): void {
    if (this.fd !== -1) {
      closeSync(this.fd);
      this.fd = -1;
    }
  }
}

/** A checkpoint split over several files, addressed through `model.safetensors.index.json`. */
export class ShardedSafetensors implements TensorSource {
  readonly metadata: Readonly<Record<string, string>>;
  private readonly shardOf = new Map<string, SafetensorsReader>();
  private readonly shards: SafetensorsReader[] = [];
  private readonly sortedNames: string[];

  private constructor(readonly indexFile: string, weightMap: Map<string, string>) {
    const dir = dirname(indexFile);
    const byFile = new Map<string, SafetensorsReader>();
    try {
      for (const [name, shardName] of weightMap) {
        let reader = byFile.get(shardName);
        if (reader === undefined) {
          reader = SafetensorsReader.open(join(dir, shardName));
          byFile.set(shardName, reader);
          this.shards.push(reader);
        }
        if (!reader.has(name)) {
          throw new FormatError('index names a tensor its shard does not hold', {
            file: indexFile,
            field: `weight_map.${name}`,
            expected: `tensor in ${shardName}`,
            got: 'absent',
          });
        }
        this.shardOf.set(name, reader);
      }
    } catch (err) {
      for (const r of this.shards) r.close();
      throw err;
    }
    this.sortedNames = [...weightMap.keys()].sort();
    this.metadata = this.shards.length > 0 ? this.shards[0].metadata : Object.freeze({});
  }

  /** Opens the index file and every shard it names (headers validated, data not read). */
  static open(indexPath: string): ShardedSafetensors {
    const indexFile = resolve(indexPath);
    let text: string;
    try {
      text = readFileSync(indexFile, 'utf8');
    } catch (cause) {
      throw new IoError('cannot read safetensors index', { file: indexFile, cause });
    }
    const index = parseJsonStrict(text, indexFile, 'safetensors index');
    if (!isJsonObject(index) || !isJsonObject(index.weight_map)) {
      throw new FormatError('index has no weight_map object', { file: indexFile, field: 'weight_map', expected: '{tensor_name: file_name}' });
    }
    const weightMap = new Map<string, string>();
    for (const [name, shard] of Object.entries(index.weight_map)) {
      // Shard names are plain file names beside the index; anything else could escape the folder.
      if (typeof shard !== 'string' || shard === '' || basename(shard) !== shard || shard === '..' || shard === '.') {
        throw new FormatError('weight_map value is not a file name in the index folder', {
          file: indexFile,
          field: `weight_map.${name}`,
          got: JSON.stringify(shard),
        });
      }
      weightMap.set(name, shard);
    }
    return new ShardedSafetensors(indexFile, weightMap);
  }

  /** Files of the shards, in first-use order. */
  files(): string[] {
    return this.shards.map((s) => s.file);
  }

  names(): string[] {
    return [...this.sortedNames];
  }

  has(name: string): boolean {
    return this.shardOf.has(name);
  }

  private reader(name: string): SafetensorsReader {
    const r = this.shardOf.get(name);
    if (r === undefined) {
      throw new FormatError('no such tensor', { file: this.indexFile, field: name, hint: `the checkpoint holds ${this.shardOf.size} tensors` });
    }
    return r;
  }

  entry(name: string): TensorEntry {
    return this.reader(name).entry(name);
  }

  readBytes(name: string): Uint8Array {
    return this.reader(name).readBytes(name);
  }

  readF32(name: string): Float32Array {
    return this.reader(name).readF32(name);
  }

  readF32Into(name: string, out: Float32Array): void {
    this.reader(name).readF32Into(name, out);
  }

  close(): void {
    for (const r of this.shards) r.close();
  }
}

/**
 * Opens a safetensors checkpoint: a `.safetensors` file, an index `.json` file, or a folder holding
 * `model.safetensors` or `model.safetensors.index.json` (the single file wins when both exist, as
 * in transformers' loader).
 */
export function openCheckpoint(dirOrFile: string): TensorSource {
  const path = resolve(dirOrFile);
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (cause) {
    throw new IoError('no such file or folder', { file: path, cause });
  }
  if (!isDir) return path.endsWith('.json') ? ShardedSafetensors.open(path) : SafetensorsReader.open(path);
  const single = join(path, SAFE_WEIGHTS_NAME);
  if (existsSync(single)) return SafetensorsReader.open(single);
  const index = join(path, SAFE_WEIGHTS_INDEX_NAME);
  if (existsSync(index)) return ShardedSafetensors.open(index);
  throw new FormatError('folder holds no safetensors weights', {
    file: path,
    expected: `${SAFE_WEIGHTS_NAME} or ${SAFE_WEIGHTS_INDEX_NAME}`,
    got: 'neither',
    hint: 'PyTorch .bin checkpoints are not supported; convert them to safetensors',
  });
}
