// Reference causal multi-head attention with grouped-query heads (FORMATS.md §5.3), forward and
// backward, over a KV cache. Shapes (AttentionDims in kernels.ts):
//   q, out, dq  [Tq, H·D]         query head h at column h·D
//   k, v, dk, dv [Tk, kvStride]   kv head g at column g·D; query head h reads g = floor(h / (H/Hkv))
//   probs       [H, Tq, Tk]       softmax probabilities (training cache); 0 where masked
// Query row i sees key rows j with keyStart <= j <= i + qOffset (and j < Tk).
//
// forward:  s_j = (q_i · k_j) / sqrt(D);  p = softmax(s) over the visible j;  out_i = Σ_j p_j v_j
// backward: dp_j = dout_i · v_j;  ds_j = p_j (dp_j − Σ_j' p_j' dp_j')
//           dv_j += p_j dout_i;  dq_i += Σ_j ds_j k_j / sqrt(D);  dk_j += ds_j q_i / sqrt(D)
// A query row with no visible key (only possible with keyStart > i + qOffset) outputs zeros.

import type { AttentionDims } from '../kernels.js';

/** Resolved dims with defaults filled in, shared by both backends' argument checks. */
export interface AttentionGeometry {
  Tq: number; Tk: number; H: number; Hkv: number; D: number;
  qOffset: number; keyStart: number; kvStride: number; group: number; scale: number;
}

export function attentionGeometry(d: AttentionDims): AttentionGeometry {
  const kvStride = d.kvStride ?? d.Hkv * d.D;
  return {
    Tq: d.Tq, Tk: d.Tk, H: d.H, Hkv: d.Hkv, D: d.D, qOffset: d.qOffset, keyStart: d.keyStart ?? 0, kvStride,
    group: d.Hkv > 0 ? d.H / d.Hkv : 1, scale: 1 / Math.sqrt(d.D),
  };
}

/** Visible key range [j0, j1) of query row i. */
export function visibleKeys(g: AttentionGeometry, i: number): [number, number] {
  return [g.keyStart, Math.min(g.Tk, i + g.qOffset + 1)];
}

export function attentionForwardRef(out: Float32Array, probs: Float32Array | null, q: Float32Array, k: Float32Array, v: Float32Array, dims: AttentionDims): void {
  const g = attentionGeometry(dims);
  const { Tq, Tk, H, D, kvStride } = g;
  const p = new Float64Array(Tk);
  const acc = new Float64Array(D);
  for (let h = 0; h < H; h++) {
    const kvo = Math.floor(h / g.group) * D;
    for (let i = 0; i < Tq; i++) {
      const qo = i * H * D + h * D;
      const [j0, j1] = visibleKeys(g, i);
      let max = -Infinity;
      for (let j = j0; j < j1; j++) {
        let s = 0;
        for (let d = 0; d < D; d++) s += q[qo + d] * k[j * kvStride + kvo + d];
        p[j] = s * g.scale;
        max = Math.max(max, p[j]);
      }
      let sum = 0;
      for (let j = j0; j < j1; j++) {
        p[j] = Math.exp(p[j] - max);
        sum += p[j];
      }
      acc.fill(0);
      for (let j = j0; j < j1; j++) {
        p[j] /= sum;
        for (let d = 0; d < D; d++) acc[d] += p[j] * v[j * kvStride + kvo + d];
      }
      for (let d = 0; d < D; d++) out[qo + d] = acc[d];
      if (probs !== null) {
        const po = (h * Tq + i) * Tk;
        probs.fill(0, po, po + Tk);
        for (let j = j0; j < j1; j++) probs[po + j] = p[j];
      }
    }
  }
}

export function attentionBackwardRef(dq: Float32Array, dk: Float32Array, dv: Float32Array, dout: Float32Array, probs: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, dims: AttentionDims): void {
  const g = attentionGeometry(dims);
  const { Tq, Tk, H, D, kvStride } = g;
  const ds = new Float64Array(Tk);
  const dqRow = new Float64Array(D);
  // dk/dv rows collect one term per query row that sees them: summed in f64, added once.
  const kvLen = Tk === 0 ? 0 : (Tk - 1) * kvStride + g.Hkv * D;
  const dkAcc = new Float64Array(kvLen);
  const dvAcc = new Float64Array(kvLen);
  for (let h = 0; h < H; h++) {
    const kvo = Math.floor(h / g.group) * D;
    for (let i = 0; i < Tq; i++) {
      const qo = i * H * D + h * D;
      const po = (h * Tq + i) * Tk;
      const [j0, j1] = visibleKeys(g, i);
      let pdp = 0; // Σ_j p_j dp_j
      for (let j = j0; j < j1; j++) {
        let dp = 0;
        for (let d = 0; d < D; d++) dp += dout[qo + d] * v[j * kvStride + kvo + d];
        ds[j] = dp;
        pdp += probs[po + j] * dp;
      }
      dqRow.fill(0);
      for (let j = j0; j < j1; j++) {
        const pj = probs[po + j];
        const dsj = pj * (ds[j] - pdp) * g.scale;
        const ko = j * kvStride + kvo;
        for (let d = 0; d < D; d++) {
          dvAcc[ko + d] += pj * dout[qo + d];
          dqRow[d] += dsj * k[ko + d];
          dkAcc[ko + d] += dsj * q[qo + d];
        }
      }
      for (let d = 0; d < D; d++) dq[qo + d] += dqRow[d];
    }
  }
  for (let i = 0; i < kvLen; i++) {
    dk[i] += dkAcc[i];
    dv[i] += dvAcc[i];
  }
}
