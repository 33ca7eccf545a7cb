// LR schedules against values hand-computed from transformers' optimization.py lambdas (LambdaLR:
// optimiser step k uses λ(k), so warmup starts at lr 0), and option validation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { learningRate, type ScheduleOptions } from '../../src/train/schedule.js';

const close = (got: number, want: number): void => assert.ok(Math.abs(got - want) < 1e-15, `${got} vs ${want}`);

test('linear with warmup: 0, half, peak, halfway down, 0 at and past the end', () => {
  const o: ScheduleOptions = { lr: 1e-3, schedule: 'linear', warmupSteps: 2, totalSteps: 10 };
  const want: [number, number][] = [[0, 0], [1, 5e-4], [2, 1e-3], [3, 8.75e-4], [6, 5e-4], [9, 1.25e-4], [10, 0], [12, 0]];
  for (const [s, lr] of want) close(learningRate(s, o), lr);
});

test('cosine with warmup (num_cycles 0.5)', () => {
  const o: ScheduleOptions = { lr: 2e-4, schedule: 'cosine', warmupSteps: 2, totalSteps: 10 };
  close(learningRate(0, o), 0);
  close(learningRate(1, o), 1e-4);
  close(learningRate(2, o), 2e-4);
  close(learningRate(4, o), 2e-4 * 0.5 * (1 + Math.SQRT1_2));
  close(learningRate(6, o), 1e-4);
  close(learningRate(10, o), 0);
  // past the end HF's cosine rises again (no clamp to the last step); we follow it
  close(learningRate(11, o), 2e-4 * 0.5 * (1 + Math.cos((Math.PI * 9) / 8)));
});

test('constant: warmup ramp then flat; no warmup means full lr from step 0', () => {
  const o: ScheduleOptions = { lr: 0.01, schedule: 'constant', warmupSteps: 4, totalSteps: 0 };
  close(learningRate(0, o), 0);
  close(learningRate(1, o), 0.0025);
  close(learningRate(4, o), 0.01);
  close(learningRate(1000, o), 0.01);
  close(learningRate(0, { ...o, warmupSteps: 0 }), 0.01);
  close(learningRate(0, { lr: 0.01, schedule: 'linear', warmupSteps: 0, totalSteps: 4 }), 0.01);
  close(learningRate(3, { lr: 0.01, schedule: 'linear', warmupSteps: 0, totalSteps: 4 }), 0.0025);
});

test('bad options are ConfigErrors naming the field', () => {
  const base: ScheduleOptions = { lr: 1e-3, schedule: 'linear', warmupSteps: 0, totalSteps: 10 };
  assert.throws(() => learningRate(0, { ...base, lr: 0 }), { name: 'ConfigError', message: /field lr/ });
  assert.throws(() => learningRate(0, { ...base, lr: Number.NaN }), { name: 'ConfigError', message: /field lr/ });
  assert.throws(() => learningRate(0, { ...base, warmupSteps: -1 }), { name: 'ConfigError', message: /field warmupSteps/ });
  assert.throws(() => learningRate(0, { ...base, warmupSteps: 1.5 }), { name: 'ConfigError', message: /field warmupSteps/ });
  assert.throws(() => learningRate(0, { ...base, totalSteps: 0 }), { name: 'ConfigError', message: /field totalSteps/ });
  assert.throws(() => learningRate(0, { ...base, schedule: 'cosine', totalSteps: 0 }), { name: 'ConfigError', message: /field totalSteps/ });
  assert.throws(() => learningRate(0, { ...base, schedule: 'step' as ScheduleOptions['schedule'] }), { name: 'ConfigError', message: /field schedule/ });
  assert.throws(() => learningRate(-1, base), { name: 'ConfigError', message: /field step/ });
});
