// Export for llama.cpp: the demo model as a Q8_0 GGUF model file and, given a run folder (from
// fine-tune-on-your-own-data.ts or `qlora train`), the fine-tuned model merged into one GGUF and
// the adapter alone as a GGUF LoRA adapter (llama-cli -m base.gguf --lora adapter.gguf).
//   npx tsx examples/export-to-llama-cpp.ts [RUN_DIR] [OUT_DIR]
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { demoModelPath, exportModel } from 'qlora-ts';

const runDir = process.argv[2];
const outDir = process.argv[3] ?? 'gguf';
mkdirSync(outDir, { recursive: true });

const base = exportModel(demoModelPath(), { format: 'gguf', dtype: 'q8_0', out: join(outDir, 'demo-q8_0.gguf'), overwrite: true });
console.log(`base model: ${base.out} (${base.tensorTypes.length} tensors)`);
if (runDir !== undefined) {
  const merged = exportModel(runDir, { format: 'gguf', dtype: 'f16', out: join(outDir, 'merged-f16.gguf'), overwrite: true });
  console.log(`merged model: ${merged.out}`);
  const adapter = exportModel(runDir, { format: 'gguf-adapter', out: join(outDir, 'adapter.gguf'), overwrite: true });
  console.log(`adapter: ${adapter.out}`);
}
console.log(`run it: llama-cli -m ${join(outDir, 'demo-q8_0.gguf')} -p "Once upon a time,"`);
