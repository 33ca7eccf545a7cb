// The kernel spec suite (spec.ts) on the wasm backend, with the pool at its default size (all
// cores) and at one thread (no splitting), so both the split and the unsplit paths are covered.
import { createKernels } from '../../src/kernels/index.js';
import { defineKernelSpecs } from './spec.js';

defineKernelSpecs('wasm', () => createKernels({ backend: 'wasm' }));
defineKernelSpecs('wasm-1thread', () => createKernels({ backend: 'wasm', threads: 1 }));
