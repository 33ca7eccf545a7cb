// bitsandbytes' 8-bit dynamic quantization map and blockwise absmax (de)quantization, as used for
// 8-bit optimizer states (bitsandbytes/functional.py create_dynamic_map with max_exponent_bits 7,
// total_bits 8; blockwise quantize to the nearest code of x / absmax(block)). Not NF4 (quant/).

/**
 * The 256 sorted code values. Exponent i = 0..6 scales 10^(i−6) times the midpoints of a linspace
 * over [0.1, 1] with 2^i + 1 (signed) or 2^(i+1) + 1 (unsigned) points; then 0 and 1 are added.
 * Arithmetic in float32 like torch's default dtype.
 */
export function createDynamicMap(signed: boolean): Float32Array {
  const values: number[] = [];
  for (let i = 0; i < 7; i++) {
    const points = signed ? 2 ** i + 1 : 2 ** (i + 1) + 1;
    const scale = Math.fround(10 ** (i - 6));
    const boundaries = linspaceF32(0.1, 1, points);
    for (let j = 0; j + 1 < points; j++) {
      const mid = Math.fround(Math.fround(boundaries[j] + boundaries[j + 1]) / 2);
      const v = Math.fround(scale * mid);
      values.push(v);
      if (signed) values.push(-v);
    }
  }
  values.push(0, 1);
  values.sort((a, b) => a - b);
  return Float32Array.from(values);
}

/** torch.linspace in float32: start + i·step for the first half, end − (n−1−i)·step for the rest. */
function linspaceF32(start: number, end: number, n: number): Float32Array {
  const out = new Float32Array(n);
  const s = Math.fround(start);
  const e = Math.fround(end);
  const step = Math.fround((e - s) / (n - 1));
  const half = Math.floor(n / 2);
  for (let i = 0; i < n; i++) out[i] = i < half ? s + step * i : e - step * (n - 1 - i);
  return out;
}

/** Index of the code value nearest to x (code sorted ascending); ties go to the upper value. */
export function nearestCode(code: Float32Array, x: number): number {
  let lo = 0;
  let hi = code.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (code[mid] <= x) lo = mid;
    else hi = mid;
  }
  return x - code[lo] < code[hi] - x ? lo : hi;
}

/** Per block: absmax = max |x|, codes = nearest(x / absmax). */
export function quantizeBlockwise(x: Float32Array, code: Float32Array, blockSize: number, codes: Uint8Array, absmax: Float32Array): void {
  const n = x.length;
  for (let b = 0, start = 0; start < n; b++, start += blockSize) {
    const end = Math.min(n, start + blockSize);
    let amax = 0;
    for (let i = start; i < end; i++) amax = Math.max(amax, Math.abs(x[i]));
    absmax[b] = amax;
    const inv = amax > 0 ? 1 / amax : 0;
    for (let i = start; i < end; i++) codes[i] = nearestCode(code, x[i] * inv);
  }
}

export function dequantizeBlockwise(codes: Uint8Array, absmax: Float32Array, code: Float32Array, blockSize: number, out: Float32Array): void {
  const n = out.length;
  for (let i = 0; i < n; i++) out[i] = code[codes[i]] * absmax[Math.floor(i / blockSize)];
}
