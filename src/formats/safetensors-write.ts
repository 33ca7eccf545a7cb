// safetensors writer: streams tensors one at a time into an atomically replaced file, following the
// reference writer's layout (huggingface/safetensors `safetensors/src/tensor.rs`, `prepare` and
// `serialize`; FORMATS.md §2.3): data ordered by dtype (descending enum order) then name, header
// JSON compact with `__metadata__` first, padded with spaces so that 8 + N is a multiple of 8.
// Also the sharded layout of transformers (`model-0000i-of-0000k.safetensors` + index.json).
// Reading is in safetensors.ts.

import { readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, ShapeError } from '../errors.js';
import { writeBytesAtomic, writeFileAtomic } from './atomic.js';
import { dtypeBytes, type DType } from './dtype.js';

export interface TensorToWrite {
  name: string;
  dtype: DType;
  shape: readonly number[];
  /** Little-endian bytes, or a function producing them when the tensor's turn comes (streaming). */
  data: Uint8Array | (() => Uint8Array);
}

/**
 * Data order of the reference writer: the Rust `Dtype` enum sorted descending (its declaration
 * order is BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 for these types).
 */
const DTYPE_WRITE_RANK: Readonly<Record<DType, number>> = Object.freeze({
  U64: 0, I64: 1, F64: 2, F32: 3, U32: 4, I32: 5, BF16: 6, F16: 7, U16: 8, I16: 9, I8: 10, U8: 11, BOOL: 12,
});

const HEADER_ALIGNMENT = 8;
const METADATA_KEY = '__metadata__';
const SHARD_NAME_PATTERN = /^model-\d{5}-of-\d{5}\.safetensors$/;
const INDEX_NAME = 'model.safetensors.index.json';
const SINGLE_FILE_NAME = 'model.safetensors';

const utf8 = new TextEncoder();

/** Rust `String` ordering: byte-wise on UTF-8 (differs from JS UTF-16 order above U+FFFF). */
function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function tensorByteLength(t: TensorToWrite, file: string): number {
  const size = dtypeBytes(t.dtype, { file, field: `${t.name}.dtype` });
  let n = size;
  for (const d of t.shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new ShapeError('shape entries must be non-negative integers', { file, field: t.name, got: JSON.stringify(t.shape) });
    }
    n *= d;
  }
  if (!Number.isSafeInteger(n)) {
    throw new ShapeError('tensor is too large', { file, field: t.name, got: JSON.stringify(t.shape) });
  }
  return n;
}

/** A JSON object literal with keys in the given order (JSON.stringify would hoist integer-like keys). */
function jsonObjectInOrder(entries: readonly (readonly [string, string])[]): string {
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
}

interface PlannedTensor {
  readonly tensor: TensorToWrite;
  readonly byteLength: number;
}

/** Checks names, shapes and eager data sizes, and returns the tensors in data order. */
function planTensors(tensors: readonly TensorToWrite[], file: string): PlannedTensor[] {
  const seen = new Set<string>();
  const planned = tensors.map((tensor) => {
    if (tensor.name === METADATA_KEY) {
      throw new ConfigError('tensor name is reserved', { file, field: tensor.name });
    }
    if (seen.has(tensor.name)) throw new ConfigError('tensor name given twice', { file, field: tensor.name });
    seen.add(tensor.name);
    const byteLength = tensorByteLength(tensor, file);
    if (tensor.data instanceof Uint8Array && tensor.data.byteLength !== byteLength) {
      throw new ShapeError('tensor data size does not match shape x dtype', {
        file,
        field: tensor.name,
        expected: `${byteLength} bytes`,
        got: `${tensor.data.byteLength} bytes`,
      });
    }
    return { tensor, byteLength };
  });
  return planned.sort(
    (a, b) => DTYPE_WRITE_RANK[a.tensor.dtype] - DTYPE_WRITE_RANK[b.tensor.dtype] || compareUtf8(a.tensor.name, b.tensor.name),
  );
}

/** The 8-byte length prefix followed by the padded header, for tensors already in data order. */
function encodeHeader(planned: readonly PlannedTensor[], metadata: Record<string, string> | undefined): Uint8Array {
  const parts: [string, string][] = [];
  if (metadata !== undefined) {
    parts.push([METADATA_KEY, jsonObjectInOrder(Object.entries(metadata).map(([k, v]) => [k, JSON.stringify(String(v))]))]);
  }
  let offset = 0;
  for (const { tensor, byteLength } of planned) {
    const info = `{"dtype":${JSON.stringify(tensor.dtype)},"shape":${JSON.stringify(tensor.shape)},"data_offsets":[${offset},${offset + byteLength}]}`;
    parts.push([tensor.name, info]);
    offset += byteLength;
  }
  const json = utf8.encode(jsonObjectInOrder(parts));
  const padded = Math.ceil(json.byteLength / HEADER_ALIGNMENT) * HEADER_ALIGNMENT;
  const out = new Uint8Array(8 + padded).fill(0x20, 8 + json.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

/** Writes one safetensors file, streaming lazy tensor data, atomically replacing `path`. */
export function writeSafetensors(path: string, tensors: readonly TensorToWrite[], metadata?: Record<string, string>): void {
  const planned = planTensors(tensors, path);
  const header = encodeHeader(planned, metadata);
  writeFileAtomic(path, (sink) => {
    sink.write(header);
    for (const { tensor, byteLength } of planned) {
      const data = typeof tensor.data === 'function' ? tensor.data() : tensor.data;
      if (data.byteLength !== byteLength) {
        throw new ShapeError('produced tensor data size does not match shape x dtype', {
          file: path,
          field: tensor.name,
          expected: `${byteLength} bytes`,
          got: `${data.byteLength} bytes`,
        });
      }
      sink.write(data);
    }
  });
}

/** `model-00002-of-00005.safetensors` (five digits, as transformers names shards). */
export function shardFileName(index: number, count: number): string {
  return `model-${String(index).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.safetensors`;
}

/**
 * Writes a sharded checkpoint into `dir`: tensors go, in the given order, into shards of at most
 * `maxShardBytes` of data (a larger tensor gets a shard of its own), then
 * `model.safetensors.index.json` (sorted keys, indent 2, as transformers writes it) is written last,
 * so a reader never sees an index naming missing shards. Files of an earlier checkpoint in `dir`
 * (shards `model-*-of-*.safetensors` not part of this one, and `model.safetensors`, which loaders
 * would pick before the index) are removed afterwards.
 */
export function writeShardedSafetensors(
  dir: string,
  tensors: readonly TensorToWrite[],
  opts: { maxShardBytes: number; metadata?: Record<string, string> },
): void {
  if (!(opts.maxShardBytes > 0)) {
    throw new ConfigError('maxShardBytes must be positive', { field: 'maxShardBytes', got: String(opts.maxShardBytes) });
  }
  planTensors(tensors, join(dir, INDEX_NAME)); // validate everything before writing any shard
  const groups: TensorToWrite[][] = [];
  let current: TensorToWrite[] = [];
  let currentBytes = 0;
  let totalBytes = 0;
  for (const t of tensors) {
    const n = tensorByteLength(t, dir);
    if (current.length > 0 && currentBytes + n > opts.maxShardBytes) {
      groups.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(t);
    currentBytes += n;
    totalBytes += n;
  }
  if (current.length > 0 || groups.length === 0) groups.push(current);

  const weightMap: [string, string][] = [];
  const written = new Set<string>();
  groups.forEach((group, i) => {
    const name = shardFileName(i + 1, groups.length);
    writeSafetensors(join(dir, name), group, opts.metadata);
    written.add(name);
    for (const t of group) weightMap.push([t.name, name]);
  });
  weightMap.sort((a, b) => compareUtf8(a[0], b[0]));
  const mapLines = weightMap.map(([k, v]) => `    ${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(',\n');
  const mapJson = weightMap.length === 0 ? '{}' : `{\n${mapLines}\n  }`;
  const index = `{\n  "metadata": {\n    "total_size": ${totalBytes}\n  },\n  "weight_map": ${mapJson}\n}\n`;
  writeBytesAtomic(join(dir, INDEX_NAME), index);
  for (const f of readdirSync(dir)) {
    // A stale single-file checkpoint would shadow the new shards (loaders try it first).
    if ((SHARD_NAME_PATTERN.test(f) && !written.has(f)) || f === SINGLE_FILE_NAME) unlinkSync(join(dir, f));
  }
}
