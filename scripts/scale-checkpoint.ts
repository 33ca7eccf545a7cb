// Synthetic checkpoints with the exact shapes of Llama-2-7B / 13B (f16 safetensors, sharded with
// model.safetensors.index.json as the real ones, config.json), random values, for the `scale`
// benchmark (bench/suites/scale.ts). Generated on demand into a temp folder and deleted after;
// never committed. Values: random sign and mantissa with the exponent drawn from 2^-8..2^-5
// (|w| ~ 0.004..0.06, finite, roughly a trained model's weight scale), written tensor by tensor.
// Run alone: node dist/scripts/scale-checkpoint.js OUT_DIR [llama2-7b|llama2-13b]

import { randomFillSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { resolveModelConfig } from '../src/formats/hf-config.js';
import { writeShardedSafetensors, type TensorToWrite } from '../src/formats/safetensors.js';
import { expectedTensors } from '../src/model/build.js';

export type ScaleShape = 'llama2-7b' | 'llama2-13b';

/** config.json of the Hugging Face Llama-2 checkpoints (meta-llama/Llama-2-{7,13}b-hf), the fields that set shapes. */
export const SCALE_CONFIGS: Readonly<Record<ScaleShape, Record<string, unknown>>> = {
  'llama2-7b': { hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32 },
  'llama2-13b': { hidden_size: 5120, intermediate_size: 13824, num_hidden_layers: 40, num_attention_heads: 40, num_key_value_heads: 40 },
};

/** The real checkpoints were saved with max_shard_size 10GB (7B: 2 shards, 13B: 3). */
const SHARD_BYTES = 10_000_000_000;

export function scaleConfigJson(shape: ScaleShape): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_act: 'silu', vocab_size: 32000, max_position_embeddings: 4096,
    rms_norm_eps: 1e-5, rope_theta: 10000.0, tie_word_embeddings: false, torch_dtype: 'float16', bos_token_id: 1, eos_token_id: 2,
    ...SCALE_CONFIGS[shape],
  };
}

/** Random finite f16 values, two per 32-bit word: exponent field 7..10 per half, random sign and mantissa. */
function randomF16Bytes(elements: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(elements / 2));
  randomFillSync(words);
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    words[i] = (w & 0x83ff83ff) | ((((w >>> 10) & 3) + 7) << 10) | ((((w >>> 26) & 3) + 7) << 26);
  }
  return new Uint8Array(words.buffer, 0, elements * 2);
}

export interface GeneratedCheckpoint {
  readonly dir: string;
  readonly bytes: number;
  readonly params: number;
  readonly seconds: number;
}

/** Writes the checkpoint into `dir` (created if missing). */
export function generateScaleCheckpoint(dir: string, shape: ScaleShape): GeneratedCheckpoint {
  const t0 = performance.now();
  mkdirSync(dir, { recursive: true });
  const raw = scaleConfigJson(shape);
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(raw, null, 2)}\n`);
  let params = 0;
  const tensors: TensorToWrite[] = expectedTensors(resolveModelConfig(raw)).map(({ name, shape: dims }) => {
    const n = dims.reduce((a, b) => a * b, 1);
    params += n;
    return { name, dtype: 'F16', shape: dims, data: () => randomF16Bytes(n) };
  });
  writeShardedSafetensors(dir, tensors, { maxShardBytes: SHARD_BYTES, metadata: { format: 'pt' } });
  return { dir, bytes: params * 2, params, seconds: (performance.now() - t0) / 1000 };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const out = process.argv[2];
  const shape = (process.argv[3] ?? 'llama2-7b') as ScaleShape;
  if (out === undefined || !(shape in SCALE_CONFIGS)) {
    console.error('usage: node dist/scripts/scale-checkpoint.js OUT_DIR [llama2-7b|llama2-13b]');
    process.exitCode = 2;
  } else {
    const g = generateScaleCheckpoint(out, shape);
    console.log(`${shape}: ${(g.params / 1e9).toFixed(2)}B params, ${(g.bytes / 1e9).toFixed(2)} GB f16 in ${g.dir} (${g.seconds.toFixed(0)} s)`);
  }
}
