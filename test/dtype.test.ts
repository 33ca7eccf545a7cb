import { test } from 'node:test';
import assert from 'node:assert/strict';
import { f32ToF16Bits, f16BitsToF32, f32ToBf16Bits, bf16BitsToF32 } from '../src/formats/dtype.js';

test('f16: exhaustive round trip of every half bit pattern', () => {
  for (let h = 0; h < 0x10000; h++) {
    const v = f16BitsToF32(h);
    const back = f32ToF16Bits(v);
    if (Number.isNaN(v)) assert.equal(back & 0x7c00, 0x7c00);
    else assert.equal(back, h, `half 0x${h.toString(16)}`);
  }
});

test('f16: round to nearest even, overflow, subnormals', () => {
  assert.equal(f32ToF16Bits(1 + 2 ** -11), 0x3c00); // exact tie -> even (1.0)
  assert.equal(f32ToF16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie -> even (up)
  assert.equal(f32ToF16Bits(65520), 0x7c00); // rounds past max half -> Inf
  assert.equal(f32ToF16Bits(65519), 0x7bff);
  assert.equal(f32ToF16Bits(2 ** -25), 0x0000); // tie between 0 and min subnormal -> 0
  assert.equal(f32ToF16Bits(2 ** -25 * 1.5), 0x0001);
  assert.equal(f32ToF16Bits(-0), 0x8000);
  assert.equal(f32ToF16Bits(-Infinity), 0xfc00);
  assert.equal(f32ToF16Bits(16 / 127), 0x3008); // FORMATS.md §14.6 Q8_0 d
});

test('bf16: RNE and NaN', () => {
  assert.equal(f32ToBf16Bits(1), 0x3f80);
  assert.equal(f32ToBf16Bits(1 + 2 ** -8), 0x3f80); // tie -> even
  assert.equal(f32ToBf16Bits(1 + 3 * 2 ** -8), 0x3f82);
  assert.ok(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(NaN))));
  assert.equal(bf16BitsToF32(0xc000), -2);
});
