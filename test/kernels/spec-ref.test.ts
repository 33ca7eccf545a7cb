// The kernel spec suite (spec.ts) on the reference backend.
import { RefKernels } from '../../src/kernels/ref/index.js';
import { defineKernelSpecs } from './spec.js';

defineKernelSpecs('ref', () => new RefKernels());
