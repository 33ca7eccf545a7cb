// Reference rotary embedding, Hugging Face rotate_half pairing (FORMATS.md §5.4), in place on
// x[T, stride] holding nHeads heads of D at column h·D. Row t uses table row p = positions[t] of
// cos/sin [maxPos, D/2] (any llama3/linear scaling already folded into the tables).
//
// forward (rotation by +φ):  a' = a·cos φ − b·sin φ,   b' = b·cos φ + a·sin φ    (a = x[i], b = x[i + D/2])
// inverse (rotation by −φ):  a' = a·cos φ + b·sin φ,   b' = b·cos φ − a·sin φ
// The rotation is orthogonal, so its backward is the inverse applied to the gradient.
// Not here: building the cos/sin tables (the model's RoPE setup does that).

export function ropeRef(x: Float32Array, positions: Int32Array, cos: Float32Array, sin: Float32Array, T: number, nHeads: number, D: number, inverse: boolean, stride: number): void {
  const half = D >> 1;
  const sign = inverse ? -1 : 1;
  for (let t = 0; t < T; t++) {
    const to = positions[t] * half;
    for (let h = 0; h < nHeads; h++) {
      const o = t * stride + h * D;
      for (let i = 0; i < half; i++) {
        const c = cos[to + i];
        const s = sign * sin[to + i];
        const a = x[o + i];
        const b = x[o + i + half];
        x[o + i] = a * c - b * s;
        x[o + i + half] = b * c + a * s;
      }
    }
  }
}
