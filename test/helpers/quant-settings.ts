// Short forms shared by the 4-bit kernel tests: Quant4Settings in one call, and seeded uniform data.

import type { Quant4Settings } from '../../src/quant/config.js';
import { rng } from './random.js';

/** Quant4Settings from positional fields. */
export const q4s = (quantType: 'nf4' | 'fp4', blockSize: number, doubleQuant: boolean, strategy: 'blockwise' | 'perChannel', zeroPoint = false): Quant4Settings =>
  ({ quantType, blockSize, doubleQuant, strategy, zeroPoint });

/** n values uniform in [-1, 1) from a seeded generator (mulberry32). */
export function randUniform(n: number, seed: number): Float32Array {
  const next = rng(seed);
  return Float32Array.from({ length: n }, () => 2 * next() - 1);
}
