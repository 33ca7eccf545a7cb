// Learning-rate schedules with Hugging Face transformers semantics (src/transformers/optimization.py:
// get_constant_schedule_with_warmup, get_linear_schedule_with_warmup, get_cosine_schedule_with_warmup
// with num_cycles = 0.5). Not the optimiser itself (optim.ts).
//
// HF wraps these lambdas in torch's LambdaLR, which sets lr = base_lr · λ(0) at construction and
// λ(k) after the k-th scheduler.step(). The Trainer calls optimizer.step() then scheduler.step(), so
// the optimiser step with 0-based index step0 uses λ(step0): with warmup the very first update has
// lr 0 (λ(0) = 0/warmup). We follow that exactly, including the wasted first step.

import { ConfigError } from '../errors.js';

export type ScheduleKind = 'constant' | 'linear' | 'cosine';

export interface ScheduleOptions {
  lr: number;
  schedule: ScheduleKind;
  warmupSteps: number;
  totalSteps: number;
}

const SCHEDULES: readonly ScheduleKind[] = ['constant', 'linear', 'cosine'];

/** Throws ConfigError naming the offending option. */
export function validateSchedule(o: ScheduleOptions): void {
  if (!SCHEDULES.includes(o.schedule)) {
    throw new ConfigError('unknown learning-rate schedule', { field: 'schedule', expected: SCHEDULES.join(' | '), got: String(o.schedule) });
  }
  if (!(Number.isFinite(o.lr) && o.lr > 0)) throw new ConfigError('the learning rate must be a finite number > 0', { field: 'lr', got: String(o.lr) });
  if (!(Number.isSafeInteger(o.warmupSteps) && o.warmupSteps >= 0)) {
    throw new ConfigError('warmup steps must be a whole number >= 0', { field: 'warmupSteps', got: String(o.warmupSteps) });
  }
  if (o.schedule !== 'constant' && !(Number.isSafeInteger(o.totalSteps) && o.totalSteps >= 1)) {
    throw new ConfigError(`the ${o.schedule} schedule needs the total number of steps (a whole number >= 1)`, { field: 'totalSteps', got: String(o.totalSteps) });
  }
}

/** The multiplier λ(step) of HF's schedule lambdas. */
function lambda(step: number, o: ScheduleOptions): number {
  const w = o.warmupSteps;
  if (step < w) return step / Math.max(1, w);
  switch (o.schedule) {
    case 'constant':
      return 1;
    case 'linear':
      return Math.max(0, (o.totalSteps - step) / Math.max(1, o.totalSteps - w));
    case 'cosine': {
      const progress = (step - w) / Math.max(1, o.totalSteps - w);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 0.5 * 2 * progress)));
    }
  }
}

/** Learning rate of the optimiser step with 0-based index `step0` (see the file header). */
export function learningRate(step0: number, o: ScheduleOptions): number {
  validateSchedule(o);
  if (!(Number.isSafeInteger(step0) && step0 >= 0)) throw new ConfigError('the step index must be a whole number >= 0', { field: 'step', got: String(step0) });
  return o.lr * lambda(step0, o);
}
