// Causal-LM cross-entropy with the Hugging Face label shift (golden/README.md "Loss / label
// shift"): position t of each row predicts label t+1; the last position of each row and labels
// equal to IGNORE_INDEX count nothing; the loss is the MEAN over counted positions (as
// `model(input_ids, labels=labels).loss`), natural log.
// Not here: the logits themselves (model/), loss masks of a dataset (train/ builds `labels`).
import type { Kernels } from '../kernels/kernels.js';

/** torch.nn.CrossEntropyLoss's default ignore_index, used by Hugging Face for masked labels. */
export const IGNORE_INDEX = -100;

/** targets[b*T + t] = labels[b*T + t + 1] for t < T-1, IGNORE_INDEX for t = T-1. */
export function shiftLabels(labels: Int32Array, B: number, T: number): Int32Array {
  const targets = new Int32Array(B * T).fill(IGNORE_INDEX);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < T; t++) targets[b * T + t] = labels[b * T + t + 1];
  }
  return targets;
}

export interface LossResult {
  /** Mean loss over counted positions (NaN when none counts). */
  readonly loss: number;
  /** Sum of per-position losses (the NLL in nats). */
  readonly sum: number;
  /** Counted positions. */
  readonly count: number;
}

/** Loss of logits[N,V] against already-shifted targets[N]; losses[N] gets per-row values. */
export function crossEntropyForward(k: Kernels, losses: Float32Array, logits: Float32Array, targets: Int32Array, N: number, V: number): LossResult {
  const { sum, count } = k.crossEntropyForward(losses, logits, targets, N, V, IGNORE_INDEX);
  return { loss: count > 0 ? sum / count : Number.NaN, sum, count };
}

/**
 * dlogits[N,V] = lossScale/count · (softmax − onehot) (overwrites; zero rows for ignored targets).
 * `count` is the number of counted positions over the whole batch, so this is d(mean loss).
 */
export function crossEntropyBackward(k: Kernels, dlogits: Float32Array, logits: Float32Array, targets: Int32Array, N: number, V: number, count: number, lossScale = 1): void {
  k.crossEntropyBackward(dlogits, logits, targets, N, V, IGNORE_INDEX, count > 0 ? lossScale / count : 0);
}
