// Seeded test data for the quantization tests (no Math.random: failures must reproduce).
import { rng } from '../helpers/random.js';

export { rng };

/** Standard normal by Box-Muller. */
export function normal(u: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

export type Distribution = 'normal' | 'uniform' | 'heavyTailed' | 'outliers' | 'zeroBlocks' | 'skewed';

/** n f32 values of a named distribution (heavy-tailed = Student-t with 2 degrees of freedom). */
export function sample(dist: Distribution, n: number, seed: number): Float32Array {
  const u = rng(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    switch (dist) {
      case 'normal': x[i] = normal(u); break;
      case 'uniform': x[i] = 2 * u() - 1; break;
      case 'heavyTailed': { const z = normal(u); const c = normal(u) ** 2 + normal(u) ** 2; x[i] = z / Math.sqrt(c / 2); break; }
      case 'outliers': x[i] = u() < 0.002 ? (u() < 0.5 ? -1 : 1) * 1e4 : normal(u); break;
      case 'zeroBlocks': x[i] = Math.floor(i / 64) % 3 === 1 ? 0 : normal(u); break;
      case 'skewed': x[i] = 0.05 + 0.01 * Math.abs(normal(u)); break;
    }
  }
  return x;
}
