// safetensors bytes for fuzzing, built without the library's writer (which refuses bad input):
// split a file into header JSON and data, join them back with a true or a lying length prefix,
// and header-level mutations (any JSON op on the header, data_offsets pointing outside the
// buffer or overlapping another tensor). Layout: FORMATS.md §2 (u64 N, N bytes of JSON, data).

import fc from 'fast-check';
import { applyJsonOps, jsonOps, type JsonOp } from './mutate.js';

export interface SafetensorsParts {
  readonly header: Record<string, unknown>;
  readonly data: Uint8Array;
}

export function splitSafetensors(b: Uint8Array): SafetensorsParts {
  const n = Number(new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + n))) as Record<string, unknown>;
  return { header, data: b.subarray(8 + n) };
}

/** Header JSON + data; `claimedLength` (if given) is written instead of the true header length. */
export function joinSafetensors(header: unknown, data: Uint8Array, claimedLength?: bigint): Uint8Array {
  const h = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, claimedLength ?? BigInt(h.length)), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

export interface TensorBytes {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

/** Tensors laid out back to back in the given order (a valid file when shapes and sizes agree). */
export function encodeSafetensors(tensors: readonly TensorBytes[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header.__metadata__ = metadata;
  let at = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + t.data.length] };
    at += t.data.length;
  }
  const data = new Uint8Array(at);
  at = 0;
  for (const t of tensors) {
    data.set(t.data, at);
    at += t.data.length;
  }
  return joinSafetensors(header, data);
}

/** Every tensor of a (valid) file with its bytes, in file order. */
export function decodeSafetensors(b: Uint8Array): { tensors: TensorBytes[]; metadata?: Record<string, string> } {
  const { header, data } = splitSafetensors(b);
  const tensors: TensorBytes[] = [];
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const e = v as { dtype: string; shape: number[]; data_offsets: [number, number] };
    tensors.push({ name, dtype: e.dtype, shape: e.shape, data: data.slice(e.data_offsets[0], e.data_offsets[1]) });
  }
  tensors.sort((a, b) => (header[a.name] as { data_offsets: number[] }).data_offsets[0] - (header[b.name] as { data_offsets: number[] }).data_offsets[0]);
  return { tensors, metadata: header.__metadata__ as Record<string, string> | undefined };
}

/** Where a data_offsets bound is moved to, relative to the buffer or to another tensor. */
export type OffsetChoice = 'zero' | 'bufferEnd' | 'pastEnd' | 'huge' | 'otherBegin' | 'otherEnd' | 'minusOne' | 'keep';

export type HeaderMutation =
  | { readonly op: 'json'; readonly ops: readonly JsonOp[] }
  | { readonly op: 'offsets'; readonly tensor: number; readonly other: number; readonly begin: OffsetChoice; readonly end: OffsetChoice }
  | { readonly op: 'prefix'; readonly claimed: string };

const offsetChoice = fc.constantFrom<OffsetChoice>('zero', 'bufferEnd', 'pastEnd', 'huge', 'otherBegin', 'otherEnd', 'minusOne', 'keep');

export const headerMutation: fc.Arbitrary<HeaderMutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('json' as const), ops: jsonOps }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('offsets' as const), tensor: fc.nat(), other: fc.nat(), begin: offsetChoice, end: offsetChoice }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('prefix' as const), claimed: fc.constantFrom('0', '1', '2', '99999999', '100000001', '18446744073709551615', '9223372036854775808').chain((c) => fc.oneof(fc.constant(c), fc.bigInt({ min: 0n, max: 200000n }).map(String))) }) },
);

export function applyHeaderMutation(file: Uint8Array, m: HeaderMutation): Uint8Array {
  const { header, data } = splitSafetensors(file);
  if (m.op === 'prefix') return joinSafetensors(header, data, BigInt(m.claimed));
  if (m.op === 'json') {
    return joinSafetensors(applyJsonOps(header, m.ops), data);
  }
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  if (names.length === 0) return file;
  const entry = (name: string): { data_offsets: number[] } => header[name] as { data_offsets: number[] };
  const target = entry(names[m.tensor % names.length]);
  const other = entry(names[m.other % names.length]);
  const pick = (c: OffsetChoice, old: number): number => {
    switch (c) {
      case 'zero': return 0;
      case 'bufferEnd': return data.length;
      case 'pastEnd': return data.length + 1;
      case 'huge': return 2 ** 53 - 1;
      case 'otherBegin': return other.data_offsets[0];
      case 'otherEnd': return other.data_offsets[1];
      case 'minusOne': return -1;
      case 'keep': return old;
    }
  };
  target.data_offsets = [pick(m.begin, target.data_offsets[0]), pick(m.end, target.data_offsets[1])];
  return joinSafetensors(header, data);
}
