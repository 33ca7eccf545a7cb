// GGUF: container reader/writer, ggml type table and decoders, the llama HF <-> GGUF mapping and
// the tokenizer rebuilt from metadata. Encoders (quantizers) are in quant/ggml.
export * from './ggml-types.js';
export * from './types.js';
export { readGgufFile, readTensorBytes, ggufTensor } from './reader.js';
export { writeGguf, type GgufToWrite, type GgufTensorToWrite } from './writer.js';
export { dequantizeGgml, tensorToF32, KVALUES_IQ4NL, DEQUANTIZABLE_TYPES } from './dequant.js';
export {
  GgufTensorSource,
  ggufToHfName,
  hfToGgufName,
  permuteQkHfToGguf,
  permuteQkGgufToHf,
  qkPermuteHeads,
  ggufToHfConfigObject,
  ggufToModelConfig,
  requireLlamaArchitecture,
  GGUF_LLAMA_ARCHITECTURE,
  type GgufTensorEntry,
} from './llama.js';
export { ggufTokenizerObjects, ggufTextTokenizer, ggufPreTokenizerName, GgufTokenType, type GgufTokenizerObjects, type MergeSource } from './tokenizer.js';
