// GGUF v3 writer: metadata in the caller's order, tensor infos in the caller's order, data
// streamed tensor by tensor (a tensor's bytes may be produced lazily, so a whole model never has
// to be in memory), each tensor padded with zeros to the alignment, written to a temporary file
// and renamed over the destination. It checks what llama.cpp's reader will check (§6.3) before
// writing anything. It is a container writer: llama names and metadata are chosen by its callers.
//
// Sources: ggml-org/llama.cpp `ggml/src/gguf.cpp` (gguf_write_to_buf, reader checks),
// `gguf-py/gguf/gguf_writer.py`. FORMATS.md §6.

import { ConfigError, FormatError, ShapeError } from '../../errors.js';
import { writeFileAtomic, type ByteSink } from '../atomic.js';
import { ggmlTypeName, ggmlTypeTraits, type GgmlType } from './ggml-types.js';
import {
  GGUF_ALIGNMENT_KEY,
  GGUF_ARRAY_CTORS,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_MAX_DIMS,
  GGUF_MAX_TENSOR_NAME_BYTES,
  GGUF_SCALAR_BYTES,
  GGUF_VERSION,
  GgufValueType,
  alignUp,
  ggufValueTypeName,
  type GgufValue,
} from './types.js';

export interface GgufTensorToWrite {
  readonly name: string;
  /** ggml order, innermost first (torch shape reversed). */
  readonly ne: readonly number[];
  readonly type: GgmlType;
  /** The tensor's bytes, or a function producing them when the writer reaches the tensor. */
  readonly data: Uint8Array | (() => Uint8Array);
}

export interface GgufToWrite {
  /** Metadata in file order. `general.alignment`, if present, must agree with `alignment`. */
  readonly metadata: ReadonlyArray<readonly [string, GgufValue]>;
  readonly tensors: readonly GgufTensorToWrite[];
  /** Data alignment (power of two). When not 32 and the key is absent, `general.alignment` is appended. */
  readonly alignment?: number;
}

/** Growable little-endian byte buffer for the header. */
class HeaderBuilder {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): number {
    if (this.length + n > this.buf.length) {
      const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
      bigger.set(this.buf.subarray(0, this.length));
      this.buf = bigger;
      this.view = new DataView(bigger.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  bytes(b: Uint8Array): void {
    const at = this.reserve(b.length); // may replace this.buf
    this.buf.set(b, at);
  }
  u32(v: number): void {
    const at = this.reserve(4);
    this.view.setUint32(at, v, true);
  }
  u64(v: number | bigint): void {
    const at = this.reserve(8);
    this.view.setBigUint64(at, BigInt(v), true);
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.bytes(b);
  }

  /** One scalar of `type`; the value was validated by checkScalar. */
  scalar(type: GgufValueType, v: number | bigint | boolean): void {
    const at = this.reserve(GGUF_SCALAR_BYTES[type]!);
    const d = this.view;
    switch (type) {
      case GgufValueType.UINT8: d.setUint8(at, v as number); break;
      case GgufValueType.INT8: d.setInt8(at, v as number); break;
      case GgufValueType.UINT16: d.setUint16(at, v as number, true); break;
      case GgufValueType.INT16: d.setInt16(at, v as number, true); break;
      case GgufValueType.UINT32: d.setUint32(at, v as number, true); break;
      case GgufValueType.INT32: d.setInt32(at, v as number, true); break;
      case GgufValueType.FLOAT32: d.setFloat32(at, v as number, true); break;
      case GgufValueType.FLOAT64: d.setFloat64(at, v as number, true); break;
      case GgufValueType.UINT64: d.setBigUint64(at, v as bigint, true); break;
      case GgufValueType.INT64: d.setBigInt64(at, v as bigint, true); break;
      case GgufValueType.BOOL: d.setUint8(at, v ? 1 : 0); break;
      default: throw new Error(`unreachable: scalar type ${type}`);
    }
  }

  result(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

/** Integer ranges of the fixed-size integer types. */
const INT_RANGES: Partial<Record<GgufValueType, readonly [number, number]>> = {
  [GgufValueType.UINT8]: [0, 0xff],
  [GgufValueType.INT8]: [-0x80, 0x7f],
  [GgufValueType.UINT16]: [0, 0xffff],
  [GgufValueType.INT16]: [-0x8000, 0x7fff],
  [GgufValueType.UINT32]: [0, 0xffffffff],
  [GgufValueType.INT32]: [-0x80000000, 0x7fffffff],
};

function checkScalar(file: string, key: string, type: GgufValueType, v: unknown): void {
  const bad = (expected: string): ConfigError => new ConfigError('metadata value does not fit its type', { file, field: key, expected, got: `${typeof v} ${String(v)}` });
  const range = INT_RANGES[type];
  if (range !== undefined) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < range[0] || v > range[1]) throw bad(`an integer in ${range[0]}..${range[1]} (${ggufValueTypeName(type)})`);
  } else if (type === GgufValueType.FLOAT32 || type === GgufValueType.FLOAT64) {
    if (typeof v !== 'number') throw bad('a number');
  } else if (type === GgufValueType.UINT64) {
    if (typeof v !== 'bigint' || v < 0n || v >= 1n << 64n) throw bad('a bigint in 0..2^64-1');
  } else if (type === GgufValueType.INT64) {
    if (typeof v !== 'bigint' || v < -(1n << 63n) || v >= 1n << 63n) throw bad('a bigint in -2^63..2^63-1');
  } else if (type === GgufValueType.BOOL) {
    if (typeof v !== 'boolean') throw bad('a boolean');
  } else if (type === GgufValueType.STRING) {
    if (typeof v !== 'string') throw bad('a string');
  } else {
    throw new ConfigError('unknown metadata value type', { file, field: key, expected: 'a GGUF value type id 0..12', got: String(type) });
  }
}

function encodeValue(h: HeaderBuilder, file: string, key: string, value: GgufValue): void {
  h.u32(value.type);
  if (value.type !== GgufValueType.ARRAY) {
    checkScalar(file, key, value.type, value.value);
    if (value.type === GgufValueType.STRING) h.str(value.value);
    else h.scalar(value.type, value.value);
    return;
  }
  const { elementType, values } = value.value;
  if ((elementType as GgufValueType) === GgufValueType.ARRAY) {
    throw new ConfigError('nested arrays cannot be written (llama.cpp rejects them)', { file, field: key, expected: 'a scalar or STRING element type', got: 'ARRAY' });
  }
  const Ctor = GGUF_ARRAY_CTORS[elementType as keyof typeof GGUF_ARRAY_CTORS];
  if (Ctor !== undefined && !(values instanceof Ctor)) {
    throw new ConfigError('array values do not match the element type', { file, field: key, expected: `${Ctor.name} for ${ggufValueTypeName(elementType)}`, got: values.constructor.name });
  }
  h.u32(elementType);
  h.u64(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    checkScalar(file, `${key}[${i}]`, elementType, v);
    if (elementType === GgufValueType.STRING) h.str(v as string);
    else h.scalar(elementType, v as number | bigint | boolean);
  }
}

interface PlannedTensor {
  readonly tensor: GgufTensorToWrite;
  readonly nbytes: number;
  readonly offset: number;
}

function planTensors(file: string, tensors: readonly GgufTensorToWrite[], alignment: number): PlannedTensor[] {
  const seen = new Set<string>();
  let offset = 0;
  return tensors.map((t) => {
    const nameBytes = Buffer.byteLength(t.name, 'utf8');
    if (nameBytes === 0 || nameBytes > GGUF_MAX_TENSOR_NAME_BYTES) {
      throw new ConfigError('tensor name length out of range', { file, field: t.name, expected: `1..${GGUF_MAX_TENSOR_NAME_BYTES} bytes`, got: `${nameBytes} bytes` });
    }
    if (seen.has(t.name)) throw new ConfigError('duplicate tensor name', { file, field: t.name, expected: 'unique names', got: t.name });
    seen.add(t.name);
    if (t.ne.length < 1 || t.ne.length > GGUF_MAX_DIMS || !t.ne.every((n) => Number.isSafeInteger(n) && n >= 0)) {
      throw new ShapeError('bad tensor shape', { file, field: t.name, expected: `1..${GGUF_MAX_DIMS} non-negative integer dimensions`, got: `[${t.ne.join(', ')}]` });
    }
    const traits = ggmlTypeTraits(t.type);
    if (traits === undefined) throw new ConfigError('unknown ggml type', { file, field: t.name, expected: 'a ggml type id', got: String(t.type) });
    if (t.ne[0] % traits.blockElems !== 0) {
      throw new ShapeError(`row length is not a multiple of the ${traits.name} block size`, { file, field: t.name, expected: `ne[0] % ${traits.blockElems} == 0`, got: String(t.ne[0]), hint: 'store this tensor as F16 or F32' });
    }
    const elements = t.ne.reduce((a, b) => a * b, 1);
    const nbytes = (elements / traits.blockElems) * traits.blockBytes;
    const planned = { tensor: t, nbytes, offset };
    offset += alignUp(nbytes, alignment);
    return planned;
  });
}

function resolveAlignment(file: string, metadata: GgufToWrite['metadata'], requested: number | undefined): { alignment: number; appendKey: boolean } {
  const entry = metadata.find(([k]) => k === GGUF_ALIGNMENT_KEY);
  let fromKey: number | undefined;
  if (entry !== undefined) {
    const v = entry[1];
    if (v.type !== GgufValueType.UINT32) throw new ConfigError('general.alignment must be UINT32', { file, field: GGUF_ALIGNMENT_KEY, expected: 'UINT32', got: ggufValueTypeName(v.type) });
    fromKey = v.value;
  }
  const alignment = requested ?? fromKey ?? GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw new ConfigError('alignment must be a power of two', { file, field: GGUF_ALIGNMENT_KEY, expected: 'a power of two', got: String(alignment) });
  }
  if (fromKey !== undefined && fromKey !== alignment) {
    throw new ConfigError('alignment option disagrees with general.alignment', { file, field: GGUF_ALIGNMENT_KEY, expected: String(fromKey), got: String(alignment) });
  }
  return { alignment, appendKey: fromKey === undefined && alignment !== GGUF_DEFAULT_ALIGNMENT };
}

/** Serialises the header (up to and including the padding before the data section). */
function encodeHeader(file: string, spec: GgufToWrite, planned: readonly PlannedTensor[], alignment: number, appendKey: boolean): Uint8Array {
  const h = new HeaderBuilder();
  h.bytes(GGUF_MAGIC);
  h.u32(GGUF_VERSION);
  h.u64(planned.length);
  h.u64(spec.metadata.length + (appendKey ? 1 : 0));
  const keys = new Set<string>();
  for (const [key, value] of spec.metadata) {
    if (key.length === 0 || keys.has(key)) throw new ConfigError(key.length === 0 ? 'empty metadata key' : 'duplicate metadata key', { file, field: key, expected: 'unique non-empty keys', got: JSON.stringify(key) });
    keys.add(key);
    h.str(key);
    encodeValue(h, file, key, value);
  }
  if (appendKey) {
    h.str(GGUF_ALIGNMENT_KEY);
    encodeValue(h, file, GGUF_ALIGNMENT_KEY, { type: GgufValueType.UINT32, value: alignment });
  }
  for (const { tensor, offset } of planned) {
    h.str(tensor.name);
    h.u32(tensor.ne.length);
    for (const n of tensor.ne) h.u64(n);
    h.u32(tensor.type);
    h.u64(offset);
  }
  if (planned.length > 0) h.bytes(new Uint8Array(alignUp(h.length, alignment) - h.length));
  return h.result();
}

function writeTensors(sink: ByteSink, path: string, planned: readonly PlannedTensor[], alignment: number): void {
  const zeros = new Uint8Array(alignment);
  for (const { tensor, nbytes } of planned) {
    const data = typeof tensor.data === 'function' ? tensor.data() : tensor.data;
    if (data.byteLength !== nbytes) {
      throw new FormatError('tensor data size does not match its type and shape', {
        file: path,
        field: tensor.name,
        expected: `${nbytes} bytes (${ggmlTypeName(tensor.type)} [${tensor.ne.join(', ')}])`,
        got: `${data.byteLength} bytes`,
      });
    }
    sink.write(data);
    sink.write(zeros.subarray(0, alignUp(nbytes, alignment) - nbytes));
  }
}

/** Writes a GGUF v3 file atomically (temporary file beside `path`, then rename). */
export function writeGguf(path: string, spec: GgufToWrite): void {
  const { alignment, appendKey } = resolveAlignment(path, spec.metadata, spec.alignment);
  const planned = planTensors(path, spec.tensors, alignment);
  const header = encodeHeader(path, spec, planned, alignment, appendKey);
  writeFileAtomic(path, (sink) => {
    sink.write(header);
    writeTensors(sink, path, planned, alignment);
  });
}
