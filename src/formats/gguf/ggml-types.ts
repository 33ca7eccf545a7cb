// ggml tensor type ids and their block geometry: the one table every GGUF reader, writer,
// quantizer and dequantizer uses. It lives in formats/ (the lowest layer) because the GGUF
// container needs block sizes to compute tensor byte sizes; quant/ggml re-exports it.
//
// Sources: ggml-org/llama.cpp `ggml/include/ggml.h` (enum ggml_type), `ggml/src/ggml-common.h`
// (block structs), `gguf-py/gguf/constants.py` (GGML_QUANT_SIZES). FORMATS.md §7.1.
// This file holds no conversion code (see formats/gguf/dequant.ts and quant/ggml/quantize.ts).

/** ggml_type ids as stored in GGUF tensor infos. Ids 4, 5, 31-33 and 36-38 were removed upstream. */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
}

/** Elements per block of the 32-element types (ggml QK4_0 = QK4_1 = QK8_0 = QK4_NL = 32). */
export const QK32 = 32;
/** Elements per super-block of the K-quants and most IQ types (ggml QK_K). */
export const QK_K = 256;

/** One field of a block struct, in declaration order (ggml-common.h). */
export interface BlockField {
  readonly name: string;
  readonly bytes: number;
}

export interface GgmlTypeTraits {
  readonly type: GgmlType;
  /** Upstream name (`Q4_0`, `BF16`...), as gguf-py's GGMLQuantizationType prints it. */
  readonly name: string;
  /** Elements per block; a row's ne0 must be a multiple of it. */
  readonly blockElems: number;
  /** Bytes per block. */
  readonly blockBytes: number;
  /** Block struct fields in byte order, declared for the types qlora-ts decodes or encodes. */
  readonly layout?: readonly BlockField[];
}

const f = (name: string, bytes: number): BlockField => Object.freeze({ name, bytes });

/** Byte layouts of the blocks qlora-ts reads or writes (FORMATS.md §7.1). */
export const BLOCK_LAYOUTS: Readonly<Partial<Record<GgmlType, readonly BlockField[]>>> = Object.freeze({
  [GgmlType.F32]: [f('value_f32', 4)],
  [GgmlType.F16]: [f('value_f16', 2)],
  [GgmlType.BF16]: [f('value_bf16', 2)],
  [GgmlType.Q4_0]: [f('d_f16', 2), f('qs', QK32 / 2)],
  [GgmlType.Q4_1]: [f('d_f16', 2), f('m_f16', 2), f('qs', QK32 / 2)],
  [GgmlType.Q8_0]: [f('d_f16', 2), f('qs_i8', QK32)],
  [GgmlType.IQ4_NL]: [f('d_f16', 2), f('qs', QK32 / 2)],
  [GgmlType.Q4_K]: [f('d_f16', 2), f('dmin_f16', 2), f('scales', 12), f('qs', QK_K / 2)],
  // Q6_K stores its f16 scale LAST.
  [GgmlType.Q6_K]: [f('ql', QK_K / 2), f('qh', QK_K / 4), f('scales_i8', QK_K / 16), f('d_f16', 2)],
});

/** [type, name, block elements, block bytes] for every known id (gguf-py GGML_QUANT_SIZES). */
const TABLE: ReadonlyArray<readonly [GgmlType, string, number, number]> = [
  [GgmlType.F32, 'F32', 1, 4],
  [GgmlType.F16, 'F16', 1, 2],
  [GgmlType.Q4_0, 'Q4_0', QK32, 2 + QK32 / 2],
  [GgmlType.Q4_1, 'Q4_1', QK32, 2 + 2 + QK32 / 2],
  [GgmlType.Q5_0, 'Q5_0', QK32, 2 + 4 + QK32 / 2],
  [GgmlType.Q5_1, 'Q5_1', QK32, 2 + 2 + 4 + QK32 / 2],
  [GgmlType.Q8_0, 'Q8_0', QK32, 2 + QK32],
  [GgmlType.Q8_1, 'Q8_1', QK32, 4 + QK32],
  [GgmlType.Q2_K, 'Q2_K', QK_K, 2 + 2 + QK_K / 16 + QK_K / 4],
  [GgmlType.Q3_K, 'Q3_K', QK_K, 2 + QK_K / 4 + QK_K / 8 + 12],
  [GgmlType.Q4_K, 'Q4_K', QK_K, 2 + 2 + 12 + QK_K / 2],
  [GgmlType.Q5_K, 'Q5_K', QK_K, 2 + 2 + 12 + QK_K / 8 + QK_K / 2],
  [GgmlType.Q6_K, 'Q6_K', QK_K, 2 + QK_K / 16 + 3 * QK_K / 4],
  [GgmlType.Q8_K, 'Q8_K', QK_K, 4 + QK_K + 2 * (QK_K / 16)],
  [GgmlType.IQ2_XXS, 'IQ2_XXS', QK_K, 2 + QK_K / 4],
  [GgmlType.IQ2_XS, 'IQ2_XS', QK_K, 2 + QK_K / 4 + QK_K / 32],
  [GgmlType.IQ3_XXS, 'IQ3_XXS', QK_K, 2 + (3 * QK_K) / 8],
  [GgmlType.IQ1_S, 'IQ1_S', QK_K, 2 + QK_K / 8 + QK_K / 16],
  [GgmlType.IQ4_NL, 'IQ4_NL', QK32, 2 + QK32 / 2],
  [GgmlType.IQ3_S, 'IQ3_S', QK_K, 2 + QK_K / 4 + QK_K / 32 + QK_K / 8 + QK_K / 64],
  [GgmlType.IQ2_S, 'IQ2_S', QK_K, 2 + QK_K / 4 + QK_K / 32 + QK_K / 32],
  [GgmlType.IQ4_XS, 'IQ4_XS', QK_K, 2 + 2 + QK_K / 64 + QK_K / 2],
  [GgmlType.I8, 'I8', 1, 1],
  [GgmlType.I16, 'I16', 1, 2],
  [GgmlType.I32, 'I32', 1, 4],
  [GgmlType.I64, 'I64', 1, 8],
  [GgmlType.F64, 'F64', 1, 8],
  [GgmlType.IQ1_M, 'IQ1_M', QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32],
  [GgmlType.BF16, 'BF16', 1, 2],
  [GgmlType.TQ1_0, 'TQ1_0', QK_K, 2 + (QK_K - (4 * QK_K) / 64) / 5 + QK_K / 64],
  [GgmlType.TQ2_0, 'TQ2_0', QK_K, 2 + QK_K / 4],
  [GgmlType.MXFP4, 'MXFP4', QK32, 1 + QK32 / 2],
];

const TRAITS: ReadonlyMap<number, GgmlTypeTraits> = new Map(
  TABLE.map(([type, name, blockElems, blockBytes]) => {
    const layout = BLOCK_LAYOUTS[type];
    const t: GgmlTypeTraits = layout === undefined ? { type, name, blockElems, blockBytes } : { type, name, blockElems, blockBytes, layout };
    return [type as number, Object.freeze(t)] as const;
  }),
);

/** Traits of a known type id, or undefined for an unknown or removed id. */
export function ggmlTypeTraits(type: number): GgmlTypeTraits | undefined {
  return TRAITS.get(type);
}

/** All known types, in id order. */
export function knownGgmlTypes(): GgmlTypeTraits[] {
  return [...TRAITS.values()];
}

export function isGgmlType(type: number): type is GgmlType {
  return TRAITS.has(type);
}

/** Upstream name of a type id (`Q4_0`), or `type <id>` for unknown ids (for messages). */
export function ggmlTypeName(type: number): string {
  return TRAITS.get(type)?.name ?? `type ${type}`;
}

/** Type id for an upstream name (`q4_0` or `Q4_0`), or undefined. */
export function ggmlTypeByName(name: string): GgmlType | undefined {
  const upper = name.toUpperCase();
  for (const t of TRAITS.values()) if (t.name === upper) return t.type;
  return undefined;
}
