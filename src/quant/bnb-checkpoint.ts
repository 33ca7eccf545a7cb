// bitsandbytes 4-bit weights in Hugging Face safetensors checkpoints (FORMATS.md §4): read a
// prequantized weight's companion tensors into a QuantizedTensor (validating the JSON against
// every tensor before reading data), and produce the tensors and the config.json
// `quantization_config` that transformers + bitsandbytes load.
// Not here: streaming a whole model through the quantizer (quantize-checkpoint.ts), model loading.
//
// Sources: bitsandbytes/nn/modules.py (Linear4bit._save_to_state_dict, Params4bit.from_prequantized),
// bitsandbytes/functional.py (QuantState.as_dict/from_dict), transformers
// utils/quantization_config.py (BitsAndBytesConfig.to_dict).

import { FormatError, UnsupportedError } from '../errors.js';
import type { TensorSource, TensorToWrite } from '../formats/safetensors.js';
import { DTYPE_BYTES, type DType } from '../formats/dtype.js';
import { NESTED_BLOCK_SIZE } from './codebooks.js';
import type { FloatKind } from './config.js';
import { PyFloat, type PyJson } from '../formats/py-json.js';
import { encodeQuantStateJson, parseQuantStateJson, quantStateSuffix, type QuantStateJson, type TorchFloatDtype } from './quant-state.js';
import { QuantizedTensor } from './quantized-tensor.js';
import type { Quant4Type } from './types.js';

/** `bnb_4bit_quant_storage` values and the safetensors dtype the packed bytes are viewed as. */
export const QUANT_STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  uint8: 'U8', int8: 'I8', float16: 'F16', bfloat16: 'BF16', float32: 'F32', int32: 'I32', float64: 'F64', int64: 'I64',
};
export type QuantStorage = keyof typeof QUANT_STORAGE_DTYPES;

const STATE_PATTERN = /^(.+)\.quant_state\.bitsandbytes__(nf4|fp4)$/;

/** Parameter names (`model.layers.0.mlp.up_proj.weight`) stored in bnb-4bit form, sorted. */
export function listBnbWeights(source: TensorSource): string[] {
  const out: string[] = [];
  for (const name of source.names()) {
    const m = STATE_PATTERN.exec(name);
    if (m !== null) out.push(m[1]);
  }
  return out;
}

/** Every tensor name that belongs to a bnb weight (the weight itself and its companions). */
export function bnbCompanionNames(param: string, type: Quant4Type, doubleQuant: boolean): string[] {
  const names = [param, `${param}.absmax`, `${param}.quant_map`, `${param}.${quantStateSuffix(type)}`];
  if (doubleQuant) names.push(`${param}.nested_absmax`, `${param}.nested_quant_map`);
  return names;
}

interface WeightPlan {
  param: string;
  state: QuantStateJson;
  n: number;
  nblocks: number;
}

/** Check every companion tensor's dtype and shape against the JSON; no tensor data is read but the JSON. */
function planBnbWeight(source: TensorSource, param: string, file: string): WeightPlan {
  const types = (['nf4', 'fp4'] as const).filter((t) => source.has(`${param}.${quantStateSuffix(t)}`));
  if (types.length !== 1) {
    throw new FormatError('expected exactly one quant_state tensor for the weight', { file, field: param, got: `${types.length}` });
  }
  const stateName = `${param}.${quantStateSuffix(types[0])}`;
  const stateEntry = source.entry(stateName);
  if (stateEntry.dtype !== 'U8' || stateEntry.shape.length !== 1) {
    throw new FormatError('quant_state must be a 1-D uint8 tensor', { file, field: stateName, got: `${stateEntry.dtype} [${stateEntry.shape.join(', ')}]` });
  }
  const state = parseQuantStateJson(source.readBytes(stateName), { file, field: stateName });
  if (state.quantType !== types[0]) {
    throw new FormatError('quant_type in the JSON disagrees with the tensor name', { file, field: stateName, expected: types[0], got: state.quantType });
  }
  const n = state.shape.reduce((a, b) => a * b, 1);
  if (state.shape.length === 0 || n === 0) throw new FormatError('quantized weight has no elements', { file, field: stateName, got: JSON.stringify(state.shape) });
  const nblocks = Math.ceil(n / state.blockSize);
  const expect = (name: string, dtypes: readonly DType[], numel: number, what: string): void => {
    if (!source.has(name)) throw new FormatError(`missing ${what}`, { file, field: name, hint: 'the checkpoint is incomplete' });
    const e = source.entry(name);
    const count = e.shape.reduce((a, b) => a * b, 1);
    if (!dtypes.includes(e.dtype) || count !== numel) {
      throw new FormatError(`${what} disagrees with the quant_state JSON`, {
        file, field: name, expected: `${dtypes.join('|')} with ${numel} elements`, got: `${e.dtype} [${e.shape.join(', ')}]`,
      });
    }
  };
  // Packed codes: ceil(n/2) bytes as uint8, or floor((n+1) / (2*itemsize)) elements of the storage dtype.
  const w = source.entry(param);
  const item = DTYPE_BYTES[w.dtype];
  const packedBytes = Math.ceil(n / 2);
  if (!Object.values(QUANT_STORAGE_DTYPES).includes(w.dtype) || w.byteLength < packedBytes || w.byteLength !== Math.floor((n + 1) / (2 * item)) * item) {
    throw new FormatError('packed weight size disagrees with the quant_state shape', {
      file, field: param, expected: `${packedBytes} bytes (n = ${n})`, got: `${w.dtype} [${w.shape.join(', ')}] = ${w.byteLength} bytes`,
    });
  }
  expect(`${param}.quant_map`, ['F32'], 16, 'quant_map');
  if (state.nested !== undefined) {
    expect(`${param}.absmax`, ['U8'], nblocks, 'double-quantized absmax');
    expect(`${param}.nested_absmax`, ['F32'], Math.ceil(nblocks / state.nested.blockSize), 'nested_absmax');
    expect(`${param}.nested_quant_map`, ['F32'], 256, 'nested_quant_map');
  } else {
    expect(`${param}.absmax`, ['F32'], nblocks, 'absmax');
    for (const extra of ['nested_absmax', 'nested_quant_map']) {
      if (source.has(`${param}.${extra}`)) throw new FormatError('nested tensor present but the JSON has no nested_* fields', { file, field: `${param}.${extra}` });
    }
  }
  return { param, state, n, nblocks };
}

function f32Of(bytes: Uint8Array): Float32Array {
  // readBytes returns a fresh, aligned copy.
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

function readPlanned(source: TensorSource, p: WeightPlan): QuantizedTensor {
  const { param, state } = p;
  const packed = source.readBytes(param).subarray(0, Math.ceil(p.n / 2));
  const absmaxBytes = source.readBytes(`${param}.absmax`);
  const quantMap = f32Of(source.readBytes(`${param}.quant_map`));
  const settings = { quantType: state.quantType, blockSize: state.blockSize, doubleQuant: state.nested !== undefined, strategy: 'blockwise', zeroPoint: false } as const;
  const dq = state.nested === undefined ? null : {
    codes: absmaxBytes,
    nestedAbsmax: f32Of(source.readBytes(`${param}.nested_absmax`)),
    nestedMap: f32Of(source.readBytes(`${param}.nested_quant_map`)),
    offset: state.nested.offset,
    nestedBlockSize: state.nested.blockSize,
  };
  return new QuantizedTensor(state.shape, state.dtype, settings, packed, dq === null ? f32Of(absmaxBytes) : null, dq, null, quantMap, param);
}

/** Read one bnb-4bit weight (e.g. `model.layers.0.mlp.up_proj.weight`), validated, as stored (no requantization). */
export function readBnbWeight(source: TensorSource, param: string, file = 'checkpoint'): QuantizedTensor {
  return readPlanned(source, planBnbWeight(source, param, file));
}

/**
 * Read every bnb-4bit weight of a checkpoint. All weights are validated before any packed data is
 * read, so a bad checkpoint fails with FormatError and nothing half-loaded.
 */
export function readBnbWeights(source: TensorSource, file = 'checkpoint'): Map<string, QuantizedTensor> {
  const plans = listBnbWeights(source).map((p) => planBnbWeight(source, p, file));
  return new Map(plans.map((p) => [p.param, readPlanned(source, p)]));
}

const TORCH_DTYPE_OF_KIND: Readonly<Record<FloatKind, TorchFloatDtype>> = { f32: 'float32', f16: 'float16', bf16: 'bfloat16' };

/** Refuse layouts bitsandbytes cannot read (perChannel blocks, zero points, other nested blocks). */
export function assertBnbCompatible(q: QuantizedTensor, name: string): void {
  const why = q.blocksPerRow > 0 ? 'perChannel blocks (bitsandbytes blocks run over the flattened tensor)'
    : q.zeros !== null ? 'zero-point scales (bitsandbytes is symmetric absmax only)'
      : q.dq !== null && q.dq.nestedBlockSize !== NESTED_BLOCK_SIZE ? `nested block size ${q.dq.nestedBlockSize}` : null;
  if (why !== null) {
    throw new UnsupportedError('this quantization cannot be stored as a bitsandbytes 4-bit checkpoint', {
      field: name, got: why, hint: 'use strategy blockwise without zeroPoint for bnb-4bit export',
    });
  }
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * The tensors bitsandbytes saves for one quantized weight `param` (FORMATS.md §4.1), in the
 * storage dtype (`uint8`, or e.g. `bfloat16` for FSDP: the same bytes viewed as that dtype).
 */
export function bnbTensorsFor(param: string, q: QuantizedTensor, quantStorage: QuantStorage = 'uint8'): TensorToWrite[] {
  assertBnbCompatible(q, param);
  const storage = QUANT_STORAGE_DTYPES[quantStorage];
  const item = DTYPE_BYTES[storage];
  if (q.packed.length % item !== 0) {
    throw new UnsupportedError('packed size is not a multiple of the quant_storage item size', {
      field: param, expected: `a multiple of ${item} bytes`, got: `${q.packed.length} bytes`, hint: 'use quant_storage uint8',
    });
  }
  const json = encodeQuantStateJson({
    quantType: q.quantType, blockSize: q.blockSize, dtype: q.dtype, shape: [...q.shape],
    nested: q.dq === null ? undefined : { blockSize: q.dq.nestedBlockSize, dtype: 'float32', offset: q.dq.offset },
  });
  const out: TensorToWrite[] = [
    { name: param, dtype: storage, shape: [q.packed.length / item, 1], data: q.packed },
    { name: `${param}.absmax`, dtype: q.dq === null ? 'F32' : 'U8', shape: [q.blockCount], data: bytesOf(q.dq === null ? q.absmax! : q.dq.codes) },
    { name: `${param}.quant_map`, dtype: 'F32', shape: [16], data: bytesOf(q.codebook) },
    { name: `${param}.${quantStateSuffix(q.quantType)}`, dtype: 'U8', shape: [json.length], data: json },
  ];
  if (q.dq !== null) {
    out.push(
      { name: `${param}.nested_absmax`, dtype: 'F32', shape: [q.dq.nestedAbsmax.length], data: bytesOf(q.dq.nestedAbsmax) },
      { name: `${param}.nested_quant_map`, dtype: 'F32', shape: [256], data: bytesOf(q.dq.nestedMap) },
    );
  }
  return out;
}

export interface BnbConfigOptions {
  quantType: Quant4Type;
  doubleQuant: boolean;
  computeDtype: FloatKind;
  quantStorage?: QuantStorage;
  /** Linear modules left unquantized; null = transformers' default (lm_head). */
  skipModules?: string[] | null;
}

/**
 * BitsAndBytesConfig.to_dict() for a 4-bit checkpoint (FORMATS.md §4.3), every key written
 * explicitly (the class defaults differ from what we write: fp4, no double quant).
 */
export function bnbQuantizationConfig(o: BnbConfigOptions): { [key: string]: PyJson } {
  return {
    _load_in_4bit: true,
    _load_in_8bit: false,
    bnb_4bit_compute_dtype: TORCH_DTYPE_OF_KIND[o.computeDtype],
    bnb_4bit_quant_storage: o.quantStorage ?? 'uint8',
    bnb_4bit_quant_type: o.quantType,
    bnb_4bit_use_double_quant: o.doubleQuant,
    llm_int8_enable_fp32_cpu_offload: false,
    llm_int8_has_fp16_weight: false,
    llm_int8_skip_modules: o.skipModules ?? null,
    llm_int8_threshold: new PyFloat(6.0),
    load_in_4bit: true,
    load_in_8bit: false,
    quant_method: 'bitsandbytes',
  };
}

/** Bytes the given tensor list occupies as data (no header). */
export function tensorDataBytes(tensors: readonly TensorToWrite[]): number {
  return tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype], 0);
}
