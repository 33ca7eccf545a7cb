// GGUF bytes for fuzzing, written without the library's writer (which refuses bad input):
// a field finder that walks a valid file and lists every count, length, type id, offset and
// integer value (the targets of length-field mutations), and a generator of small llama-like
// GGUF files whose counts, types, shapes and offsets may lie. Layout: FORMATS.md §6.

import fc from 'fast-check';
import { GgufValueType, GGUF_SCALAR_BYTES } from '../../src/formats/gguf/types.js';
import type { NumericField } from './mutate.js';

/** The numeric fields of a well-formed GGUF file, in file order (stops quietly at anything odd). */
export function ggufNumericFields(b: Uint8Array): NumericField[] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: NumericField[] = [];
  let p = 8;
  const u32 = (record: boolean): number => { if (record) out.push({ at: p, width: 4 }); const v = dv.getUint32(p, true); p += 4; return v; };
  const u64 = (record: boolean): number => { if (record) out.push({ at: p, width: 8 }); const v = Number(dv.getBigUint64(p, true)); p += 8; return v; };
  const str = (): void => { p += u64(true); };
  const value = (type: number): void => {
    if (type === GgufValueType.STRING) return str();
    if (type === GgufValueType.ARRAY) {
      const et = u32(true);
      const n = u64(true);
      if (et === GgufValueType.STRING) for (let i = 0; i < n; i++) str();
      else p += n * (GGUF_SCALAR_BYTES[et as GgufValueType] ?? 0);
      return;
    }
    if (type === GgufValueType.UINT32 || type === GgufValueType.INT32) return void u32(true);
    if (type === GgufValueType.UINT64 || type === GgufValueType.INT64) return void u64(true);
    p += GGUF_SCALAR_BYTES[type as GgufValueType] ?? 0;
  };
  try {
    const nTensors = u64(true);
    const nKv = u64(true);
    for (let i = 0; i < nKv; i++) {
      str();
      value(u32(true));
    }
    for (let i = 0; i < nTensors; i++) {
      str();
      const nd = u32(true);
      for (let d = 0; d < nd; d++) u64(true);
      u32(true);
      u64(true);
    }
  } catch {
    // A RangeError from DataView past the end: the fields found so far are the list.
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// Generated files

export interface GgufKvSpec {
  readonly key: string;
  readonly type: number;
  /** number | bigint-as-string | boolean | string | array {elementType, values} */
  readonly value: unknown;
}

export interface GgufTensorSpec {
  readonly name: string;
  readonly ne: readonly string[];
  readonly type: number;
  readonly offset: string;
}

export interface GgufSpec {
  readonly version: number;
  readonly kvs: readonly GgufKvSpec[];
  readonly tensors: readonly GgufTensorSpec[];
  /** Counts written in the header; null: the true count. */
  readonly claimedTensors: string | null;
  readonly claimedKvs: string | null;
  readonly dataBytes: number;
  readonly seed: number;
}

const LLAMA_KEYS: Array<[string, fc.Arbitrary<GgufKvSpec['value']>, number]> = [
  ['general.architecture', fc.constantFrom('llama', 'llama', 'gpt2', ''), GgufValueType.STRING],
  ['llama.block_count', fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constant(4294967295)), GgufValueType.UINT32],
  ['llama.embedding_length', fc.constantFrom(0, 8, 16, 32, 33, 4294967295), GgufValueType.UINT32],
  ['llama.feed_forward_length', fc.constantFrom(0, 16, 48, 4294967295), GgufValueType.UINT32],
  ['llama.attention.head_count', fc.constantFrom(0, 1, 2, 4, 3, 4294967295), GgufValueType.UINT32],
  ['llama.attention.head_count_kv', fc.constantFrom(0, 1, 2, 4, 3), GgufValueType.UINT32],
  ['llama.context_length', fc.constantFrom(0, 64, 4294967295), GgufValueType.UINT32],
  ['llama.rope.dimension_count', fc.constantFrom(0, 4, 8, 16, 7), GgufValueType.UINT32],
  ['llama.attention.layer_norm_rms_epsilon', fc.constantFrom(1e-5, 0, -1, Number.NaN), GgufValueType.FLOAT32],
  ['llama.vocab_size', fc.constantFrom(0, 8, 16, 4294967295), GgufValueType.UINT32],
  ['general.alignment', fc.constantFrom(0, 1, 3, 16, 32, 64, 4294967295), GgufValueType.UINT32],
  ['tokenizer.ggml.model', fc.constantFrom('llama', 'gpt2', 'bert', ''), GgufValueType.STRING],
  ['tokenizer.ggml.bos_token_id', fc.constantFrom(0, 1, 2, 15, 16, 4294967295), GgufValueType.UINT32],
  ['tokenizer.ggml.eos_token_id', fc.constantFrom(0, 1, 2, 99), GgufValueType.UINT32],
  ['tokenizer.ggml.pre', fc.constantFrom('default', 'llama-bpe', 'qwen2', 'nope'), GgufValueType.STRING],
  ['tokenizer.chat_template', fc.constantFrom('{{ messages }}', '{% for', ''), GgufValueType.STRING],
];

const TOKEN_TEXTS = ['<unk>', '<s>', '</s>', '\u2581', 'a', 'b', 'ab', '\u2581a', '<0x41>', '<0xZZ>', '', ' ', 'Ġ', 'Ġa', 'c', 'abc'];

const scalarValue = (type: number): fc.Arbitrary<unknown> => {
  switch (type) {
    case GgufValueType.UINT8: return fc.nat({ max: 255 });
    case GgufValueType.INT8: return fc.integer({ min: -128, max: 127 });
    case GgufValueType.UINT16: return fc.nat({ max: 65535 });
    case GgufValueType.INT16: return fc.integer({ min: -32768, max: 32767 });
    case GgufValueType.UINT32: return fc.nat({ max: 4294967295 });
    case GgufValueType.INT32: return fc.integer();
    case GgufValueType.FLOAT32:
    case GgufValueType.FLOAT64: return fc.double();
    case GgufValueType.BOOL: return fc.nat({ max: 2 });
    case GgufValueType.STRING: return fc.string({ maxLength: 12 });
    case GgufValueType.UINT64: return fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(String);
    case GgufValueType.INT64: return fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }).map(String);
    default: return fc.constant(0);
  }
};

const anyType = fc.oneof({ weight: 10, arbitrary: fc.integer({ min: 0, max: 12 }).filter((t) => t !== GgufValueType.ARRAY) }, { weight: 1, arbitrary: fc.constantFrom(13, 255, 4294967295) });

const randomKv: fc.Arbitrary<GgufKvSpec> = fc.oneof(
  anyType.chain((type) => fc.record({ key: fc.string({ maxLength: 20 }), type: fc.constant(type), value: scalarValue(type) })),
  fc.record({
    key: fc.constantFrom('tokenizer.ggml.tokens', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type', 'tokenizer.ggml.merges', 'x.array'),
    type: fc.constant(GgufValueType.ARRAY),
    value: fc.oneof(anyType, fc.constant(GgufValueType.ARRAY)).chain((elementType) => fc.record({ elementType: fc.constant(elementType), values: fc.array(scalarValue(elementType), { maxLength: 20 }) })),
  }),
);

const vocabKvs = (n: number): fc.Arbitrary<GgufKvSpec[]> => fc.tuple(
  fc.array(fc.constantFrom(...TOKEN_TEXTS), { minLength: n, maxLength: n }),
  fc.array(fc.double({ min: -100, max: 0, noNaN: true }), { minLength: n, maxLength: n }),
  fc.array(fc.integer({ min: 0, max: 7 }), { minLength: n, maxLength: n }),
  fc.array(fc.constantFrom('a b', 'Ġ a', 'ab c', 'x', ''), { maxLength: 6 }),
).map(([tokens, scores, types, merges]) => [
  { key: 'tokenizer.ggml.tokens', type: GgufValueType.ARRAY, value: { elementType: GgufValueType.STRING, values: tokens } },
  { key: 'tokenizer.ggml.scores', type: GgufValueType.ARRAY, value: { elementType: GgufValueType.FLOAT32, values: scores } },
  { key: 'tokenizer.ggml.token_type', type: GgufValueType.ARRAY, value: { elementType: GgufValueType.INT32, values: types } },
  { key: 'tokenizer.ggml.merges', type: GgufValueType.ARRAY, value: { elementType: GgufValueType.STRING, values: merges } },
]);

const TENSOR_NAMES = ['token_embd.weight', 'output_norm.weight', 'output.weight', 'blk.0.attn_q.weight', 'blk.0.attn_k.weight', 'blk.0.attn_v.weight', 'blk.0.attn_output.weight', 'blk.0.ffn_gate.weight', 'blk.0.ffn_up.weight', 'blk.0.ffn_down.weight', 'blk.0.attn_norm.weight', 'blk.0.ffn_norm.weight', 'blk.9.attn_q.weight', 'rope_freqs.weight', 'other'];
const DIM = fc.oneof({ weight: 8, arbitrary: fc.constantFrom('1', '8', '16', '32', '64') }, { weight: 1, arbitrary: fc.constantFrom('0', '33', '4294967296', '9223372036854775807', '18446744073709551615') });
/** ggml type ids: F32 F16 Q4_0 Q8_0 BF16 IQ4_NL I8 and some unknown or removed ones. */
const TENSOR_TYPE = fc.oneof({ weight: 8, arbitrary: fc.constantFrom(0, 1, 2, 8, 30, 20, 24) }, { weight: 1, arbitrary: fc.constantFrom(4, 5, 12, 39, 4294967295) });

const tensorSpec: fc.Arbitrary<GgufTensorSpec> = fc.record({
  name: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...TENSOR_NAMES) }, { weight: 1, arbitrary: fc.string({ maxLength: 70 }) }),
  ne: fc.array(DIM, { minLength: 1, maxLength: 2 }).chain((ne) => fc.oneof({ weight: 8, arbitrary: fc.constant(ne) }, { weight: 1, arbitrary: fc.array(DIM, { minLength: 0, maxLength: 6 }) })),
  type: TENSOR_TYPE,
  offset: fc.constant('auto'),
});

export const ggufSpec: fc.Arbitrary<GgufSpec> = fc.record({
  version: fc.constantFrom(3, 3, 3, 2, 1, 4, 0x03000000),
  kvs: fc.tuple(
    fc.subarray(LLAMA_KEYS.map((_, i) => i)).chain((idx) => fc.tuple(...idx.map((i) => LLAMA_KEYS[i][1].map((value) => ({ key: LLAMA_KEYS[i][0], type: LLAMA_KEYS[i][2], value }))))),
    fc.oneof(vocabKvs(16), fc.constant([])),
    fc.array(randomKv, { maxLength: 4 }),
  ).map(([a, b, c]) => [...a, ...b, ...c]),
  tensors: fc.array(tensorSpec, { maxLength: 6 }).chain((ts) => fc.tuple(...ts.map((t) => fc.oneof({ weight: 6, arbitrary: fc.constant(t) }, { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((o) => ({ ...t, offset: o.toString() })) })))),
  claimedTensors: fc.oneof({ weight: 8, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom('0', '1', '7', '1000000', '18446744073709551615') }),
  claimedKvs: fc.oneof({ weight: 8, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom('0', '1', '100', '18446744073709551615') }),
  dataBytes: fc.oneof(fc.constant(-1), fc.nat({ max: 20000 })),
  seed: fc.nat(),
});

/** Bytes a ggml tensor of these dims takes, for the automatic offsets (0 if unknown). */
function nbytes(t: GgufTensorSpec): number {
  const per: Record<number, [number, number]> = { 0: [1, 4], 1: [1, 2], 30: [1, 2], 24: [1, 1], 2: [32, 18], 8: [32, 34], 20: [32, 18] };
  const [be, bb] = per[t.type] ?? [1, 1];
  const n = t.ne.reduce((a, d) => a * Number(d), 1);
  return Number.isSafeInteger(n) && n < 1 << 24 ? Math.ceil(n / be) * bb : 0;
}

class ByteWriter {
  private parts: Uint8Array[] = [];
  size = 0;
  push(b: Uint8Array): void { this.parts.push(b); this.size += b.length; }
  u32(v: number): void { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, v >>> 0, true); this.push(b); }
  u64(v: bigint): void { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v), true); this.push(b); }
  str(s: string): void { const b = new TextEncoder().encode(s); this.u64(BigInt(b.length)); this.push(b); }
  bytes(): Uint8Array { const out = new Uint8Array(this.size); let p = 0; for (const b of this.parts) { out.set(b, p); p += b.length; } return out; }
}

function writeScalar(w: ByteWriter, type: number, v: unknown): void {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  const n = typeof v === 'number' ? v : Number(v);
  switch (type) {
    case GgufValueType.UINT8: case GgufValueType.INT8: case GgufValueType.BOOL: dv.setUint8(0, n & 0xff); return w.push(b.subarray(0, 1));
    case GgufValueType.UINT16: case GgufValueType.INT16: dv.setUint16(0, n & 0xffff, true); return w.push(b.subarray(0, 2));
    case GgufValueType.UINT32: case GgufValueType.INT32: dv.setUint32(0, n >>> 0, true); return w.push(b.subarray(0, 4));
    case GgufValueType.FLOAT32: dv.setFloat32(0, n, true); return w.push(b.subarray(0, 4));
    case GgufValueType.FLOAT64: dv.setFloat64(0, n, true); return w.push(b);
    case GgufValueType.UINT64: case GgufValueType.INT64: dv.setBigUint64(0, BigInt.asUintN(64, BigInt(String(v))), true); return w.push(b);
    case GgufValueType.STRING: return w.str(String(v));
    default: return w.u32(n); // an unknown type: a few bytes the reader must refuse
  }
}

export function encodeGguf(s: GgufSpec): Uint8Array {
  const w = new ByteWriter();
  w.push(Uint8Array.of(0x47, 0x47, 0x55, 0x46));
  w.u32(s.version);
  w.u64(BigInt(s.claimedTensors ?? s.tensors.length));
  w.u64(BigInt(s.claimedKvs ?? s.kvs.length));
  let alignment = 32;
  for (const kv of s.kvs) {
    w.str(kv.key);
    w.u32(kv.type);
    if (kv.type === GgufValueType.ARRAY) {
      const a = kv.value as { elementType: number; values: unknown[] };
      w.u32(a.elementType);
      w.u64(BigInt(a.values.length));
      for (const v of a.values) writeScalar(w, a.elementType, v);
    } else {
      writeScalar(w, kv.type, kv.value);
    }
    if (kv.key === 'general.alignment' && typeof kv.value === 'number' && kv.value > 0 && (kv.value & (kv.value - 1)) === 0) alignment = kv.value;
  }
  let running = 0;
  for (const t of s.tensors) {
    w.str(t.name);
    w.u32(t.ne.length);
    for (const d of t.ne) w.u64(BigInt(d));
    w.u32(t.type);
    w.u64(BigInt(t.offset === 'auto' ? running : t.offset));
    running += Math.ceil(nbytes(t) / alignment) * alignment;
  }
  const pad = (alignment - (w.size % alignment)) % alignment;
  w.push(new Uint8Array(pad));
  const data = new Uint8Array(s.dataBytes < 0 ? running : s.dataBytes);
  // f16/bf16/f32 patterns from a small LCG: finite and non-finite values both occur.
  let x = s.seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    data[i] = x >>> 24;
  }
  w.push(data);
  return w.bytes();
}
