// Reference optimiser kernels: gradient sum of squares (for global-norm clipping), in-place
// scaling, and one torch.optim.AdamW step (fixtures/golden/README.md).
//
// Clipping (done by the trainer with these kernels, torch's clip_grad_norm_):
//   norm = sqrt(Σ over all tensors sumSquares(g));  coef = min(1, maxNorm / (norm + 1e-6));  scale(g, coef)
// AdamW, t = 1-based step, torch's single-tensor path (torch/optim/adamw.py):
//   p *= 1 − lr·wd
//   m  = m + (1 − β1)(g − m)         (torch: exp_avg.lerp_(grad, 1 − β1))
//   v  = β2 v + (1 − β2) g²
//   p −= (lr / (1 − β1ᵗ)) · m / (sqrt(v) / sqrt(1 − β2ᵗ) + eps)   (eps AFTER the bias correction)

export function sumSquaresRef(x: Float32Array, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += x[i] * x[i];
  return s;
}

export function scaleRef(x: Float32Array, n: number, s: number): void {
  for (let i = 0; i < n; i++) x[i] *= s;
}

export function adamwStepRef(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, n: number, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, t: number): void {
  const decay = 1 - lr * weightDecay;
  const stepSize = lr / (1 - Math.pow(beta1, t));
  const bc2Sqrt = Math.sqrt(1 - Math.pow(beta2, t));
  for (let i = 0; i < n; i++) {
    const gi = g[i];
    m[i] += (1 - beta1) * (gi - m[i]);
    v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
    p[i] *= decay;
    p[i] -= (stepSize * m[i]) / (Math.sqrt(v[i]) / bc2Sqrt + eps);
  }
}
