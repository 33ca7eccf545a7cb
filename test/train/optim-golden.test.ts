// The golden 5-step LoRA training run (fixtures/golden/README.md "Training"): stories260K f32,
// RefKernels, the PEFT initial adapter, zero grads → forwardBackward → clip 1.0 → AdamW, against
// torch's train.loss, train.grad_norm and train.final.* with the README's tolerances.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { openCheckpoint, type TensorSource } from '../../src/formats/safetensors.js';
import { RefKernels } from '../../src/kernels/ref/index.js';
import type { LlamaModel } from '../../src/model/llama.js';
import { loadModel } from '../../src/model/load.js';
import { AdamW, clipGradNorm, type TrainableParam } from '../../src/train/optim.js';
import { fixture } from '../helpers/shared.js';

const PEFT_PREFIX = 'base_model.model.';
const LOSS_TOLERANCE = 5e-5;
const GRAD_NORM_TOLERANCE = 5e-4;
const FINAL_MAX_TOLERANCE = 1e-3;
const FINAL_ELEMENT_TOLERANCE = 1e-4;

interface GoldenOptimizer {
  lr: number;
  betas: [number, number];
  eps: number;
  weight_decay: number;
  grad_clip: { max_norm: number };
}

const kernels = new RefKernels();
let model: LlamaModel;
let golden: TensorSource;
let params: TrainableParam[];

before(async () => {
  model = await loadModel(fixture('models', 'stories260K'), { kernels, quant: 'none' });
  golden = openCheckpoint(fixture('golden', 'stories260K-lora', 'golden.safetensors'));
  const adapter = openCheckpoint(fixture('golden', 'stories260K-lora', 'adapter_model.safetensors'));
  const config = JSON.parse(readFileSync(fixture('golden', 'stories260K-lora', 'adapter_config.json'), 'utf8')) as { r: number; lora_alpha: number };
  params = [];
  for (const key of adapter.names()) {
    if (!key.endsWith('.lora_A.weight')) continue;
    const module = key.slice(PEFT_PREFIX.length, -'.lora_A.weight'.length);
    model.attachLora(module, adapter.readF32(key), adapter.readF32(key.replace('.lora_A.', '.lora_B.')), config.r, config.lora_alpha / config.r);
    const slot = model.linear(module).lora;
    assert.ok(slot !== null);
    params.push({ name: key, data: slot.A, grad: slot.dA, decay: true });
    params.push({ name: key.replace('.lora_A.', '.lora_B.'), data: slot.B, grad: slot.dB, decay: true });
  }
  adapter.close();
});
after(() => {
  golden.close();
  model.dispose();
});

test('5 AdamW steps with global clipping reproduce torch: losses, grad norms, final adapter', (t) => {
  const o = (JSON.parse(readFileSync(fixture('golden', 'stories260K-lora', 'golden.json'), 'utf8')) as { optimizer: GoldenOptimizer }).optimizer;
  const ids = Int32Array.from(golden.readF32('input_ids'));
  const wantLoss = golden.readF32('train.loss');
  const wantNorm = golden.readF32('train.grad_norm');
  assert.equal(params.length, 70);
  const opt = new AdamW(kernels, params, { lr: o.lr, beta1: o.betas[0], beta2: o.betas[1], eps: o.eps, weightDecay: o.weight_decay });
  for (let step = 0; step < wantNorm.length; step++) {
    for (const p of params) p.grad.fill(0);
    const { loss } = model.forwardBackward(ids, 2, 32);
    assert.ok(Math.abs(loss - wantLoss[step]) < LOSS_TOLERANCE, `step ${step} loss ${loss} vs ${wantLoss[step]}`);
    const norm = clipGradNorm(kernels, params, o.grad_clip.max_norm);
    assert.ok(Math.abs(norm - wantNorm[step]) < GRAD_NORM_TOLERANCE, `step ${step} grad norm ${norm} vs ${wantNorm[step]}`);
    opt.step(o.lr);
  }
  for (const p of params) p.grad.fill(0);
  const { loss: last } = model.forwardBackward(ids, 2, 32);
  assert.ok(Math.abs(last - wantLoss[wantNorm.length]) < LOSS_TOLERANCE, `final loss ${last} vs ${wantLoss[wantNorm.length]}`);
  let worst = 0;
  let outside = 0;
  let total = 0;
  for (const p of params) {
    const want = golden.readF32(`train.final.${p.name}`);
    assert.equal(want.length, p.data.length);
    for (let i = 0; i < want.length; i++) {
      const d = Math.abs(p.data[i] - want[i]);
      worst = Math.max(worst, d);
      if (d > FINAL_ELEMENT_TOLERANCE) outside++;
    }
    total += want.length;
  }
  assert.ok(worst < FINAL_MAX_TOLERANCE, `final adapter max |diff| ${worst}`);
  assert.ok(outside <= total * 0.001, `${outside} of ${total} elements differ by more than ${FINAL_ELEMENT_TOLERANCE}`);
  t.diagnostic(`golden AdamW: final adapter max |diff| ${worst.toExponential(2)}, ${outside}/${total} > 1e-4`);
});
