// `npm run demo:make`: makes the embedded demo (assets/demo) from nothing but this repository.
//   1. writes the base stories (stories.ts, seed 1) and the fine-tuning set (Pip stories, seed 2);
//   2. trains a 512-piece BPE tokenizer on the base stories (bpe-train.ts);
//   3. writes a randomly initialised tiny Llama (normal(0, 0.02) weights, unit norms, tied
//      embeddings) as a Hugging Face folder;
//   4. trains every weight of it on the base stories with qlora-ts's own full-parameter training;
//   5. copies the trained folder to assets/demo/model and the fine-tuning set to assets/demo/data.
// Deterministic for a given thread count (`--threads`, default 2): same seeds, same data order.
// Options: --steps N (default 2000), --threads N, --out DIR (default assets/demo).
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeSafetensors, type TensorToWrite } from '../../src/formats/safetensors-write.js';
import { createKernels } from '../../src/kernels/index.js';
import { train } from '../../src/train/trainer.js';
import { trainBpeTokenizer } from './bpe-train.js';
import { baseStory, pipStory, stories, StoryRng } from './stories.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The demo model's shape: 853,120 parameters, 3.4 MB in f32. */
export const DEMO_CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 128,
  intermediate_size: 384,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 32,
  vocab_size: 512,
  max_position_embeddings: 256,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  rope_scaling: null,
  hidden_act: 'silu',
  tie_word_embeddings: true,
  attention_bias: false,
  attention_dropout: 0.0,
  mlp_bias: false,
  initializer_range: 0.02,
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: null,
  torch_dtype: 'float32',
  _name_or_path: 'qlora-ts-demo-stories',
} as const;

export const BASE_STORIES = 40000;
export const BASE_SEED = 1;
export const PIP_STORIES = 400;
export const PIP_SEED = 2;

/** Box-Muller normal(0, std) values from the story PRNG. */
function normal(rng: StoryRng, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(rng.next(), 1e-12);
    const v = rng.next();
    const r = std * Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

function tensor(name: string, shape: number[], data: Float32Array): TensorToWrite {
  return { name, dtype: 'F32', shape, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** A freshly initialised model folder (config, weights, tokenizer) in `dir`. */
export function writeInitialModel(dir: string, tokenizer: ReturnType<typeof trainBpeTokenizer>, seed: number): void {
  const c = DEMO_CONFIG;
  const rng = new StoryRng(seed);
  const std = c.initializer_range;
  const C = c.hidden_size;
  const kv = c.num_key_value_heads * c.head_dim;
  const q = c.num_attention_heads * c.head_dim;
  const F = c.intermediate_size;
  const tensors: TensorToWrite[] = [tensor('model.embed_tokens.weight', [c.vocab_size, C], normal(rng, c.vocab_size * C, std))];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    const linear = (name: string, out: number, inp: number): TensorToWrite => tensor(`${p}.${name}.weight`, [out, inp], normal(rng, out * inp, std));
    tensors.push(
      linear('self_attn.q_proj', q, C), linear('self_attn.k_proj', kv, C), linear('self_attn.v_proj', kv, C), linear('self_attn.o_proj', C, q),
      linear('mlp.gate_proj', F, C), linear('mlp.up_proj', F, C), linear('mlp.down_proj', C, F),
      tensor(`${p}.input_layernorm.weight`, [C], new Float32Array(C).fill(1)),
      tensor(`${p}.post_attention_layernorm.weight`, [C], new Float32Array(C).fill(1)),
    );
  }
  tensors.push(tensor('model.norm.weight', [C], new Float32Array(C).fill(1)));
  mkdirSync(dir, { recursive: true });
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(c, null, 2)}\n`);
  writeFileSync(join(dir, 'generation_config.json'), `${JSON.stringify({ bos_token_id: 1, eos_token_id: 2, do_sample: true, temperature: 0.8, top_p: 0.95, max_length: c.max_position_embeddings }, null, 2)}\n`);
  writeFileSync(join(dir, 'tokenizer.json'), `${JSON.stringify(tokenizer.tokenizerJson)}\n`);
  writeFileSync(join(dir, 'tokenizer_config.json'), `${JSON.stringify(tokenizer.tokenizerConfig, null, 2)}\n`);
}

/** JSONL of {"text"} rows, one per story. */
export function jsonl(texts: readonly string[]): string {
  return texts.map((text) => `${JSON.stringify({ text })}\n`).join('');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { steps: { type: 'string', default: '2000' }, threads: { type: 'string', default: '2' }, out: { type: 'string', default: join(ROOT, 'assets', 'demo') } } });
  const steps = Number(values.steps);
  const threads = Number(values.threads);
  const out = resolve(values.out);
  const work = mkdtempSync(join(tmpdir(), 'qlora-demo-make-'));
  try {
    const base = stories(baseStory, BASE_STORIES, BASE_SEED);
    const pip = stories(pipStory, PIP_STORIES, PIP_SEED);
    writeFileSync(join(work, 'base.jsonl'), jsonl(base));
    const tokenizer = trainBpeTokenizer(base.join('\n'), DEMO_CONFIG.vocab_size, DEMO_CONFIG.max_position_embeddings);
    const init = join(work, 'init');
    writeInitialModel(init, tokenizer, 3);
    const kernels = await createKernels({ backend: 'wasm', threads });
    const started = Date.now();
    try {
      const result = await train({
        config: {
          model: init, data: join(work, 'base.jsonl'), full: true, seqLen: 256, packing: true, batchSize: 8, maxSteps: steps,
          lr: 3e-3, schedule: 'cosine', warmupSteps: Math.round(steps * 0.03), weightDecay: 0.01, maxGradNorm: 1, evalSplit: 200, evalEvery: 250, saveEvery: 500, seed: 7,
        },
        out: join(work, 'run'), kernels,
        onEvent: (e) => {
          if (e.kind === 'step' && (e.step % 50 === 0 || e.step === e.totalSteps)) process.stderr.write(`step ${e.step}/${e.totalSteps} loss ${e.loss.toFixed(4)} ${Math.round(e.tokensPerS)} tok/s ETA ${Math.round(e.etaS)}s\n`);
          else if (e.kind === 'eval') process.stderr.write(`eval at step ${e.step}: loss ${e.loss.toFixed(4)}\n`);
        },
      });
      process.stderr.write(`trained ${result.steps} steps in ${((Date.now() - started) / 1000).toFixed(0)} s: loss ${result.finalLoss.toFixed(4)}, eval ${result.finalEval?.loss.toFixed(4)}\n`);
      const model = join(out, 'model');
      mkdirSync(model, { recursive: true });
      for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']) copyFileSync(join(result.output, f), join(model, f));
      copyFileSync(join(work, 'run', 'loss.svg'), join(out, 'pretrain-loss.svg'));
      mkdirSync(join(out, 'data'), { recursive: true });
      writeFileSync(join(out, 'data', 'pip-stories.jsonl'), jsonl(pip));
      process.stderr.write(`wrote ${model} (${(statSync(join(model, 'model.safetensors')).size / 1e6).toFixed(2)} MB weights) and ${join(out, 'data', 'pip-stories.jsonl')}\n`);
    } finally {
      await kernels.dispose();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
