// The kernel spec suite (spec.ts) on the wasm backend: the default build (relaxed SIMD when the
// runtime validates it) on all cores, and the plain SIMD128 build on one thread, so both builds
// (they differ where ASC_FEATURE_RELAXED_SIMD selects FMA) and both the split and unsplit paths
// are covered.
import { createKernels } from '../../src/kernels/index.js';
import { defineKernelSpecs } from './spec.js';

defineKernelSpecs('wasm', () => createKernels({ backend: 'wasm' }));
defineKernelSpecs('wasm-simd128-1thread', () => createKernels({ backend: 'wasm', threads: 1, wasmVariant: 'simd' }));
