// Reference RMSNorm (Llama, FORMATS.md §5.3), forward and backward over x[T,C].
//
// forward:  r_t = 1 / sqrt(mean_c(x[t,c]²) + eps)          (rstd cache [T])
//           y[t,c] = f32(x[t,c] · r_t) · w[c]               (HF: normalise, cast, then scale)
// backward: dw[c]   += Σ_t dy[t,c] · x[t,c] · r_t
//           dx[t,c] += r_t · w[c] · dy[t,c] − r_t³ · x[t,c] / C · Σ_c' dy[t,c'] · w[c'] · x[t,c']
// The mean is accumulated in f64 here; the fast kernel's f32 lanes stay within the spec tolerance.

export function rmsnormForwardRef(out: Float32Array, rstd: Float32Array, x: Float32Array, weight: Float32Array, T: number, C: number, eps: number): void {
  for (let t = 0; t < T; t++) {
    const o = t * C;
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[o + c] * x[o + c];
    const r = Math.fround(1 / Math.sqrt(Math.fround(ss / C) + eps));
    rstd[t] = r;
    for (let c = 0; c < C; c++) out[o + c] = Math.fround(x[o + c] * r) * weight[c];
  }
}

export function rmsnormBackwardRef(dx: Float32Array, dweight: Float32Array | null, dout: Float32Array, x: Float32Array, weight: Float32Array, rstd: Float32Array, T: number, C: number): void {
  const dw = new Float64Array(C); // summed over rows in f64, added to dweight once
  for (let t = 0; t < T; t++) {
    const o = t * C;
    const r = rstd[t];
    let dot = 0; // Σ_c dy·w·x
    for (let c = 0; c < C; c++) dot += dout[o + c] * weight[c] * x[o + c];
    const k = (r * r * r * dot) / C;
    for (let c = 0; c < C; c++) dx[o + c] += r * weight[c] * dout[o + c] - k * x[o + c];
    for (let c = 0; c < C; c++) dw[c] += dout[o + c] * x[o + c] * r;
  }
  if (dweight !== null) for (let c = 0; c < C; c++) dweight[c] += dw[c];
}
