// RoPE frequency tables (FORMATS.md §5.4): default, linear and llama3 scaling against the
// formulas evaluated in f64, the three llama3 regimes, unsupported types refused, and the
// forward/backward rotation pair being inverse to each other.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RefKernels } from '../../src/kernels/ref/index.js';
import { buildRopeTables, ropeBackward, ropeForward, ropeInverseFrequencies } from '../../src/nn/rope.js';

/** f32 arithmetic vs the f64 formula: a few ulps. */
const REL_TOLERANCE = 1e-6;

function close(a: number, b: number): boolean {
  return Math.abs(a - b) <= REL_TOLERANCE * Math.max(Math.abs(a), Math.abs(b));
}

describe('RoPE', () => {
  it('default inverse frequencies are 1 / theta^(2i/D)', () => {
    const inv = ropeInverseFrequencies({ theta: 10000, type: 'default' }, 64);
    assert.equal(inv.length, 32);
    for (let i = 0; i < 32; i++) assert.ok(close(inv[i], 1 / Math.pow(10000, (2 * i) / 64)), `i=${i}`);
  });

  it('linear scaling divides every frequency by the factor', () => {
    const inv = ropeInverseFrequencies({ theta: 10000, type: 'linear', factor: 4 }, 16);
    for (let i = 0; i < 8; i++) assert.ok(close(inv[i], 1 / Math.pow(10000, (2 * i) / 16) / 4));
  });

  it('llama3 scaling: high frequencies kept, low divided by factor, the middle interpolated (Llama 3.1 settings)', () => {
    const rope = { theta: 500000, type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 };
    const inv = ropeInverseFrequencies(rope, 128);
    const regimes = new Set<string>();
    for (let i = 0; i < 64; i++) {
      const f = 1 / Math.pow(500000, (2 * i) / 128);
      const wavelen = (2 * Math.PI) / f;
      let want: number;
      if (wavelen < 8192 / 4) {
        want = f;
        regimes.add('high');
      } else if (wavelen > 8192 / 1) {
        want = f / 8;
        regimes.add('low');
      } else {
        const smooth = (8192 / wavelen - 1) / (4 - 1);
        want = ((1 - smooth) * f) / 8 + smooth * f;
        regimes.add('mid');
      }
      assert.ok(close(inv[i], want), `i=${i}: ${inv[i]} vs ${want}`);
    }
    assert.deepEqual([...regimes].sort(), ['high', 'low', 'mid']);
  });

  it('refuses unsupported scaling types and missing fields', () => {
    assert.throws(() => ropeInverseFrequencies({ theta: 10000, type: 'yarn', factor: 4 }, 8), { name: 'UnsupportedError', message: /yarn/ });
    assert.throws(() => ropeInverseFrequencies({ theta: 10000, type: 'llama3', factor: 8 }, 8), { name: 'UnsupportedError', message: /lowFreqFactor/ });
  });

  it('tables hold cos/sin of f32(p · inv_freq); backward undoes forward', () => {
    const t = buildRopeTables({ theta: 10000, type: 'default' }, 8, 32);
    const inv = ropeInverseFrequencies({ theta: 10000, type: 'default' }, 8);
    assert.equal(t.cos[17 * 4 + 3], Math.fround(Math.cos(Math.fround(17 * inv[3]))));
    const k = new RefKernels();
    const x = Float32Array.from({ length: 3 * 16 }, (_, i) => Math.sin(i));
    const y = Float32Array.from(x);
    const positions = Int32Array.of(0, 5, 31);
    ropeForward(k, y, positions, t, 3, 2, 16);
    assert.ok(Math.abs(y[16 + 1] - x[16 + 1]) > 1e-3); // position 5 rotates
    ropeBackward(k, y, positions, t, 3, 2, 16);
    for (let i = 0; i < x.length; i++) assert.ok(Math.abs(y[i] - x[i]) < 1e-6);
  });
});
