// Loading a PEFT LoRA adapter folder into a model's LoRA slots: the reader (formats/peft.ts)
// checks the files against the model's Linear shapes, then each module's A, B and scale are
// attached with LlamaModel.attachLora (replacing any adapter already there).
// Not here: file parsing (formats/peft.ts), the LoRA math (nn/linear.ts), writing adapters (export/).

import { readPeftAdapter, type LinearShape, type PeftAdapter } from '../formats/peft.js';
import type { LlamaModel } from './llama.js';

/** Read the adapter in `dir`, check it against `model` and attach it; returns what was read. */
export function loadPeftAdapter(model: LlamaModel, dir: string): PeftAdapter {
  const shapes = new Map<string, LinearShape>();
  for (const lin of model.linears()) shapes.set(lin.name, { inFeatures: lin.inFeatures, outFeatures: lin.outFeatures });
  const adapter = readPeftAdapter(dir, shapes);
  for (const m of adapter.modules) model.attachLora(m.module, m.A, m.B, m.r, m.scale);
  return adapter;
}
