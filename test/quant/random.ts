// Seeded test data for the quantization tests (no Math.random: failures must reproduce).
/** mulberry32: a small 32-bit PRNG, uniform in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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
