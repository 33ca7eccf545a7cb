// GGUF LoRA adapter export (FORMATS.md §12): a PEFT adapter as llama.cpp's `--lora` file, tensors
// as `convert_lora_to_gguf.py` writes them (lora_a [in, r] and lora_b [r, out] in ne order, the
// PEFT bytes unchanged except lora_B's rows of q/k permuted like the base). llama.cpp has no rsLoRA
// flag: alpha is written as α·√r so that its alpha/r equals α/√r. A per-module ratio that one
// alpha cannot express (alpha_pattern, or rank_pattern with rsLoRA) is folded into lora_b.
// Not here: reading PEFT files (formats/peft.ts), the base model (gguf-model.ts).

import { GgmlType } from '../formats/gguf/ggml-types.js';
import { hfToGgufName, permuteQkHfToGguf, qkPermuteHeads } from '../formats/gguf/llama.js';
import { GgufValueType } from '../formats/gguf/types.js';
import { writeGguf, type GgufTensorToWrite } from '../formats/gguf/writer.js';
import type { ModelConfig } from '../formats/hf-config.js';
import type { PeftAdapter } from '../formats/peft.js';
import { quantizeGgml } from '../quant/ggml/quantize.js';
import { ShapeError } from '../errors.js';

export type GgufAdapterType = 'f32' | 'f16' | 'bf16';

const TYPES: Readonly<Record<GgufAdapterType, GgmlType>> = { f32: GgmlType.F32, f16: GgmlType.F16, bf16: GgmlType.BF16 };

/** Writes `adapter` (checked against a base with `config`) as a GGUF LoRA adapter at `out`. */
export function writeGgufAdapter(adapter: PeftAdapter, config: ModelConfig, out: string, opts: { type?: GgufAdapterType; name?: string } = {}): void {
  const type = TYPES[opts.type ?? 'f32'];
  const first = adapter.modules[0];
  // The alpha llama.cpp multiplies by 1/r of each tensor: scale·r of the first module.
  const alpha = first.scale * first.r;
  const tensors: GgufTensorToWrite[] = [];
  for (const m of adapter.modules) {
    const base = hfToGgufName(`${m.module}.weight`);
    if (base === undefined) throw new ShapeError('adapter module has no llama GGUF tensor', { field: m.module, hint: 'llama.cpp applies adapters to the llama projections only' });
    const inF = m.A.length / m.r;
    const outF = m.B.length / m.r;
    const ratio = (m.scale * m.r) / alpha;
    let B = ratio === 1 ? m.B : m.B.map((x) => x * ratio);
    const heads = qkPermuteHeads(`${m.module}.weight`, config);
    if (heads !== null) B = permuteQkHfToGguf(B, outF, heads);
    tensors.push({ name: `${base}.lora_a`, ne: [inF, m.r], type, data: () => quantizeGgml(type, m.A) });
    tensors.push({ name: `${base}.lora_b`, ne: [m.r, outF], type, data: () => quantizeGgml(type, B) });
  }
  writeGguf(out, {
    metadata: [
      ['general.architecture', { type: GgufValueType.STRING, value: 'llama' }],
      ['general.type', { type: GgufValueType.STRING, value: 'adapter' }],
      ['adapter.type', { type: GgufValueType.STRING, value: 'lora' }],
      ['general.name', { type: GgufValueType.STRING, value: opts.name ?? 'adapter' }],
      ['adapter.lora.alpha', { type: GgufValueType.FLOAT32, value: alpha }],
      ['general.quantization_version', { type: GgufValueType.UINT32, value: 2 }],
    ],
    tensors,
  });
}
