// Reference embedding lookup and its backward (a scatter-add), over table[V, C] and ids[T].
//   forward:  out[t,:] = table[ids[t], :]
//   backward: dtable[ids[t], :] += dout[t, :]   (repeated ids accumulate)
// Ids are range-checked by the caller (RefKernels) before either runs.

export function embeddingForwardRef(out: Float32Array, table: Float32Array, ids: Int32Array, T: number, C: number): void {
  for (let t = 0; t < T; t++) out.set(table.subarray(ids[t] * C, ids[t] * C + C), t * C);
}

export function embeddingBackwardRef(dtable: Float32Array, dout: Float32Array, ids: Int32Array, T: number, C: number): void {
  for (let t = 0; t < T; t++) {
    const o = ids[t] * C;
    for (let c = 0; c < C; c++) dtable[o + c] += dout[t * C + c];
  }
}
