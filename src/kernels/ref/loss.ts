// Reference cross-entropy over logits[T,V] (natural log) with an ignore index, forward and
// backward. The golden-fixture loss is the MEAN over counted rows (fixtures/golden/README.md):
// the caller divides `sum` by `count` and passes scale = 1/count to the backward.
//
// forward:  lse_t = m + log Σ_v e^(x[t,v] − m), m = max_v x[t,v];  loss_t = lse_t − x[t, y_t]
// backward: dx[t,v] = scale · (e^(x[t,v] − lse_t) − [v = y_t]);  0 for ignored rows (overwrites)
// Sums in f64: V is up to ~150k, where an f32 running sum would lose ~1e-3 relative.

function logSumExp(x: Float32Array, o: number, V: number): number {
  let max = -Infinity;
  for (let j = 0; j < V; j++) max = Math.max(max, x[o + j]);
  let sum = 0;
  for (let j = 0; j < V; j++) sum += Math.exp(x[o + j] - max);
  return max + Math.log(sum);
}

export function crossEntropyForwardRef(losses: Float32Array, logits: Float32Array, targets: Int32Array, T: number, V: number, ignoreIndex: number): { sum: number; count: number } {
  let sum = 0;
  let count = 0;
  for (let t = 0; t < T; t++) {
    if (targets[t] === ignoreIndex) {
      losses[t] = 0;
      continue;
    }
    const loss = logSumExp(logits, t * V, V) - logits[t * V + targets[t]];
    losses[t] = loss;
    sum += loss;
    count++;
  }
  return { sum, count };
}

export function crossEntropyBackwardRef(dlogits: Float32Array, logits: Float32Array, targets: Int32Array, T: number, V: number, ignoreIndex: number, scale: number): void {
  for (let t = 0; t < T; t++) {
    const o = t * V;
    if (targets[t] === ignoreIndex) {
      dlogits.fill(0, o, o + V);
      continue;
    }
    const lse = logSumExp(logits, o, V);
    for (let j = 0; j < V; j++) dlogits[o + j] = scale * Math.exp(logits[o + j] - lse);
    dlogits[o + targets[t]] -= scale;
  }
}
