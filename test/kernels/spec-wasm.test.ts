// The kernel spec suite (spec.ts) on the wasm backend.
// TEMPORARY: the wasm backend (createKernels in src/kernels/index.ts, helper H4a) is not committed
// yet; this file skips with an explicit message until it is, then runs defineKernelSpecs on it.
import { describe } from 'node:test';

describe('kernel specs: wasm', { skip: 'wasm backend not committed yet (src/kernels/index.ts)' }, () => {});
