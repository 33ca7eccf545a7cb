// GGUF container vocabulary shared by the reader and the writer: constants of the layout, the
// metadata value types, and the parsed-file shape. Typed metadata accessors live here too so that
// every consumer checks value types the same strict way llama.cpp does (FORMATS.md §6.2).
//
// Sources: ggml-org/llama.cpp `ggml/include/gguf.h`, `ggml/src/gguf.cpp`. FORMATS.md §6.
// This file does no I/O (reader.ts / writer.ts do).

import { FormatError } from '../../errors.js';
import type { GgmlType } from './ggml-types.js';

/** "GGUF" as the first four bytes of the file. */
export const GGUF_MAGIC = Uint8Array.of(0x47, 0x47, 0x55, 0x46);
/** Version written by qlora-ts; versions 2 and 3 share the layout and are both read. */
export const GGUF_VERSION = 3;
export const GGUF_MIN_READ_VERSION = 2;
/** Alignment of the data section and of every tensor when `general.alignment` is absent. */
export const GGUF_DEFAULT_ALIGNMENT = 32;
export const GGUF_ALIGNMENT_KEY = 'general.alignment';
/** ggml GGML_MAX_NAME = 64 including the terminating NUL: names hold at most 63 bytes. */
export const GGUF_MAX_TENSOR_NAME_BYTES = 63;
/** ggml GGML_MAX_DIMS. */
export const GGUF_MAX_DIMS = 4;

/** Metadata value type ids (gguf.h enum gguf_type). */
export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** Encoded size of each fixed-size value type; STRING and ARRAY are variable. */
export const GGUF_SCALAR_BYTES: Readonly<Partial<Record<GgufValueType, number>>> = Object.freeze({
  [GgufValueType.UINT8]: 1,
  [GgufValueType.INT8]: 1,
  [GgufValueType.UINT16]: 2,
  [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4,
  [GgufValueType.INT32]: 4,
  [GgufValueType.FLOAT32]: 4,
  [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT64]: 8,
  [GgufValueType.INT64]: 8,
  [GgufValueType.FLOAT64]: 8,
});

export function ggufValueTypeName(t: number): string {
  return GgufValueType[t] ?? `type ${t}`;
}

export type GgufNumberType =
  | GgufValueType.UINT8
  | GgufValueType.INT8
  | GgufValueType.UINT16
  | GgufValueType.INT16
  | GgufValueType.UINT32
  | GgufValueType.INT32
  | GgufValueType.FLOAT32
  | GgufValueType.FLOAT64;
export type GgufBigIntType = GgufValueType.UINT64 | GgufValueType.INT64;
/** Element types allowed in an array (anything but ARRAY: nested arrays are rejected). */
export type GgufElementType = GgufNumberType | GgufBigIntType | GgufValueType.BOOL | GgufValueType.STRING;

/**
 * Array elements: one typed array per numeric element type (Uint8Array for UINT8, Int32Array for
 * INT32, BigUint64Array for UINT64, Float32Array for FLOAT32...), boolean[] for BOOL, string[]
 * for STRING.
 */
export type GgufArrayValues =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigUint64Array
  | BigInt64Array
  | boolean[]
  | string[];

export interface GgufArray {
  readonly elementType: GgufElementType;
  readonly values: GgufArrayValues;
}

/** A metadata value with its GGUF type id kept, so that a file can be written back unchanged. */
export type GgufValue =
  | { readonly type: GgufNumberType; readonly value: number }
  | { readonly type: GgufBigIntType; readonly value: bigint }
  | { readonly type: GgufValueType.BOOL; readonly value: boolean }
  | { readonly type: GgufValueType.STRING; readonly value: string }
  | { readonly type: GgufValueType.ARRAY; readonly value: GgufArray };

/** Typed-array constructor for each numeric element type (the one place this pairing is made). */
export const GGUF_ARRAY_CTORS = Object.freeze({
  [GgufValueType.UINT8]: Uint8Array,
  [GgufValueType.INT8]: Int8Array,
  [GgufValueType.UINT16]: Uint16Array,
  [GgufValueType.INT16]: Int16Array,
  [GgufValueType.UINT32]: Uint32Array,
  [GgufValueType.INT32]: Int32Array,
  [GgufValueType.FLOAT32]: Float32Array,
  [GgufValueType.FLOAT64]: Float64Array,
  [GgufValueType.UINT64]: BigUint64Array,
  [GgufValueType.INT64]: BigInt64Array,
});

export interface GgufTensorInfo {
  readonly name: string;
  /** ggml dimension order: innermost (contiguous) first; torch shape reversed. */
  readonly ne: readonly number[];
  readonly type: GgmlType;
  /** Offset relative to the start of the data section. */
  readonly offset: number;
  /** Offset from the start of the file. */
  readonly absoluteOffset: number;
  readonly nbytes: number;
}

export interface GgufFile {
  readonly path: string;
  readonly version: number;
  /** Keys in file order. */
  readonly metadata: ReadonlyMap<string, GgufValue>;
  /** Tensor infos in file order. */
  readonly tensors: readonly GgufTensorInfo[];
  readonly alignment: number;
  /** Absolute offset of the data section. */
  readonly dataOffset: number;
  readonly fileSize: number;
}

/** Round `n` up to a multiple of `alignment` (a power of two). */
export function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

// ------------------------------------------------------------------------------------------------
// Typed metadata accessors. Each refuses a value of the wrong type rather than converting it, as
// llama.cpp's typed getters do.

function wrongType(file: GgufFile, key: string, expected: string, got: GgufValue): FormatError {
  const gotName = got.type === GgufValueType.ARRAY ? `ARRAY of ${ggufValueTypeName(got.value.elementType)}` : ggufValueTypeName(got.type);
  return new FormatError('metadata value has the wrong type', { file: file.path, field: key, expected, got: gotName });
}

function missing(file: GgufFile, key: string, expected: string): FormatError {
  return new FormatError('required metadata key is missing', { file: file.path, field: key, expected, got: 'no such key' });
}

/** A string value; undefined if absent (or throws if `required`). */
export function metaString(file: GgufFile, key: string, required: true): string;
export function metaString(file: GgufFile, key: string, required?: false): string | undefined;
export function metaString(file: GgufFile, key: string, required = false): string | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) {
    if (required) throw missing(file, key, 'STRING');
    return undefined;
  }
  if (v.type !== GgufValueType.STRING) throw wrongType(file, key, 'STRING', v);
  return v.value;
}

/** A numeric value of one of `types` (default: any integer or float type except 64-bit ints). */
export function metaNumber(file: GgufFile, key: string, types: readonly GgufNumberType[], required: true): number;
export function metaNumber(file: GgufFile, key: string, types: readonly GgufNumberType[], required?: false): number | undefined;
export function metaNumber(file: GgufFile, key: string, types: readonly GgufNumberType[], required = false): number | undefined {
  const v = file.metadata.get(key);
  const expected = types.map(ggufValueTypeName).join(' or ');
  if (v === undefined) {
    if (required) throw missing(file, key, expected);
    return undefined;
  }
  if (!(types as readonly GgufValueType[]).includes(v.type)) throw wrongType(file, key, expected, v);
  return v.value as number;
}

export function metaBool(file: GgufFile, key: string): boolean | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  if (v.type !== GgufValueType.BOOL) throw wrongType(file, key, 'BOOL', v);
  return v.value;
}

/** An array whose elements have type `elementType`; undefined if absent. */
export function metaArray(file: GgufFile, key: string, elementType: GgufElementType): GgufArrayValues | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  if (v.type !== GgufValueType.ARRAY || v.value.elementType !== elementType) {
    throw wrongType(file, key, `ARRAY of ${ggufValueTypeName(elementType)}`, v);
  }
  return v.value.values;
}
