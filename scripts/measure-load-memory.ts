// Measures the peak resident memory of loadModel with streaming NF4 quantization, on a random
// Llama-shaped checkpoint written (f16, sharded) to a temp folder by this script. Prints the
// peak RSS (VmHWM) against the sizes it should be close to: the loaded model (4-bit projections
// + f32 embeddings/norms/lm_head) plus the largest single tensor in f32.
// Run: node --import tsx scripts/measure-load-memory.ts [hidden] [layers] [vocab] [ref|wasm]
// (a child process does the load, so the writer's memory does not count).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { f32ToF16Bits } from '../src/formats/dtype.js';
import { writeShardedSafetensors, type TensorToWrite } from '../src/formats/safetensors.js';
import { resolveModelConfig } from '../src/formats/hf-config.js';
import { expectedTensors } from '../src/model/build.js';

const MB = 1024 * 1024;

function peakRssMb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m === null ? process.memoryUsage().rss / MB : Number(m[1]) / 1024;
}

async function child(dir: string, backend: 'ref' | 'wasm'): Promise<void> {
  const { createKernels } = await import('../src/kernels/index.js');
  const { loadModel } = await import('../src/model/load.js');
  const kernels = await createKernels({ backend });
  const before = peakRssMb();
  const model = await loadModel(dir, { kernels });
  let q4 = 0;
  let f32 = 0;
  for (const lin of model.linears()) if (lin.weight.kind === 'q4') q4 += lin.weight.q.packed.length + (lin.weight.q.dq?.codes.length ?? 0) + 4 * (lin.weight.q.absmax?.length ?? 0);
  f32 += model.weights.embed.length * 4;
  if (model.weights.lmHead.weight.kind === 'f32' && model.weights.lmHead.weight.data !== model.weights.embed) f32 += model.weights.lmHead.weight.data.length * 4;
  process.stdout.write(JSON.stringify({ baselinePeakMb: before, peakMb: peakRssMb(), q4Mb: q4 / MB, f32Mb: f32 / MB }) + '\n');
  model.dispose();
  await kernels.dispose();
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return child(process.argv[3], process.argv[4] === 'wasm' ? 'wasm' : 'ref');
  const [hidden, layers, vocab] = [Number(process.argv[2] ?? 1024), Number(process.argv[3] ?? 8), Number(process.argv[4] ?? 32000)];
  const backend = process.argv[5] === 'wasm' ? 'wasm' : 'ref';
  const raw = {
    model_type: 'llama', architectures: ['LlamaForCausalLM'], vocab_size: vocab, hidden_size: hidden, intermediate_size: Math.round((hidden * 8) / 3 / 64) * 64,
    num_hidden_layers: layers, num_attention_heads: hidden / 64, num_key_value_heads: hidden / 128, max_position_embeddings: 2048, rms_norm_eps: 1e-5, tie_word_embeddings: false,
  };
  const cfg = resolveModelConfig(raw);
  const dir = mkdtempSync(join(tmpdir(), 'qlora-rss-'));
  try {
    writeFileSync(join(dir, 'config.json'), JSON.stringify(raw));
    let seed = 1;
    let largest = 0;
    let total = 0;
    const tensors: TensorToWrite[] = expectedTensors(cfg).map(({ name, shape }) => {
      const n = shape.reduce((a, b) => a * b, 1);
      largest = Math.max(largest, n * 4);
      total += n * 2;
      return {
        name, dtype: 'F16', shape, data: () => {
          const out = new Uint16Array(n);
          for (let i = 0; i < n; i++) {
            seed = (seed * 1103515245 + 12345) >>> 0;
            out[i] = f32ToF16Bits(((seed / 2 ** 32) - 0.5) * 0.1);
          }
          return new Uint8Array(out.buffer);
        },
      };
    });
    writeShardedSafetensors(dir, tensors, { maxShardBytes: 200 * MB });
    const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', dir, backend], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    const m = JSON.parse(r.stdout) as { baselinePeakMb: number; peakMb: number; q4Mb: number; f32Mb: number };
    const modelMb = m.q4Mb + m.f32Mb;
    process.stdout.write(`checkpoint: ${(total / MB).toFixed(0)} MiB f16 (${layers} layers, hidden ${hidden}, vocab ${vocab}), ${backend} kernels\n`);
    process.stdout.write(`loaded model: ${modelMb.toFixed(0)} MiB (4-bit ${m.q4Mb.toFixed(0)} + f32 ${m.f32Mb.toFixed(0)}), largest tensor in f32: ${(largest / MB).toFixed(0)} MiB\n`);
    process.stdout.write(`peak RSS: ${m.peakMb.toFixed(0)} MiB (process baseline before loading ${m.baselinePeakMb.toFixed(0)} MiB) → ` +
      `peak − baseline = ${(m.peakMb - m.baselinePeakMb).toFixed(0)} MiB vs model + largest = ${(modelMb + largest / MB).toFixed(0)} MiB\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
