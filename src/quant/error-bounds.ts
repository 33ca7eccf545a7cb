// Round-trip error budgets of 4-bit quantization, as named constants (ARCHITECTURE.md §6: error
// budgets are named, and tests check against them). Two kinds:
// - guaranteed per-element bounds derived from the tables (half the largest gap between adjacent
//   codebook values, relative to the block scale), valid for any input;
// - measured relative RMS errors ||w - x|| / ||x|| for seeded random data at block size 64, with
//   ~10% margin over the measured value, so a regression in code choice or scaling shows up.
// Not here: the tests themselves (test/quant/round-trip.test.ts).

import type { Quant4Type } from './types.js';

/** Half the largest gap of the NF4 codebook: (-0.6961928 - -1.0) / 2, relative to the block absmax. */
export const NF4_MAX_HALF_GAP = 0.15190359950065613;
/** Half the largest gap of the FP4 codebook: (1.0 - 0.6666667) / 2. */
export const FP4_MAX_HALF_GAP = 0.1666666567325592;
/** Half the largest gap of the signed dynamic map (0.1%-steps of 0.0140625 near ±1), relative to nested absmax. */
export const DYNAMIC_MAP_MAX_HALF_GAP = 0.007031261920928955;
/** Relative slack for f32 rounding of scale and product (a few ulp). */
export const F32_ROUNDING_SLACK = 4 * 2 ** -23;

export function maxHalfGap(type: Quant4Type): number {
  return type === 'nf4' ? NF4_MAX_HALF_GAP : FP4_MAX_HALF_GAP;
}

/**
 * Measured ||w - x|| / ||x|| at block size 64, symmetric, with or without double quantization
 * (DQ adds < 1% to these), blockwise or perChannel. Measured: normal nf4 0.092 / fp4 0.123;
 * uniform(-1, 1) 0.091 / 0.111; Student-t(2) 0.116 / 0.165.
 */
export const REL_RMSE_BLOCK64: Readonly<Record<Quant4Type, Readonly<Record<'normal' | 'uniform' | 'heavyTailed', number>>>> = {
  nf4: { normal: 0.1, uniform: 0.1, heavyTailed: 0.13 },
  fp4: { normal: 0.135, uniform: 0.122, heavyTailed: 0.18 },
};

/**
 * Zero-point variant on skewed data (all weights in [0.05, ~0.09]): measured nf4 0.013, fp4 0.015,
 * against 0.085 / 0.116 for the symmetric scheme on the same data.
 */
export const REL_RMSE_ZERO_POINT_SKEWED: Readonly<Record<Quant4Type, number>> = { nf4: 0.015, fp4: 0.017 };
