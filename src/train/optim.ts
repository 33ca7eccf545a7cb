// AdamW over a list of trainable tensors, with float32 or 8-bit blockwise moment states, plus
// global-norm gradient clipping. Not the schedule (schedule.ts) nor the training loop (trainer.ts).
//
// 32-bit: torch.optim.AdamW's single-tensor path via Kernels.adamwStep (kernels/ref/optim.ts has
// the formula; t is 1-based and incremented before the update, as torch does).
// 8-bit: bitsandbytes' blockwise Adam8bit (bitsandbytes/optim/optimizer.py Optimizer2State with
// block_wise=True, csrc kOptimizerStatic8bit2StateBlockwise): exp_avg is stored as bytes of the
// signed dynamic map, exp_avg_sq of the unsigned one (functional.py create_dynamic_map), each block
// of 256 elements with its own absmax. Every step dequantizes, applies the same f32 update as the
// 32-bit path, and requantizes each block to the nearest code of state/absmax(new block). Tensors
// with fewer than 4096 elements (bnb's min_8bit_size) keep f32 states. Deliberate difference from
// bnb: the decoupled weight decay is applied before the Adam update (torch order) rather than
// after; with the usual wd·lr ≪ 1 the two differ by O((lr·wd)²).

import { ConfigError, FormatError, ShapeError } from '../errors.js';
import type { TensorSource, TensorToWrite } from '../formats/safetensors.js';
import type { Kernels } from '../kernels/kernels.js';
import { createDynamicMap, dequantizeBlockwise, quantizeBlockwise } from './dynamic-map.js';

export interface TrainableParam {
  readonly name: string;
  readonly data: Float32Array;
  readonly grad: Float32Array;
  /** false: no weight decay on this tensor. */
  readonly decay: boolean;
}

export type StateBits = '32bit' | '8bit';

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  states?: StateBits;
}

export interface StateTensor {
  dtype: 'F32' | 'U8';
  shape: number[];
  data: Float32Array | Uint8Array;
}

/** bitsandbytes' optimizer block size for blockwise 8-bit states. */
export const OPTIM_BLOCK_SIZE = 256;
/** bitsandbytes' min_8bit_size: smaller tensors keep float32 states. */
export const MIN_8BIT_SIZE = 4096;
/** Name of the step-counter tensor in stateTensors(). */
export const STEP_TENSOR = 'optimizer.step';

interface F32Moments {
  readonly kind: 'f32';
  readonly m: Float32Array;
  readonly v: Float32Array;
}
interface Q8Moments {
  readonly kind: 'q8';
  readonly m: Uint8Array;
  readonly v: Uint8Array;
  readonly mAbsmax: Float32Array;
  readonly vAbsmax: Float32Array;
}
type Moments = F32Moments | Q8Moments;

let signedMap: Float32Array | null = null;
let unsignedMap: Float32Array | null = null;

export class AdamW {
  private readonly kernels: Kernels;
  private readonly params: readonly TrainableParam[];
  private readonly moments: Moments[];
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly eps: number;
  private readonly weightDecay: number;
  private readonly scratchM: Float32Array;
  private readonly scratchV: Float32Array;
  private step_ = 0;

  constructor(kernels: Kernels, params: readonly TrainableParam[], opts: AdamWOptions) {
    this.kernels = kernels;
    this.params = params;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    checkHyper(opts.lr, 'lr', 0, Infinity, false);
    checkHyper(this.beta1, 'beta1', 0, 1, true);
    checkHyper(this.beta2, 'beta2', 0, 1, true);
    checkHyper(this.eps, 'eps', 0, Infinity, true);
    checkHyper(this.weightDecay, 'weightDecay', 0, Infinity, true);
    const eightBit = (opts.states ?? '32bit') === '8bit';
    const seen = new Set<string>();
    let largestQ8 = 0;
    this.moments = params.map((p) => {
      if (seen.has(p.name)) throw new ShapeError('two trainable tensors share a name', { field: p.name });
      seen.add(p.name);
      const n = p.data.length;
      if (p.grad.length !== n) throw new ShapeError('gradient and parameter sizes differ', { field: p.name, expected: `${n} elements`, got: String(p.grad.length) });
      if (!eightBit || n < MIN_8BIT_SIZE) return { kind: 'f32', m: new Float32Array(n), v: new Float32Array(n) };
      largestQ8 = Math.max(largestQ8, n);
      const blocks = Math.ceil(n / OPTIM_BLOCK_SIZE);
      // all-zero absmax dequantizes every code to 0: zero moments, as bnb starts
      return { kind: 'q8', m: new Uint8Array(n), v: new Uint8Array(n), mAbsmax: new Float32Array(blocks), vAbsmax: new Float32Array(blocks) };
    });
    this.scratchM = new Float32Array(largestQ8);
    this.scratchV = new Float32Array(largestQ8);
  }

  get t(): number {
    return this.step_;
  }

  /** One AdamW update of every parameter from its `grad`, with learning rate `lr`. */
  step(lr: number): void {
    checkHyper(lr, 'lr', 0, Infinity, true);
    const t = ++this.step_;
    const k = this.kernels;
    for (let i = 0; i < this.params.length; i++) {
      const p = this.params[i];
      const st = this.moments[i];
      const wd = p.decay ? this.weightDecay : 0;
      const n = p.data.length;
      if (st.kind === 'f32') {
        k.adamwStep(p.data, p.grad, st.m, st.v, n, lr, this.beta1, this.beta2, this.eps, wd, t);
        continue;
      }
      const m = this.scratchM.subarray(0, n);
      const v = this.scratchV.subarray(0, n);
      dequantizeBlockwise(st.m, st.mAbsmax, signedCode(), OPTIM_BLOCK_SIZE, m);
      dequantizeBlockwise(st.v, st.vAbsmax, unsignedCode(), OPTIM_BLOCK_SIZE, v);
      k.adamwStep(p.data, p.grad, m, v, n, lr, this.beta1, this.beta2, this.eps, wd, t);
      quantizeBlockwise(m, signedCode(), OPTIM_BLOCK_SIZE, st.m, st.mAbsmax);
      quantizeBlockwise(v, unsignedCode(), OPTIM_BLOCK_SIZE, st.v, st.vAbsmax);
    }
  }

  /**
   * Everything needed to resume bit-exactly: per parameter `<name>.exp_avg` / `<name>.exp_avg_sq`
   * (F32, or U8 codes plus `<name>.exp_avg.absmax` / `<name>.exp_avg_sq.absmax` for 8-bit states)
   * and the step counter `optimizer.step` (F32 [1], exact up to 2^24 steps). The arrays are live.
   */
  stateTensors(): Map<string, StateTensor> {
    const out = new Map<string, StateTensor>();
    out.set(STEP_TENSOR, { dtype: 'F32', shape: [1], data: Float32Array.of(this.step_) });
    for (let i = 0; i < this.params.length; i++) {
      for (const [name, t] of this.paramState(i)) out.set(name, t);
    }
    return out;
  }

  /** Restores stateTensors() from a map or a safetensors source; `file` names it in errors. */
  loadState(src: TensorSource | ReadonlyMap<string, StateTensor>, file: string): void {
    const read = (name: string, want: StateTensor): void => {
      const got = readStateTensor(src, name, file);
      if (got.dtype !== want.dtype || !sameShape(got.shape, want.shape)) {
        throw new ShapeError('optimizer state tensor does not match the trainable parameters', {
          file,
          field: name,
          expected: `${want.dtype} [${want.shape.join(', ')}]`,
          got: `${got.dtype} [${got.shape.join(', ')}]`,
          hint: 'resume with the same adapter settings and optimizer state bits',
        });
      }
      return void got.fill(want.data);
    };
    // validate everything before changing anything, so a failed load leaves the optimiser intact
    const plan: [string, StateTensor][] = [[STEP_TENSOR, { dtype: 'F32', shape: [1], data: new Float32Array(1) }]];
    for (let i = 0; i < this.params.length; i++) {
      for (const [name, t] of this.paramState(i)) plan.push([name, { dtype: t.dtype, shape: t.shape, data: t.dtype === 'F32' ? new Float32Array(t.data.length) : new Uint8Array(t.data.length) }]);
    }
    for (const [name, staged] of plan) read(name, staged);
    const step = plan[0][1].data[0];
    if (!(Number.isSafeInteger(step) && step >= 0)) throw new FormatError('optimizer step counter is not a whole number >= 0', { file, field: STEP_TENSOR, got: String(step) });
    const live = this.stateTensors();
    for (const [name, staged] of plan.slice(1)) live.get(name)?.data.set(staged.data);
    this.step_ = step;
  }

  /** Bytes held by the moment states (not the scratch buffers). */
  stateBytes(): number {
    let bytes = 0;
    for (const st of this.moments) {
      bytes += st.kind === 'f32' ? st.m.byteLength + st.v.byteLength : st.m.byteLength + st.v.byteLength + st.mAbsmax.byteLength + st.vAbsmax.byteLength;
    }
    return bytes;
  }

  dispose(): void {
    this.moments.length = 0;
  }

  private paramState(i: number): [string, StateTensor][] {
    const name = this.params[i].name;
    const st = this.moments[i];
    const n = this.params[i].data.length;
    if (st.kind === 'f32') {
      return [
        [`${name}.exp_avg`, { dtype: 'F32', shape: [n], data: st.m }],
        [`${name}.exp_avg_sq`, { dtype: 'F32', shape: [n], data: st.v }],
      ];
    }
    return [
      [`${name}.exp_avg`, { dtype: 'U8', shape: [n], data: st.m }],
      [`${name}.exp_avg.absmax`, { dtype: 'F32', shape: [st.mAbsmax.length], data: st.mAbsmax }],
      [`${name}.exp_avg_sq`, { dtype: 'U8', shape: [n], data: st.v }],
      [`${name}.exp_avg_sq.absmax`, { dtype: 'F32', shape: [st.vAbsmax.length], data: st.vAbsmax }],
    ];
  }
}

interface ReadTensor {
  dtype: string;
  shape: readonly number[];
  fill(out: Float32Array | Uint8Array): void;
}

function readStateTensor(src: TensorSource | ReadonlyMap<string, StateTensor>, name: string, file: string): ReadTensor {
  if (isStateMap(src)) {
    const t = src.get(name);
    if (t === undefined) throw new FormatError('optimizer state tensor is missing', { file, field: name });
    return { dtype: t.dtype, shape: t.shape, fill: (out) => out.set(t.data) };
  }
  if (!src.has(name)) throw new FormatError('optimizer state tensor is missing', { file, field: name });
  const e = src.entry(name);
  return {
    dtype: e.dtype,
    shape: e.shape,
    fill: (out) => {
      if (out instanceof Float32Array) src.readF32Into(name, out);
      else out.set(src.readBytes(name));
    },
  };
}

function isStateMap(src: TensorSource | ReadonlyMap<string, StateTensor>): src is ReadonlyMap<string, StateTensor> {
  return src instanceof Map;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function checkHyper(x: number, field: string, lo: number, hi: number, loInclusive: boolean): void {
  const ok = Number.isFinite(x) && (loInclusive ? x >= lo : x > lo) && (hi === Infinity || x < hi);
  if (!ok) throw new ConfigError('invalid optimizer hyper-parameter', { field, expected: `${loInclusive ? '>=' : '>'} ${lo}${hi === Infinity ? '' : ` and < ${hi}`}`, got: String(x) });
}

function signedCode(): Float32Array {
  return (signedMap ??= createDynamicMap(true));
}
function unsignedCode(): Float32Array {
  return (unsignedMap ??= createDynamicMap(false));
}

/** stateTensors() as safetensors writer input (little-endian views, no copies). */
export function stateTensorsToWrite(state: ReadonlyMap<string, StateTensor>): TensorToWrite[] {
  return [...state].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) }));
}

/** sqrt(Σ g²) over all gradients together (f64 across tensors). */
export function gradNorm(kernels: Kernels, params: readonly TrainableParam[]): number {
  let sum = 0;
  for (const p of params) sum += kernels.sumSquares(p.grad, p.grad.length);
  return Math.sqrt(sum);
}

/** torch.nn.utils.clip_grad_norm_: scales all grads by min(1, maxNorm/(norm+1e-6)); returns the pre-clip norm. */
export function clipGradNorm(kernels: Kernels, params: readonly TrainableParam[], maxNorm: number): number {
  checkHyper(maxNorm, 'maxNorm', 0, Infinity, false);
  const norm = gradNorm(kernels, params);
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) for (const p of params) kernels.scale(p.grad, p.grad.length, coef);
  return norm;
}
