// ggml block types for GGUF import/export: type table, decoders (to f32) and reference encoders
// (from f32). Decoders live in formats/gguf/dequant.ts because reading a GGUF tensor needs them
// below the quant layer; they are re-exported here beside the encoders.
export * from './types.js';
export { quantizeGgml, bestIndexIq4nl, bestIndexIq4nlRef, QUANTIZABLE_TYPES } from './quantize.js';
export { dequantizeGgml, tensorToF32, q4kScaleMin, KVALUES_IQ4NL, DEQUANTIZABLE_TYPES } from '../../formats/gguf/dequant.js';
