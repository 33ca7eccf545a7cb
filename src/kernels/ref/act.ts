// Reference activations: SwiGLU's silu(gate)·up (FORMATS.md §5.3) and row-wise softmax.
//
// siluMul forward:  out = silu(g) · u,   silu(g) = g · σ(g),  σ(g) = 1 / (1 + e^−g)
//         backward: dg += dout · u · σ(g) · (1 + g · (1 − σ(g)))      (= silu'(g))
//                   du += dout · silu(g)
// softmax rows:     x[r,:] = e^(x − max) / Σ e^(x − max)  (max subtracted: no overflow)

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

export function siluMulForwardRef(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i];
    out[i] = g * sigmoid(g) * up[i];
  }
}

export function siluMulBackwardRef(dgate: Float32Array, dup: Float32Array, dout: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i];
    const sg = sigmoid(g);
    dgate[i] += dout[i] * up[i] * sg * (1 + g * (1 - sg));
    dup[i] += dout[i] * g * sg;
  }
}

/** Softmax in place over x[o .. o+n): f64 sums, f32 stores. */
export function softmaxInPlace(x: Float32Array, o: number, n: number): void {
  let max = -Infinity;
  for (let j = 0; j < n; j++) max = Math.max(max, x[o + j]);
  let sum = 0;
  for (let j = 0; j < n; j++) {
    const e = Math.exp(x[o + j] - max);
    x[o + j] = e;
    sum += e;
  }
  const inv = 1 / sum;
  for (let j = 0; j < n; j++) x[o + j] *= inv;
}

export function softmaxRowsRef(x: Float32Array, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) softmaxInPlace(x, r * cols, cols);
}
