// ggml block types: the reference quantizers reproduce llama-quantize's bytes (FORMATS.md §14.6
// vectors and every tensor of the fixtures/gguf files), the dequantizers decode within each
// type's error budget, and Q4_K / Q6_K decode hand-built blocks by the formulas of §7.5 / §7.6.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fixture } from '../helpers/shared.js';
import { NumericError, UnsupportedError } from '../../src/errors.js';
import { readGgufFile, readTensorBytes, ggufTensor } from '../../src/formats/gguf/reader.js';
import { f32ToF16Bits, f16BitsToF32 } from '../../src/formats/dtype.js';
import { GgmlType, bestIndexIq4nl, bestIndexIq4nlRef, dequantizeGgml, ggmlTypeName, q4kScaleMin, quantizeGgml, tensorToF32 } from '../../src/quant/ggml/index.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const ramp = Float32Array.from({ length: 32 }, (_, j) => j - 16);

test('§14.6 block vectors for x[j] = j - 16', () => {
  assert.equal(hex(quantizeGgml(GgmlType.Q4_0, ramp)), '0040809191a2a2b3b3c4c4d5d5e6e6f7f7f8');
  assert.equal(hex(quantizeGgml(GgmlType.Q8_0, ramp)), '083081899199a1a9b1b9c0c8d0d8e0e8f0f8000810182028303840474f575f676f77');
  assert.equal(hex(quantizeGgml(GgmlType.IQ4_NL, ramp)), 'fa2f809091a1b1b2c2c3d3d4e4e5e5f6f6f7');
  const zero = new Float32Array(32);
  assert.equal(hex(quantizeGgml(GgmlType.Q4_0, zero)), '0080' + '88'.repeat(16));
  assert.equal(hex(quantizeGgml(GgmlType.Q8_0, zero)), '00'.repeat(34));
  assert.equal(hex(quantizeGgml(GgmlType.IQ4_NL, zero)), '0000' + '88'.repeat(16));
});

test('Q4_0 / Q8_0 / IQ4_NL vectors decode element by element', () => {
  // Q4_0, d = 2: element j is (low nibble of byte j) and element j+16 (high nibble), value (q - 8)·2.
  const q40 = dequantizeGgml(GgmlType.Q4_0, quantizeGgml(GgmlType.Q4_0, ramp), 32);
  assert.deepEqual(Array.from(q40), [-16, -14, -14, -12, -12, -10, -10, -8, -8, -6, -6, -4, -4, -2, -2, 0, 0, 2, 2, 4, 4, 6, 6, 8, 8, 10, 10, 12, 12, 14, 14, 14]);
  const q80 = dequantizeGgml(GgmlType.Q8_0, quantizeGgml(GgmlType.Q8_0, ramp), 32);
  const d8 = f16BitsToF32(0x3008);
  assert.equal(q80[0], Math.fround(-127 * d8));
  assert.equal(q80[8], Math.fround(-64 * d8)); // x = -8 -> -63.5 -> -64: roundf ties away from zero
  const iq = dequantizeGgml(GgmlType.IQ4_NL, quantizeGgml(GgmlType.IQ4_NL, ramp), 32);
  const diq = f16BitsToF32(0x2ffa);
  assert.equal(iq[0], Math.fround(-127 * diq));
  assert.equal(iq[31], Math.fround(113 * diq));
});

test('IQ4_NL nearest-index search: bounds, midpoints, ties go up', () => {
  assert.equal(bestIndexIq4nl(-1000), 0);
  assert.equal(bestIndexIq4nl(-127), 0);
  assert.equal(bestIndexIq4nl(113), 15);
  assert.equal(bestIndexIq4nl(500), 15);
  assert.equal(bestIndexIq4nl(0), 8); // between -10 and 1, nearer 1
  assert.equal(bestIndexIq4nl(-4.5), 8); // exact tie between -10 and 1 -> upper
  assert.equal(bestIndexIq4nl(-4.6), 7);
  assert.equal(bestIndexIq4nl(101), 15); // tie between 89 and 113 -> upper
});

test('IQ4_NL table search equals the literal ggml search around every midpoint and on random values', () => {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  const check = (v: number): void => {
    if (bestIndexIq4nl(v) !== bestIndexIq4nlRef(v)) assert.fail(`v = ${v}: ${bestIndexIq4nl(v)} vs ${bestIndexIq4nlRef(v)}`);
  };
  const k = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];
  const points = [...k, ...k.slice(1).map((b, i) => (k[i] + b) / 2), 0];
  for (const p of points) {
    for (const sign of [1, -1]) {
      f[0] = p;
      const base = u[0];
      for (let d = -2000; d <= 2000; d++) {
        u[0] = base + d;
        check(sign * f[0]);
      }
    }
  }
  let s = 12345;
  for (let i = 0; i < 200000; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    check(Math.fround((s / 2 ** 32 - 0.5) * 300));
  }
  for (const v of [-0, 1e-40, -1e-40, 1e-30, Infinity, -Infinity, NaN]) check(v);
});

const GGUF = (name: string): string => fixture('gguf', name);

test('quantizing stories260K-F32 reproduces the llama-quantize files byte for byte', () => {
  const f32 = readGgufFile(GGUF('stories260K-F32.gguf'));
  for (const target of ['F16', 'BF16', 'Q8_0', 'Q4_0', 'IQ4_NL']) {
    const g = readGgufFile(GGUF(`stories260K-${target}.gguf`));
    let blocks = 0;
    for (const t of g.tensors) {
      const x = tensorToF32(f32, ggufTensor(f32, t.name));
      // Row by row, as llama-quantize does (rows of ne0 elements).
      const rowBytes = t.nbytes / (x.length / t.ne[0]);
      const expected = readTensorBytes(g, t);
      for (let r = 0; r < x.length / t.ne[0]; r++) {
        const got = quantizeGgml(t.type, x.subarray(r * t.ne[0], (r + 1) * t.ne[0]));
        const want = expected.subarray(r * rowBytes, (r + 1) * rowBytes);
        if (Buffer.compare(got, want) !== 0) assert.fail(`${target}: ${t.name} row ${r} differs (${ggmlTypeName(t.type)})`);
      }
      if (t.type === GgmlType.Q4_0 || t.type === GgmlType.IQ4_NL) blocks += x.length / 32;
    }
    if (target === 'Q4_0' || target === 'IQ4_NL') assert.equal(blocks, 5360);
  }
  // The Q8_0 adapter was written by gguf-py's numpy port; same bytes.
  const a32 = readGgufFile(GGUF('stories260K-lora-f32.gguf'));
  const a8 = readGgufFile(GGUF('stories260K-lora-q8_0.gguf'));
  for (const t of a8.tensors) {
    assert.equal(hex(quantizeGgml(t.type, tensorToF32(a32, ggufTensor(a32, t.name)))), hex(readTensorBytes(a8, t)), t.name);
  }
});

/**
 * Largest decode error allowed, relative to the largest |x| of the 32-block (F16/BF16: to |x|,
 * plus 1e-7 absolute for subnormals). Q8_0: half a step of amax/127 plus the f16 rounding of d;
 * Q4_0: one step amax/8 (the clipped +8 code); IQ4_NL: its fitted scale has no closed-form bound,
 * the same 1/8 holds on these fixtures (measured worst 0.1213; Q4_0 0.1248).
 */
const DEQUANT_ERROR_BUDGET: Record<string, number> = {
  F16: 2 ** -11, BF16: 2 ** -8, Q8_0: 0.5 / 127 + 2 ** -9, Q4_0: 1 / 8 + 2 ** -9, IQ4_NL: 1 / 8 + 2 ** -9,
};

test('dequantized fixture tensors stay within each type\'s error budget of the F32 weights', () => {
  const f32 = readGgufFile(GGUF('stories260K-F32.gguf'));
  for (const target of ['F16', 'BF16', 'Q8_0', 'Q4_0', 'IQ4_NL']) {
    const g = readGgufFile(GGUF(`stories260K-${target}.gguf`));
    for (const t of g.tensors) {
      const x = tensorToF32(f32, ggufTensor(f32, t.name));
      const y = tensorToF32(g, t);
      assert.equal(y.length, x.length);
      const name = ggmlTypeName(t.type);
      if (name === 'F32') {
        assert.deepEqual(y, x, t.name);
        continue;
      }
      const budget = DEQUANT_ERROR_BUDGET[name];
      for (let b = 0; b < x.length; b += 32) {
        let amax = 0;
        for (let j = b; j < b + 32; j++) amax = Math.max(amax, Math.abs(x[j]));
        for (let j = b; j < b + 32; j++) {
          const scale = name === 'F16' || name === 'BF16' ? Math.abs(x[j]) : amax;
          if (Math.abs(y[j] - x[j]) > budget * scale + 1e-7) assert.fail(`${target} ${t.name}[${j}]: ${y[j]} vs ${x[j]}`);
        }
      }
    }
  }
});

/** Q4_K scales[12] encoding 8 six-bit (scale, min) pairs, the inverse of §7.5. */
function packQ4kScales(sc: number[], m: number[]): Uint8Array {
  const s = new Uint8Array(12);
  for (let i = 0; i < 4; i++) {
    s[i] = sc[i] | ((sc[i + 4] >> 4) << 6);
    s[i + 4] = m[i] | ((m[i + 4] >> 4) << 6);
    s[i + 8] = (sc[i + 4] & 15) | ((m[i + 4] & 15) << 4);
  }
  return s;
}

function seededBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

test('Q4_K decodes a hand-built block by §7.5', () => {
  const sc = [1, 2, 3, 4, 17, 33, 50, 63];
  const m = [0, 5, 9, 13, 20, 40, 48, 63];
  const scales = packQ4kScales(sc, m);
  for (let s = 0; s < 8; s++) assert.deepEqual(q4kScaleMin(scales, 0, s), [sc[s], m[s]], `sub-block ${s}`);
  const d = 0.0123, dmin = -0.0456;
  const qs = seededBytes(128, 7);
  const block = new Uint8Array(144);
  const bv = new DataView(block.buffer);
  bv.setUint16(0, f32ToF16Bits(d), true);
  bv.setUint16(2, f32ToF16Bits(dmin), true);
  block.set(scales, 4);
  block.set(qs, 16);
  const two = new Uint8Array(288);
  two.set(block);
  two.set(block, 144);
  const y = dequantizeGgml(GgmlType.Q4_K, two, 512);
  const dh = f16BitsToF32(f32ToF16Bits(d)), mh = f16BitsToF32(f32ToF16Bits(dmin));
  for (let e = 0; e < 256; e++) {
    const c = e >> 6, hi = (e >> 5) & 1, l = e & 31, sub = 2 * c + hi;
    const q = hi ? qs[32 * c + l] >> 4 : qs[32 * c + l] & 15;
    const want = Math.fround(Math.fround(Math.fround(dh * sc[sub]) * q) - Math.fround(mh * m[sub]));
    assert.equal(y[e], want, `element ${e}`);
    assert.equal(y[256 + e], want, `second block, element ${e}`);
  }
});

test('Q6_K decodes a hand-built block by §7.6 (d stored last)', () => {
  const block = seededBytes(210, 11);
  const d = 0.0078;
  new DataView(block.buffer).setUint16(208, f32ToF16Bits(d), true);
  const y = dequantizeGgml(GgmlType.Q6_K, block, 256);
  const dh = f16BitsToF32(f32ToF16Bits(d));
  const ql = block.subarray(0, 128), qh = block.subarray(128, 192), scales = new Int8Array(block.buffer, 192, 16);
  for (let e = 0; e < 256; e++) {
    const h = e >> 7, k = (e & 127) >> 5, l = e & 31;
    const byte = ql[64 * h + l + 32 * (k & 1)];
    const low4 = k >= 2 ? byte >> 4 : byte & 15;
    const q = (low4 | (((qh[32 * h + l] >> (2 * k)) & 3) << 4)) - 32;
    const want = Math.fround(Math.fround(dh * scales[8 * h + (l >> 4) + 2 * k]) * q);
    assert.equal(y[e], want, `element ${e}`);
  }
});

test('Q4_1 and BF16 decode by their formulas', () => {
  const block = new Uint8Array(20);
  const v = new DataView(block.buffer);
  v.setUint16(0, f32ToF16Bits(0.5), true);
  v.setUint16(2, f32ToF16Bits(-3), true);
  for (let j = 0; j < 16; j++) block[4 + j] = j | ((15 - j) << 4);
  const y = dequantizeGgml(GgmlType.Q4_1, block, 32);
  for (let j = 0; j < 16; j++) {
    assert.equal(y[j], j * 0.5 - 3);
    assert.equal(y[j + 16], (15 - j) * 0.5 - 3);
  }
  const bf = Uint8Array.of(0x80, 0x3f, 0xc0, 0xbf); // 1.0, -1.5
  assert.deepEqual(Array.from(dequantizeGgml(GgmlType.BF16, bf, 2)), [1, -1.5]);
});

test('bad input: unsupported types, sizes, non-finite values', () => {
  assert.throws(() => dequantizeGgml(GgmlType.Q5_K, new Uint8Array(176), 256), UnsupportedError);
  assert.throws(() => dequantizeGgml(GgmlType.Q4_0, new Uint8Array(17), 32), /byte size/);
  assert.throws(() => dequantizeGgml(GgmlType.Q4_0, new Uint8Array(18), 31), /multiple of the block size/);
  assert.throws(() => quantizeGgml(GgmlType.Q4_K, new Float32Array(256)), UnsupportedError);
  assert.throws(() => quantizeGgml(GgmlType.Q4_0, new Float32Array(48)), /multiple of 32/);
  const bad = new Float32Array(32);
  bad[5] = NaN;
  assert.throws(() => quantizeGgml(GgmlType.Q8_0, bad), (e: unknown) => e instanceof NumericError && e.offset === 5);
  assert.equal(hex(quantizeGgml(GgmlType.F16, Float32Array.of(NaN, Infinity))), '007e007c');
});

test('F16 decoding is exact for all 65536 bit patterns', () => {
  const bytes = new Uint8Array(2 * 65536);
  for (let h = 0; h < 65536; h++) {
    bytes[2 * h] = h & 0xff;
    bytes[2 * h + 1] = h >> 8;
  }
  const y = dequantizeGgml(GgmlType.F16, bytes, 65536);
  for (let h = 0; h < 65536; h++) {
    const want = f16BitsToF32(h);
    if (!(Object.is(y[h], Math.fround(want)) || (Number.isNaN(want) && Number.isNaN(y[h])))) assert.fail(`f16 0x${h.toString(16)}: ${y[h]} vs ${want}`);
  }
});
