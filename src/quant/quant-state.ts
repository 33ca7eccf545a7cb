// The packed bitsandbytes quant_state JSON (FORMATS.md §4.2): the exact text Python's
// json.dumps writes for QuantState.as_dict(packed=True), and a validating parser.
// Not here: the companion tensors (bnb-checkpoint.ts) or any arithmetic (blockwise.ts).
//
// Source: bitsandbytes-foundation/bitsandbytes bitsandbytes/functional.py (QuantState.as_dict,
// from_dict) and bitsandbytes/utils.py (pack_dict_to_tensor).

import { FormatError } from '../errors.js';
import { pythonFloatRepr } from '../formats/py-json.js';
import { NESTED_BLOCK_SIZE } from './codebooks.js';
import type { Quant4Type } from './types.js';

/** Dtype of the original weight and of the dequantized output, in torch spelling. */
export type TorchFloatDtype = 'float32' | 'float16' | 'bfloat16';

export const TORCH_FLOAT_DTYPES: readonly TorchFloatDtype[] = ['float32', 'float16', 'bfloat16'];

/** Safetensors dtype name of a torch float dtype. */
export const SAFETENSORS_DTYPE_OF: Readonly<Record<TorchFloatDtype, 'F32' | 'F16' | 'BF16'>> = {
  float32: 'F32', float16: 'F16', bfloat16: 'BF16',
};

export interface QuantStateJson {
  quantType: Quant4Type;
  blockSize: number;
  dtype: TorchFloatDtype;
  shape: number[];
  /** Present with double quantization. */
  nested?: { blockSize: number; dtype: 'float32'; offset: number };
}

/** Suffix of the tensor holding the JSON, after `<param>.`: `quant_state.bitsandbytes__nf4`. */
export function quantStateSuffix(type: Quant4Type): string {
  return `quant_state.bitsandbytes__${type}`;
}

/** The exact JSON text bitsandbytes stores (key order, `", "` and `": "` separators). */
export function formatQuantStateJson(s: QuantStateJson): string {
  let text = `{"quant_type": "${s.quantType}", "blocksize": ${s.blockSize}, "dtype": "${s.dtype}", "shape": [${s.shape.join(', ')}]`;
  if (s.nested !== undefined) {
    text += `, "nested_blocksize": ${s.nested.blockSize}, "nested_dtype": "${s.nested.dtype}", "nested_offset": ${pythonFloatRepr(s.nested.offset)}`;
  }
  return `${text}}`;
}

export function encodeQuantStateJson(s: QuantStateJson): Uint8Array {
  return new TextEncoder().encode(formatQuantStateJson(s));
}

/**
 * Parse the JSON bytes of a `quant_state.bitsandbytes__*` tensor (any valid JSON spelling).
 * `where` names the file and tensor for errors. The nested offset is returned as the f32 value
 * readers must use (FORMATS.md §3.6: parsed as a double, rounded to f32).
 */
export function parseQuantStateJson(bytes: Uint8Array, where: { file?: string; field?: string }): QuantStateJson {
  let obj: unknown;
  try {
    obj = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new FormatError('quant_state is not valid UTF-8 JSON', { ...where, cause, expected: 'the JSON of QuantState.as_dict(packed=True)' });
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw new FormatError('quant_state JSON is not an object', { ...where, got: typeof obj });
  }
  const o = obj as Record<string, unknown>;
  const bad = (key: string, expected: string): never => {
    throw new FormatError(`bad quant_state field ${key}`, { ...where, expected, got: JSON.stringify(o[key]) });
  };
  const quantType = o.quant_type;
  if (quantType !== 'nf4' && quantType !== 'fp4') bad('quant_type', '"nf4" or "fp4"');
  const blockSize = o.blocksize;
  if (typeof blockSize !== 'number' || !Number.isInteger(blockSize) || blockSize < 1) bad('blocksize', 'a positive integer');
  const dtype = o.dtype;
  if (typeof dtype !== 'string' || !(TORCH_FLOAT_DTYPES as readonly string[]).includes(dtype)) bad('dtype', TORCH_FLOAT_DTYPES.join(' | '));
  const shape = o.shape;
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0)) {
    bad('shape', 'a list of non-negative integers');
  }
  const result: QuantStateJson = {
    quantType: quantType as Quant4Type,
    blockSize: blockSize as number,
    dtype: dtype as TorchFloatDtype,
    shape: [...(shape as number[])],
  };
  const hasNested = ['nested_blocksize', 'nested_dtype', 'nested_offset'].filter((k) => k in o);
  if (hasNested.length > 0) {
    if (hasNested.length !== 3) bad(hasNested[0], 'nested_blocksize, nested_dtype and nested_offset together');
    const nb = o.nested_blocksize;
    if (typeof nb !== 'number' || !Number.isInteger(nb) || nb < 1) bad('nested_blocksize', `a positive integer (bitsandbytes writes ${NESTED_BLOCK_SIZE})`);
    if (o.nested_dtype !== 'float32') bad('nested_dtype', '"float32"');
    if (typeof o.nested_offset !== 'number' || !Number.isFinite(o.nested_offset)) bad('nested_offset', 'a finite number');
    result.nested = { blockSize: nb as number, dtype: 'float32', offset: Math.fround(o.nested_offset as number) };
  }
  return result;
}
