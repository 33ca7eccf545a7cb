// AssemblyScript kernel entry: every exported kernel of the wasm backend is re-exported here.
// Compiled twice by scripts/build-wasm.mjs (SIMD128, and SIMD128 + relaxed SIMD); code that
// differs between the two branches on the compile-time constant ASC_FEATURE_RELAXED_SIMD.
// All kernels take byte addresses in the one shared memory; the JS runtime (../memory.ts) owns
// every byte above heapBase().

/** First byte the JS allocator may hand out (after the module's static data). */
export function heapBase(): usize {
  return __heap_base;
}

/** Zeroes n bytes at p (bulk memory.fill: ~3x a JS typed-array fill of a shared buffer, measured). */
export function zeroBytes(p: usize, n: usize): void {
  memory.fill(p, 0, n);
}

export { gemmF32, gemmScratchBytes, gemmPanelFloats } from './gemm';
export { gemvF32, gemvQ4, gemvQ4Many, dotF32 } from './gemv';
export { gemvI8Q4Many, gemvI8ScratchBytes } from './gemv-i8';
export { q4DecodeRow, q4DequantizeRows } from './q4';
export { quantizeBlockwise4 } from './quant';
export * from './norm';
export * from './rope';
export * from './act';
export * from './attention';
export { attentionForwardDecode, attentionDecodeMerge, attentionDecodeScratchBytes, attentionDecodePartialFloats } from './attention-decode';
export * from './loss';
export * from './optim';
export { gemmI16Prepare, gemmI16Run, gemmI16PanelBytes, gemmI16ScratchBytes, gemmI16TileBytes } from './gemm-i16';
export { gemmI8Prepare, gemmI8Run, gemmI8PanelBytes, gemmI8ScratchBytes } from './gemm-i8';
