// GGUF reader: parses the header (metadata + tensor infos) of a GGUF v2/v3 file by reading only
// the header region, and reads one tensor's bytes on demand. It trusts nothing: every count,
// length, type id, shape and offset is checked against the format and the file size before
// anything is allocated, with the checks llama.cpp's `gguf_init_from_file_impl` makes.
//
// Sources: ggml-org/llama.cpp `ggml/src/gguf.cpp`, `ggml/include/gguf.h`. FORMATS.md §6.
// Not here: decoding tensor data to f32 (dequant.ts), llama names and config (llama.ts).

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { FormatError, IoError, UnsupportedError } from '../../errors.js';
import { ggmlTypeName, ggmlTypeTraits, type GgmlType } from './ggml-types.js';
import {
  GGUF_ALIGNMENT_KEY,
  GGUF_ARRAY_CTORS,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_MAX_DIMS,
  GGUF_MAX_TENSOR_NAME_BYTES,
  GGUF_MIN_READ_VERSION,
  GGUF_SCALAR_BYTES,
  GGUF_VERSION,
  GgufValueType,
  alignUp,
  ggufValueTypeName,
  type GgufArrayValues,
  type GgufElementType,
  type GgufFile,
  type GgufTensorInfo,
  type GgufValue,
} from './types.js';

/** Smallest encoding of one KV: key length u64 + 1 key byte + type u32 + 1 value byte. */
const MIN_KV_BYTES = 8 + 1 + 4 + 1;
/** Smallest encoding of one tensor info: name length u64 + 1 byte, n_dims u32, one ne u64, type u32, offset u64. */
const MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 8 + 4 + 8;
/** Header bytes read from disk at a time. */
const READ_CHUNK = 1 << 20;
/** Largest single readSync (Node refuses lengths of 2 GiB and more). */
const MAX_READ_SYSCALL = 1 << 30;

/** Fills target[0, length) from the file at `position`; returns the bytes read (< length only at end of file). */
function readFully(fd: number, target: Uint8Array, length: number, position: number): number {
  let got = 0;
  while (got < length) {
    const r = readSync(fd, target, got, Math.min(length - got, MAX_READ_SYSCALL), position + got);
    if (r === 0) break;
    got += r;
  }
  return got;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Sequential little-endian reader over a file descriptor, buffering a window of the header. */
class HeaderCursor {
  pos = 0;
  private store: Buffer = Buffer.alloc(0);
  private buf: Buffer = this.store;
  private bufStart = 0;
  private view: DataView = new DataView(new ArrayBuffer(0));

  constructor(
    readonly fd: number,
    readonly path: string,
    readonly fileSize: number,
  ) {}

  remaining(): number {
    return this.fileSize - this.pos;
  }

  fail(summary: string, field: string, expected: string, got: string, offset = this.pos): FormatError {
    return new FormatError(summary, { file: this.path, field, offset, expected, got });
  }

  /** Makes [pos, pos + n) readable and returns its offset in the buffer. */
  private need(n: number, field: string): number {
    if (n > this.remaining()) {
      throw this.fail('file is truncated', field, `${n} more bytes`, `${this.remaining()} bytes left in a ${this.fileSize}-byte file`);
    }
    const bufEnd = this.bufStart + this.buf.length;
    if (this.pos >= this.bufStart && this.pos + n <= bufEnd) return this.pos - this.bufStart;
    const size = Math.min(Math.max(n, READ_CHUNK), this.remaining());
    if (this.store.length < size) this.store = Buffer.allocUnsafe(size);
    const got = readFully(this.fd, this.store, size, this.pos);
    if (got < size) throw this.fail('file shrank while reading', field, `${size} bytes`, `${got} bytes`);
    this.bufStart = this.pos;
    this.buf = this.store.subarray(0, size);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    return 0;
  }

  bytes(n: number, field: string): Uint8Array {
    const at = this.need(n, field);
    this.pos += n;
    return this.buf.subarray(at, at + n);
  }

  u8(field: string): number {
    const at = this.need(1, field);
    this.pos += 1;
    return this.view.getUint8(at);
  }

  u32(field: string): number {
    const at = this.need(4, field);
    this.pos += 4;
    return this.view.getUint32(at, true);
  }

  u64(field: string): bigint {
    const at = this.need(8, field);
    this.pos += 8;
    return this.view.getBigUint64(at, true);
  }

  /** A u64 that counts bytes or items: must fit in `limit` (derived from the file size). */
  count(field: string, limit: number, what: string): number {
    const start = this.pos;
    const v = this.u64(field);
    if (v > BigInt(limit)) throw this.fail(`${what} is larger than the file allows`, field, `at most ${limit}`, v.toString(), start);
    return Number(v);
  }

  str(field: string): string {
    const start = this.pos;
    const n = this.count(field, this.remaining() - 8, 'string length');
    const b = this.bytes(n, field);
    try {
      return utf8.decode(b);
    } catch (cause) {
      throw new FormatError('string is not valid UTF-8', { file: this.path, field, offset: start, expected: 'UTF-8 text', got: `${n} bytes`, cause });
    }
  }

  /** `n` fixed-size elements of `type` as a typed array (copied, little-endian decoded). */
  numericArray(type: GgufElementType, n: number, field: string): GgufArrayValues {
    const size = GGUF_SCALAR_BYTES[type]!;
    const at = this.need(n * size, field);
    this.pos += n * size;
    if (type === GgufValueType.BOOL) {
      const out = new Array<boolean>(n);
      for (let i = 0; i < n; i++) out[i] = this.boolAt(at + i, `${field}[${i}]`);
      return out;
    }
    const Ctor = GGUF_ARRAY_CTORS[type as keyof typeof GGUF_ARRAY_CTORS];
    const out = new Ctor(n);
    for (let i = 0; i < n; i++) (out as unknown as (number | bigint)[])[i] = this.scalarAt(type, at + i * size);
    return out;
  }

  private boolAt(at: number, field: string): boolean {
    const b = this.view.getUint8(at);
    if (b > 1) throw this.fail('BOOL value is not 0 or 1', field, '0 or 1', String(b), this.bufStart + at);
    return b === 1;
  }

  private scalarAt(type: GgufValueType, at: number): number | bigint {
    const v = this.view;
    switch (type) {
      case GgufValueType.UINT8: return v.getUint8(at);
      case GgufValueType.INT8: return v.getInt8(at);
      case GgufValueType.UINT16: return v.getUint16(at, true);
      case GgufValueType.INT16: return v.getInt16(at, true);
      case GgufValueType.UINT32: return v.getUint32(at, true);
      case GgufValueType.INT32: return v.getInt32(at, true);
      case GgufValueType.FLOAT32: return v.getFloat32(at, true);
      case GgufValueType.FLOAT64: return v.getFloat64(at, true);
      case GgufValueType.UINT64: return v.getBigUint64(at, true);
      case GgufValueType.INT64: return v.getBigInt64(at, true);
      default: throw new Error(`unreachable: scalar type ${type}`);
    }
  }

  scalar(type: GgufValueType, field: string): GgufValue {
    const size = GGUF_SCALAR_BYTES[type]!;
    const at = this.need(size, field);
    this.pos += size;
    if (type === GgufValueType.BOOL) return { type, value: this.boolAt(at, field) };
    if (type === GgufValueType.UINT64 || type === GgufValueType.INT64) return { type, value: this.scalarAt(type, at) as bigint };
    return { type, value: this.scalarAt(type, at) as number } as GgufValue;
  }
}

function readValue(c: HeaderCursor, type: number, field: string): GgufValue {
  if (type === GgufValueType.STRING) return { type, value: c.str(field) };
  if (type === GgufValueType.ARRAY) {
    const typeAt = c.pos;
    const elementType = c.u32(`${field}.element_type`);
    if (elementType === GgufValueType.ARRAY) {
      throw c.fail('nested arrays are not allowed', `${field}.element_type`, 'a scalar or STRING element type', 'ARRAY', typeAt);
    }
    if (GGUF_SCALAR_BYTES[elementType as GgufValueType] === undefined && elementType !== GgufValueType.STRING) {
      throw c.fail('unknown array element type', `${field}.element_type`, 'a GGUF value type id 0..12', String(elementType), typeAt);
    }
    const minElem = elementType === GgufValueType.STRING ? 8 : GGUF_SCALAR_BYTES[elementType as GgufValueType]!;
    const n = c.count(`${field}.count`, Math.floor((c.remaining() - 8) / minElem), 'array length');
    let values: GgufArrayValues;
    if (elementType === GgufValueType.STRING) {
      const out = new Array<string>(n);
      for (let i = 0; i < n; i++) out[i] = c.str(`${field}[${i}]`);
      values = out;
    } else {
      values = c.numericArray(elementType as GgufElementType, n, field);
    }
    return { type, value: { elementType: elementType as GgufElementType, values } };
  }
  if (GGUF_SCALAR_BYTES[type as GgufValueType] === undefined) {
    throw c.fail('unknown metadata value type', `${field}.type`, 'a GGUF value type id 0..12', String(type), c.pos - 4);
  }
  return c.scalar(type, field);
}

function readAlignment(c: HeaderCursor, metadata: Map<string, GgufValue>): number {
  const v = metadata.get(GGUF_ALIGNMENT_KEY);
  if (v === undefined) return GGUF_DEFAULT_ALIGNMENT;
  if (v.type !== GgufValueType.UINT32) {
    throw new FormatError('alignment has the wrong type', { file: c.path, field: GGUF_ALIGNMENT_KEY, expected: 'UINT32', got: ggufValueTypeName(v.type) });
  }
  if (v.value === 0 || (v.value & (v.value - 1)) !== 0) {
    throw new FormatError('alignment is not a power of two', { file: c.path, field: GGUF_ALIGNMENT_KEY, expected: 'a power of two', got: String(v.value) });
  }
  return v.value;
}

interface RawTensorInfo {
  name: string;
  ne: number[];
  type: GgmlType;
  offset: number;
  nbytes: number;
  at: number;
}

function readTensorInfo(c: HeaderCursor, index: number, names: Set<string>): RawTensorInfo {
  const at = c.pos;
  const field = `tensor_infos[${index}]`;
  const name = c.str(`${field}.name`);
  const nameBytes = Buffer.byteLength(name, 'utf8');
  if (nameBytes > GGUF_MAX_TENSOR_NAME_BYTES) {
    throw c.fail('tensor name is too long', `${field}.name`, `at most ${GGUF_MAX_TENSOR_NAME_BYTES} bytes`, `${nameBytes} bytes (${name})`, at);
  }
  if (names.has(name)) throw c.fail('duplicate tensor name', `${field}.name`, 'unique names', name, at);
  names.add(name);
  const where = `tensor ${name}`;
  const nDims = c.u32(`${where}.n_dims`);
  if (nDims < 1 || nDims > GGUF_MAX_DIMS) throw c.fail('bad number of dimensions', `${where}.n_dims`, `1..${GGUF_MAX_DIMS}`, String(nDims), c.pos - 4);
  const ne: number[] = [];
  let elements = 1;
  for (let d = 0; d < nDims; d++) {
    // No dimension can exceed the file size; this bounds the products below too (< 2^53).
    const n = c.count(`${where}.ne[${d}]`, c.fileSize * 8, 'dimension');
    ne.push(n);
    elements *= n;
    if (elements > c.fileSize * 8) throw c.fail('tensor has more elements than the file can hold', `${where}.ne`, `at most ${c.fileSize * 8}`, `[${ne.join(', ')}, ...]`, at);
  }
  const typeAt = c.pos;
  const type = c.u32(`${where}.type`);
  const traits = ggmlTypeTraits(type);
  if (traits === undefined) {
    throw new UnsupportedError('unknown or removed ggml tensor type', { file: c.path, field: `${where}.type`, offset: typeAt, expected: 'a ggml type id of FORMATS.md §7.1', got: String(type) });
  }
  if (ne[0] % traits.blockElems !== 0) {
    throw c.fail('row length is not a multiple of the block size', `${where}.ne[0]`, `a multiple of ${traits.blockElems} (${traits.name})`, String(ne[0]), at);
  }
  const offset = c.count(`${where}.offset`, c.fileSize, 'tensor offset');
  const nbytes = (elements / traits.blockElems) * traits.blockBytes;
  return { name, ne, type: type as GgmlType, offset, nbytes, at };
}

/** Parses a GGUF file's header; tensor data stays on disk (see readTensorBytes). */
export function readGgufFile(path: string): GgufFile {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (cause) {
    throw new IoError('cannot open GGUF file', { file: path, cause });
  }
  try {
    return parseHeader(new HeaderCursor(fd, path, fstatSync(fd).size));
  } finally {
    closeSync(fd);
  }
}

function parseHeader(c: HeaderCursor): GgufFile {
  const magic = c.bytes(4, 'magic');
  if (!magic.every((b, i) => b === GGUF_MAGIC[i])) {
    throw c.fail('not a GGUF file', 'magic', '"GGUF" (47 47 55 46)', Buffer.from(magic).toString('hex'), 0);
  }
  const version = c.u32('version');
  if (version < GGUF_MIN_READ_VERSION || version > GGUF_VERSION) {
    const hint = (version & 0xffff) === 0 ? 'the file looks big-endian; only little-endian GGUF is supported' : version === 1 ? 'GGUF v1 is obsolete; re-convert the model' : undefined;
    throw new UnsupportedError('unsupported GGUF version', { file: c.path, field: 'version', offset: 4, expected: `${GGUF_MIN_READ_VERSION} or ${GGUF_VERSION}`, got: String(version), hint });
  }
  const nTensors = c.count('n_tensors', Math.floor((c.remaining() - 16) / MIN_TENSOR_INFO_BYTES), 'tensor count');
  const nKv = c.count('n_kv', Math.floor(c.remaining() / MIN_KV_BYTES), 'metadata count');

  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < nKv; i++) {
    const at = c.pos;
    const key = c.str(`kv[${i}].key`);
    if (key.length === 0) throw c.fail('empty metadata key', `kv[${i}].key`, 'a non-empty key', '""', at);
    if (metadata.has(key)) throw c.fail('duplicate metadata key', key, 'unique keys', key, at);
    const type = c.u32(`${key}.type`);
    metadata.set(key, readValue(c, type, key));
  }
  const alignment = readAlignment(c, metadata);

  const names = new Set<string>();
  const raw: RawTensorInfo[] = [];
  for (let i = 0; i < nTensors; i++) raw.push(readTensorInfo(c, i, names));

  const dataOffset = nTensors > 0 ? alignUp(c.pos, alignment) : c.pos;
  let expectedOffset = 0;
  const tensors: GgufTensorInfo[] = raw.map((t) => {
    if (t.offset !== expectedOffset) {
      throw c.fail('tensor data is not contiguous', `tensor ${t.name}.offset`, `${expectedOffset} (running sum of ${alignment}-byte padded sizes)`, String(t.offset), t.at);
    }
    const absoluteOffset = dataOffset + t.offset;
    if (absoluteOffset + t.nbytes > c.fileSize) {
      throw c.fail('tensor data extends past the end of the file', `tensor ${t.name}`, `bytes ${absoluteOffset}..${absoluteOffset + t.nbytes} within ${c.fileSize}`, `${t.nbytes} bytes of ${ggmlTypeName(t.type)}`, t.at);
    }
    expectedOffset += alignUp(t.nbytes, alignment);
    return Object.freeze({ name: t.name, ne: Object.freeze(t.ne), type: t.type, offset: t.offset, absoluteOffset, nbytes: t.nbytes });
  });
  return Object.freeze({ path: c.path, version, metadata, tensors: Object.freeze(tensors), alignment, dataOffset, fileSize: c.fileSize });
}

/** Finds a tensor info by name, or throws a FormatError naming the file. */
export function ggufTensor(file: GgufFile, name: string): GgufTensorInfo {
  const t = file.tensors.find((x) => x.name === name);
  if (t === undefined) throw new FormatError('no such tensor', { file: file.path, field: name, expected: 'a tensor of this name', got: 'none' });
  return t;
}

/** Reads one tensor's raw bytes (exactly nbytes) from the file. */
export function readTensorBytes(file: GgufFile, info: GgufTensorInfo): Uint8Array {
  const out = new Uint8Array(info.nbytes);
  let fd: number;
  try {
    fd = openSync(file.path, 'r');
  } catch (cause) {
    throw new IoError('cannot open GGUF file', { file: file.path, cause });
  }
  try {
    const got = readFully(fd, out, out.length, info.absoluteOffset);
    if (got < out.length) {
      throw new FormatError('file is truncated', { file: file.path, field: `tensor ${info.name}`, offset: info.absoluteOffset + got, expected: `${info.nbytes} bytes`, got: `${got} bytes` });
    }
  } finally {
    closeSync(fd);
  }
  return out;
}
