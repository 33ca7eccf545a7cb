// ggml type ids and block geometry, as seen from the quant layer. The table itself lives in
// formats/gguf/ggml-types.ts (the GGUF container needs it and formats/ sits below quant/); this
// module re-exports it so quant code and its users have one import path and one source of truth.
export {
  GgmlType,
  QK32,
  QK_K,
  BLOCK_LAYOUTS,
  ggmlTypeTraits,
  ggmlTypeName,
  ggmlTypeByName,
  isGgmlType,
  knownGgmlTypes,
  type BlockField,
  type GgmlTypeTraits,
} from '../../formats/gguf/ggml-types.js';
