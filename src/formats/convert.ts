// Raw little-endian tensor bytes of a safetensors dtype -> Float32Array. Floats widen exactly
// (f16/bf16 via dtype.ts; F64 rounds to the nearest f32, the only lossy case); integers and BOOL
// convert by value. Knows nothing of files: callers hand in the bytes of one tensor.

import { bf16BitsToF32, f16BitsToF32, DTYPE_BYTES, type DType } from './dtype.js';
import { ShapeError } from '../errors.js';

/** True when typed arrays on this host are little-endian, so file bytes can be viewed directly. */
export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Exact 16-bit float decode tables (65,536 entries each), built on first use. */
let f16Table: Float32Array | null = null;
let bf16Table: Float32Array | null = null;

function table16(kind: 'F16' | 'BF16'): Float32Array {
  if (kind === 'F16') {
    if (f16Table === null) {
      f16Table = new Float32Array(65536);
      for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32(h);
    }
    return f16Table;
  }
  if (bf16Table === null) {
    bf16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) bf16Table[h] = bf16BitsToF32(h);
  }
  return bf16Table;
}

/** Converts one tensor's bytes (`dtype`, little-endian) to f32 values, into `into` when given (its length must match). */
export function bytesToF32(bytes: Uint8Array, dtype: DType, name = 'tensor', into?: Float32Array): Float32Array {
  const size = DTYPE_BYTES[dtype];
  if (bytes.byteLength % size !== 0) {
    throw new ShapeError('byte length is not a whole number of elements', {
      field: name,
      expected: `a multiple of ${size} (${dtype})`,
      got: String(bytes.byteLength),
    });
  }
  const n = bytes.byteLength / size;
  if (into !== undefined && into.length !== n) throw new ShapeError('output length does not match the tensor', { field: name, expected: String(n), got: String(into.length) });
  const out = into ?? new Float32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F32':
      if (HOST_LITTLE_ENDIAN) new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes);
      else for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
      break;
    case 'F16':
    case 'BF16': {
      const t = table16(dtype);
      if (HOST_LITTLE_ENDIAN && bytes.byteOffset % 2 === 0) {
        const halves = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
        for (let i = 0; i < n; i++) out[i] = t[halves[i]];
      } else {
        for (let i = 0; i < n; i++) out[i] = t[view.getUint16(2 * i, true)];
      }
      break;
    }
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
      break;
    case 'I64':
      for (let i = 0; i < n; i++) out[i] = Number(view.getBigInt64(8 * i, true));
      break;
    case 'U64':
      for (let i = 0; i < n; i++) out[i] = Number(view.getBigUint64(8 * i, true));
      break;
    case 'I32':
      for (let i = 0; i < n; i++) out[i] = view.getInt32(4 * i, true);
      break;
    case 'U32':
      for (let i = 0; i < n; i++) out[i] = view.getUint32(4 * i, true);
      break;
    case 'I16':
      for (let i = 0; i < n; i++) out[i] = view.getInt16(2 * i, true);
      break;
    case 'U16':
      for (let i = 0; i < n; i++) out[i] = view.getUint16(2 * i, true);
      break;
    case 'I8':
      for (let i = 0; i < n; i++) out[i] = view.getInt8(i);
      break;
    case 'U8':
      out.set(bytes);
      break;
    case 'BOOL':
      for (let i = 0; i < n; i++) out[i] = bytes[i] !== 0 ? 1 : 0;
      break;
  }
  return out;
}
