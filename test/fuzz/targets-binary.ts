// Fuzz targets for the binary formats: safetensors (single file and sharded index), GGUF (reader,
// the llama tensor source and the tokenizer built from its metadata) and bitsandbytes 4-bit
// checkpoints (quant_state JSON and companion tensors). Each mixes property-based files and
// mutations of the real fixtures in ../shared/fixtures.

import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { QloraError } from '../../src/errors.js';
import { ggufTextTokenizer } from '../../src/formats/gguf/tokenizer.js';
import { GgufTensorSource } from '../../src/formats/gguf/llama.js';
import { readGgufFile } from '../../src/formats/gguf/reader.js';
import { openCheckpoint, type TensorSource } from '../../src/formats/safetensors.js';
import { readBnbWeights } from '../../src/quant/bnb-checkpoint.js';
import { fixture } from '../helpers/shared.js';
import { ggufNumericFields, ggufSpec, encodeGguf, type GgufSpec } from './gguf-gen.js';
import type { CaseFiles, FuzzTarget } from './harness.js';
import { applyByteOps, applyJsonMutation, byteOps, jsonMutation, type ByteOp, type JsonMutation } from './mutate.js';
import { applyHeaderMutation, decodeSafetensors, encodeSafetensors, headerMutation, joinSafetensors, type HeaderMutation } from './safetensors-bytes.js';

const cache = new Map<string, Uint8Array>();
export function fixtureBytes(...parts: string[]): Uint8Array {
  const path = fixture(...parts);
  let b = cache.get(path);
  if (b === undefined) {
    b = new Uint8Array(readFileSync(path));
    cache.set(path, b);
  }
  return b;
}

/**
 * Runs every stage even when an earlier one refuses the input (each layer gets its chance to
 * meet bad data); rethrows the first untyped error, else the first typed one.
 */
export function stages(...fns: Array<() => void>): void {
  let typed: unknown = null;
  for (const fn of fns) {
    try {
      fn();
    } catch (err) {
      if (!(err instanceof QloraError)) throw err;
      typed ??= err;
    }
  }
  if (typed !== null) throw typed;
}

/** Reads every tensor of a source as f32 (the path a loader takes), then closes it. */
export function readAllTensors(src: TensorSource): void {
  try {
    for (const name of src.names()) {
      const e = src.entry(name);
      const out = new Float32Array(e.shape.reduce((a, d) => a * d, 1));
      src.readF32Into(name, out);
    }
  } finally {
    src.close();
  }
}

const byteMutation = <T extends string>(fixtures: readonly T[]): fc.Arbitrary<{ kind: 'bytes'; fixture: T; ops: readonly ByteOp[] }> =>
  fc.record({ kind: fc.constant('bytes' as const), fixture: fc.constantFrom(...fixtures), ops: byteOps });

// ------------------------------------------------------------------------------------------------
// safetensors

const ST_FIXTURES = ['golden/stories260K-lora/adapter_model.safetensors', 'bnb/linear4bit_nf4_dq_bf16/model.safetensors', 'models/stories260K/model.safetensors'] as const;
type StFixture = (typeof ST_FIXTURES)[number];

const DTYPES = ['F32', 'F16', 'BF16', 'F64', 'I64', 'I32', 'I16', 'I8', 'U64', 'U32', 'U16', 'U8', 'BOOL', 'F8_E4M3', 'f32', ''];

/** A generated header: tensors with any dtype / shape / offsets, data of any length. */
interface GeneratedSafetensors {
  readonly entries: ReadonlyArray<{ name: string; dtype: string; shape: number[]; offsets: number[] | 'auto' }>;
  readonly dataBytes: number | 'auto';
  readonly metadata: unknown;
}

const generatedSafetensors: fc.Arbitrary<GeneratedSafetensors> = fc.record({
  entries: fc.array(fc.record({
    name: fc.oneof(fc.constantFrom('w', 'model.embed_tokens.weight', '__metadata__', ''), fc.string({ maxLength: 10 })),
    dtype: fc.constantFrom(...DTYPES),
    shape: fc.array(fc.oneof({ weight: 6, arbitrary: fc.nat({ max: 9 }) }, { weight: 1, arbitrary: fc.constantFrom(2 ** 31, 2 ** 40, 2 ** 53 - 1, -1, 1.5) }), { maxLength: 4 }),
    offsets: fc.oneof({ weight: 4, arbitrary: fc.constant('auto' as const) }, { weight: 1, arbitrary: fc.array(fc.oneof(fc.nat({ max: 600 }), fc.constantFrom(-1, 2 ** 53, 2 ** 64)), { minLength: 0, maxLength: 3 }) }),
  }), { maxLength: 5 }),
  dataBytes: fc.oneof({ weight: 3, arbitrary: fc.constant('auto' as const) }, { weight: 1, arbitrary: fc.nat({ max: 700 }) }),
  metadata: fc.oneof(fc.constant(undefined), fc.constant(null), fc.dictionary(fc.string({ maxLength: 5 }), fc.oneof(fc.string({ maxLength: 5 }), fc.integer()), { maxKeys: 3 })),
});

function encodeGenerated(g: GeneratedSafetensors): Uint8Array {
  const header: Record<string, unknown> = {};
  if (g.metadata !== undefined) header.__metadata__ = g.metadata;
  let at = 0;
  for (const e of g.entries) {
    const elem = { F64: 8, I64: 8, U64: 8, F32: 4, I32: 4, U32: 4, F16: 2, BF16: 2, I16: 2, U16: 2 }[e.dtype] ?? 1;
    const n = e.shape.reduce((a, d) => a * d, 1) * elem;
    const size = Number.isSafeInteger(n) && n >= 0 && n < 4096 ? n : 7;
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: e.offsets === 'auto' ? [at, at + size] : e.offsets };
    at += size;
  }
  const data = new Uint8Array(g.dataBytes === 'auto' ? at : g.dataBytes).map((_, i) => (i * 37) & 0xff);
  return joinSafetensors(header, data);
}

/** The stories260K checkpoint split over three shards with an index, as transformers saves it. */
function shardedFixture(): CaseFiles {
  const { tensors } = decodeSafetensors(fixtureBytes('models', 'stories260K', 'model.safetensors'));
  const files: CaseFiles = {};
  const weightMap: Record<string, string> = {};
  const shards = 3;
  for (let s = 0; s < shards; s++) {
    const name = `model-0000${s + 1}-of-0000${shards}.safetensors`;
    const mine = tensors.filter((_, i) => i % shards === s);
    for (const t of mine) weightMap[t.name] = name;
    files[name] = encodeSafetensors(mine, { format: 'pt' });
  }
  files['model.safetensors.index.json'] = new TextEncoder().encode(JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
  return files;
}
let shardedCache: CaseFiles | null = null;
const sharded = (): CaseFiles => (shardedCache ??= shardedFixture());

type SafetensorsSpec =
  | { kind: 'bytes'; fixture: StFixture; ops: readonly ByteOp[] }
  | { kind: 'header'; fixture: StFixture; m: HeaderMutation }
  | { kind: 'generated'; g: GeneratedSafetensors }
  | { kind: 'index'; m: JsonMutation }
  | { kind: 'shard'; shard: number; m: HeaderMutation | readonly ByteOp[] };

export const safetensorsTarget: FuzzTarget<SafetensorsSpec> = {
  format: 'safetensors',
  cases: fc.oneof(
    { weight: 3, arbitrary: byteMutation(ST_FIXTURES) },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('header' as const), fixture: fc.constantFrom(...ST_FIXTURES), m: headerMutation }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('generated' as const), g: generatedSafetensors }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('index' as const), m: jsonMutation }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('shard' as const), shard: fc.nat({ max: 2 }), m: fc.oneof(headerMutation, byteOps) }) },
  ),
  materialize(spec) {
    switch (spec.kind) {
      case 'bytes': return { 'model.safetensors': applyByteOps(fixtureBytes(spec.fixture), spec.ops, [{ at: 0, width: 8 }]) };
      case 'header': return { 'model.safetensors': applyHeaderMutation(fixtureBytes(spec.fixture), spec.m) };
      case 'generated': return { 'model.safetensors': encodeGenerated(spec.g) };
      case 'index': {
        const files = { ...sharded() };
        const index = JSON.parse(new TextDecoder().decode(files['model.safetensors.index.json'])) as unknown;
        files['model.safetensors.index.json'] = applyJsonMutation(index, spec.m);
        return files;
      }
      case 'shard': {
        const files = { ...sharded() };
        const name = `model-0000${spec.shard + 1}-of-00003.safetensors`;
        files[name] = Array.isArray(spec.m) ? applyByteOps(files[name], spec.m, [{ at: 0, width: 8 }]) : applyHeaderMutation(files[name], spec.m as HeaderMutation);
        return files;
      }
    }
  },
  run(dir) {
    readAllTensors(openCheckpoint(dir));
  },
};

// ------------------------------------------------------------------------------------------------
// GGUF

const GGUF_FIXTURES = ['gguf/stories260K-Q4_0.gguf', 'gguf/stories260K-Q8_0.gguf', 'gguf/stories260K-F16.gguf', 'gguf/stories260K-IQ4_NL.gguf', 'gguf/stories260K-lora-q8_0.gguf', 'gguf/stories260K-BF16.gguf'] as const;
type GgufFixture = (typeof GGUF_FIXTURES)[number];

const fieldsCache = new Map<string, ReturnType<typeof ggufNumericFields>>();
function fieldsOf(name: string): ReturnType<typeof ggufNumericFields> {
  let f = fieldsCache.get(name);
  if (f === undefined) fieldsCache.set(name, (f = ggufNumericFields(fixtureBytes(name))));
  return f;
}

type GgufCase = { kind: 'bytes'; fixture: GgufFixture; ops: readonly ByteOp[] } | { kind: 'generated'; spec: GgufSpec };

export const ggufTarget: FuzzTarget<GgufCase> = {
  format: 'gguf',
  cases: fc.oneof({ weight: 3, arbitrary: byteMutation(GGUF_FIXTURES) }, { weight: 2, arbitrary: fc.record({ kind: fc.constant('generated' as const), spec: ggufSpec }) }),
  materialize(spec) {
    if (spec.kind === 'generated') return { 'model.gguf': encodeGguf(spec.spec) };
    return { 'model.gguf': applyByteOps(fixtureBytes(spec.fixture), spec.ops, fieldsOf(spec.fixture)) };
  },
  run(dir) {
    const file = readGgufFile(join(dir, 'model.gguf'));
    stages(
      () => readAllTensors(new GgufTensorSource(file)),
      () => {
        const tok = ggufTextTokenizer(file);
        const ids = tok.encode('Once upon a time, <s> there was 1 ü.');
        tok.decode(ids);
      },
    );
  },
};

// ------------------------------------------------------------------------------------------------
// bitsandbytes 4-bit checkpoints

const BNB_FIXTURES = ['bnb/linear4bit_nf4_dq_bf16/model.safetensors', 'bnb/linear4bit_fp4_nodq_bf16/model.safetensors', 'bnb/linear4bit_nf4_dq_bf16_storage_bf16/model.safetensors', 'bnb-models/stories260K-nf4-dq/model.safetensors'] as const;
type BnbFixture = (typeof BNB_FIXTURES)[number];

/** A quant_state JSON object of any shape: known keys with plausible or hostile values. */
const quantStateObject = fc.record({
  quant_type: fc.constantFrom('nf4', 'fp4', 'int4', 4, null),
  blocksize: fc.constantFrom(64, 32, 128, 0, -64, 63, 1.5, 2 ** 53, '64'),
  dtype: fc.constantFrom('bfloat16', 'float16', 'float32', 'int8', ''),
  shape: fc.oneof(fc.constantFrom([64, 64], [0], [], [2 ** 40, 2 ** 40], [1e300, 1e300], [-1, 64], [64.5]), fc.array(fc.nat({ max: 300 }), { maxLength: 3 })),
  nested_blocksize: fc.constantFrom(256, 0, 1, 2 ** 31),
  nested_dtype: fc.constantFrom('float32', 'float16'),
  nested_offset: fc.constantFrom(0.01, 0, -1e308, 1e308, 'x'),
}, { requiredKeys: [] });

type BnbSpec =
  | { kind: 'bytes'; fixture: BnbFixture; ops: readonly ByteOp[] }
  | { kind: 'header'; fixture: BnbFixture; m: HeaderMutation }
  | { kind: 'state'; fixture: BnbFixture; which: number; m: JsonMutation }
  | { kind: 'generatedState'; fixture: BnbFixture; which: number; state: Record<string, unknown> };

/** The fixture with the JSON of its `which`-th quant_state tensor replaced by `bytes` (re-laid out). */
function withQuantState(fixtureName: BnbFixture, which: number, replace: (old: unknown) => Uint8Array): Uint8Array {
  const { tensors, metadata } = decodeSafetensors(fixtureBytes(fixtureName));
  const states = tensors.filter((t) => t.name.includes('.quant_state.'));
  const target = states[which % states.length];
  const bytes = replace(JSON.parse(new TextDecoder().decode(target.data)));
  const out = tensors.map((t) => (t === target ? { ...t, shape: [bytes.length], data: bytes } : t));
  return encodeSafetensors(out, metadata);
}

export const bnbTarget: FuzzTarget<BnbSpec> = {
  format: 'bnb-4bit',
  cases: fc.oneof(
    { weight: 2, arbitrary: byteMutation(BNB_FIXTURES) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('header' as const), fixture: fc.constantFrom(...BNB_FIXTURES), m: headerMutation }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('state' as const), fixture: fc.constantFrom(...BNB_FIXTURES), which: fc.nat(), m: jsonMutation }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('generatedState' as const), fixture: fc.constantFrom(...BNB_FIXTURES), which: fc.nat(), state: quantStateObject }) },
  ),
  materialize(spec) {
    const name = 'model.safetensors';
    switch (spec.kind) {
      case 'bytes': return { [name]: applyByteOps(fixtureBytes(spec.fixture), spec.ops, [{ at: 0, width: 8 }]) };
      case 'header': return { [name]: applyHeaderMutation(fixtureBytes(spec.fixture), spec.m) };
      case 'state': return { [name]: withQuantState(spec.fixture, spec.which, (old) => applyJsonMutation(old, spec.m)) };
      case 'generatedState': return { [name]: withQuantState(spec.fixture, spec.which, () => new TextEncoder().encode(JSON.stringify(spec.state))) };
    }
  },
  run(dir) {
    const src = openCheckpoint(join(dir, 'model.safetensors'));
    try {
      for (const q of readBnbWeights(src, 'model.safetensors').values()) q.dequantize();
    } finally {
      src.close();
    }
  },
};
