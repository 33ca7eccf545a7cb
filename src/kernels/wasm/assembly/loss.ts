// Cross-entropy over rows [t0, t1) of logits[T, V] in SIMD128, forward and backward, with an
// ignore index. Twin of src/kernels/ref/loss.ts (math and the mean convention there). Each row
// is shifted by its max before exponentiating and summed in f64, so V of 150k and logits of
// any magnitude stay exact to f32 rounding. Targets are range-checked by the caller.

import { expShiftSum, rowMax, scaleRow } from './vmath';

/** losses[t] = max + log Σ e^(x − max) − x[target] (0 for ignored rows). */
export function crossEntropyForwardRows(losses: usize, logits: usize, targets: usize, t0: i32, t1: i32, V: i32, ignoreIndex: i32): void {
  for (let t = t0; t < t1; t++) {
    const y = load<i32>(targets + (<usize>t << 2));
    if (y == ignoreIndex) {
      store<f32>(losses + (<usize>t << 2), 0);
      continue;
    }
    const row = logits + (<usize>t * <usize>V << 2);
    const m = rowMax(row, V);
    const sum = expShiftSum(0, row, V, m, 1);
    store<f32>(losses + (<usize>t << 2), <f32>((<f64>m - <f64>load<f32>(row + (<usize>y << 2))) + Math.log(sum)));
  }
}

/** dlogits[t, :] = scale·(softmax − onehot(target)); zero rows for ignored targets (overwrites). */
export function crossEntropyBackwardRows(dlogits: usize, logits: usize, targets: usize, t0: i32, t1: i32, V: i32, ignoreIndex: i32, scale: f32): void {
  for (let t = t0; t < t1; t++) {
    const y = load<i32>(targets + (<usize>t << 2));
    const drow = dlogits + (<usize>t * <usize>V << 2);
    if (y == ignoreIndex) {
      memory.fill(drow, 0, <usize>V << 2);
      continue;
    }
    const row = logits + (<usize>t * <usize>V << 2);
    const m = rowMax(row, V);
    // One exp per logit: store e^(x − max) while summing, then scale the row by scale / Σ.
    const sum = expShiftSum(drow, row, V, m, 1);
    scaleRow(drow, V, <f32>(<f64>scale / sum));
    const at = drow + (<usize>y << 2);
    store<f32>(at, load<f32>(at) - scale);
  }
}
