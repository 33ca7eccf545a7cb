// Batches of a tokenized dataset: a seeded train/held-out split, an endless shuffled iterator
// with a JSON-serializable cursor (for resume), and in-order evaluation batches. Padding is on the
// right with labels -100, so causal attention needs no mask (src/model/llama.ts header); T of a
// batch is its longest example. Order comes from xoshiro128** (model/sampling.ts Rng), integer
// and IEEE arithmetic only, so a seed gives the same order on every machine.
// Not here: reading or tokenizing files (train/data.ts).

import { ConfigError } from '../errors.js';
import { Rng } from '../model/sampling.js';
import { IGNORE_LABEL, withExamples, type TokenizedDataset, type TrainExample } from './data.js';

export interface Batch {
  readonly ids: Int32Array;
  readonly labels: Int32Array;
  readonly B: number;
  readonly T: number;
  /** Labels != -100 after the shift. */
  readonly tokens: number;
}

export interface BatchCursor {
  readonly epoch: number;
  readonly index: number;
}

const EPOCH_SEED_STRIDE = 0x9e3779b97f4a7c15n;

/** Fisher-Yates permutation of 0..n-1 from `rng`. */
function permutation(n: number, rng: Rng): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.nextFloat() * (i + 1));
    const t = p[i]; p[i] = p[j]; p[j] = t;
  }
  return p;
}

function seededRng(seed: number, stream: number): Rng {
  if (!Number.isSafeInteger(seed)) throw new ConfigError('the seed must be an integer', { field: 'seed', got: String(seed) });
  return Rng.fromSeed(BigInt.asUintN(64, BigInt(seed) + BigInt(stream) * EPOCH_SEED_STRIDE));
}

/** Deterministic split into train / held-out: evalFraction in (0, 1), or a count >= 1. */
export function splitDataset(ds: TokenizedDataset, evalFraction: number, seed: number): { train: TokenizedDataset; eval: TokenizedDataset } {
  const n = ds.examples.length;
  const isCount = evalFraction >= 1;
  if (!(evalFraction > 0) || (isCount && !Number.isInteger(evalFraction))) {
    throw new ConfigError('eval split must be a fraction in (0, 1) or a whole count', { field: 'evalFraction', got: String(evalFraction) });
  }
  const nEval = isCount ? evalFraction : Math.max(1, Math.round(evalFraction * n));
  if (nEval >= n) {
    throw new ConfigError('eval split leaves no training examples', { file: ds.file, field: 'evalFraction', got: `${nEval} of ${n} examples` });
  }
  // Stream -1 keeps the split's draw apart from the epoch orders of the same seed.
  const order = permutation(n, seededRng(seed, -1));
  const evalSet = new Set(order.slice(0, nEval));
  const train: TrainExample[] = [];
  const held: TrainExample[] = [];
  ds.examples.forEach((ex, i) => (evalSet.has(i) ? held : train).push(ex));
  return { train: withExamples(ds, train), eval: withExamples(ds, held) };
}

function makeBatch(examples: readonly TrainExample[], padId: number): Batch {
  const B = examples.length;
  const T = examples.reduce((m, e) => Math.max(m, e.ids.length), 0);
  const ids = new Int32Array(B * T).fill(padId);
  const labels = new Int32Array(B * T).fill(IGNORE_LABEL);
  let tokens = 0;
  examples.forEach((e, b) => {
    ids.set(e.ids, b * T);
    labels.set(e.labels, b * T);
    for (let t = 1; t < e.labels.length; t++) if (e.labels[t] !== IGNORE_LABEL) tokens++;
  });
  return { ids, labels, B, T, tokens };
}

function checkBatchSize(batchSize: number): void {
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new ConfigError('batch size must be a positive integer', { field: 'batchSize', got: String(batchSize) });
}

/** Endless batches, a new seeded order every epoch; the last batch of an epoch may be smaller. */
export class BatchIterator {
  readonly batchesPerEpoch: number;
  private epoch: number;
  private index: number;
  private order: number[] | null = null;
  private readonly shuffle: boolean;
  private readonly padId: number;

  constructor(private readonly ds: TokenizedDataset, private readonly batchSize: number, private readonly seed: number,
    opts: { shuffle?: boolean; padId?: number; cursor?: BatchCursor } = {}) {
    checkBatchSize(batchSize);
    if (ds.examples.length === 0) throw new ConfigError('dataset has no examples', { file: ds.file });
    seededRng(seed, 0);
    this.batchesPerEpoch = Math.ceil(ds.examples.length / batchSize);
    this.shuffle = opts.shuffle ?? true;
    this.padId = opts.padId ?? ds.padId;
    const c = opts.cursor ?? { epoch: 0, index: 0 };
    if (!Number.isSafeInteger(c.epoch) || c.epoch < 0 || !Number.isSafeInteger(c.index) || c.index < 0 || c.index >= this.batchesPerEpoch) {
      throw new ConfigError('batch cursor is out of range', { field: 'cursor', expected: `epoch >= 0, index < ${this.batchesPerEpoch}`, got: JSON.stringify(c) });
    }
    this.epoch = c.epoch;
    this.index = c.index;
  }

  private epochOrder(): number[] {
    if (this.order === null) {
      const n = this.ds.examples.length;
      this.order = this.shuffle ? permutation(n, seededRng(this.seed, this.epoch)) : Array.from({ length: n }, (_, i) => i);
    }
    return this.order;
  }

  next(): Batch {
    const order = this.epochOrder();
    const from = this.index * this.batchSize;
    const picked = order.slice(from, from + this.batchSize).map((i) => this.ds.examples[i]);
    this.index++;
    if (this.index >= this.batchesPerEpoch) {
      this.index = 0;
      this.epoch++;
      this.order = null;
    }
    return makeBatch(picked, this.padId);
  }

  cursor(): BatchCursor {
    return { epoch: this.epoch, index: this.index };
  }
}

/** Batches for evaluation, in order, no shuffling. */
export function evalBatches(ds: TokenizedDataset, batchSize: number, padId: number): Batch[] {
  checkBatchSize(batchSize);
  const out: Batch[] = [];
  for (let s = 0; s < ds.examples.length; s += batchSize) out.push(makeBatch(ds.examples.slice(s, s + batchSize), padId));
  return out;
}
