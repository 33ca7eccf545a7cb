// bitsandbytes blockwise 4-bit quantization in wasm, bit-exact with the plain TypeScript reference
// of the quant layer (src/quant/blockwise.ts quantizeBlockwise4Ref) and so with the torch/CPU path
// of bitsandbytes (bitsandbytes/backends/default/ops.py; FORMATS.md §3.1-§3.3):
//   absmax[b] = max|x| over the block (NaN elements are skipped by the strict '>', as the reference);
//   full blocks: s = clamp(f32(x · f32(1 / max(absmax, f32(1e-38)))), -1, 1), absmax stored as is;
//   a partial last block: s = clamp(f32(x / max(absmax, 1e-38))) and that clamped absmax is stored;
//   code = codeMap[number of sorted-codebook midpoints strictly below s] (ties take the lower code);
//   two codes per byte, first element in the HIGH nibble, odd n padded with the code of 0.0.
// The tables come from the caller so they stay defined in one place (src/quant/codebooks.ts):
//   table + 0:   15 f32 midpoints of the sorted codebook (NF4_MIDPOINTS / FP4_MIDPOINTS_SORTED)
//   table + 64:  16 u8 sorted position -> code (identity for NF4, FP4_SORTED_INDEX_TO_CODE)
//   table + 80:  32 u8 per grid bucket: midpoints in earlier buckets        } grid tables, valid
//   table + 112: 4 x 32 u8 byte planes of the f32 midpoint in the bucket     } when the flag is 1
//                (+Inf when none): byte p of bucket u's midpoint at 112 + 32p + u
//   table + 240: i32 flag: 1 when every grid bucket holds at most one midpoint and the code map is
//                the identity (NF4), else 0 (FP4: its midpoints around zero are 0.0026 apart)
// (built and checked by src/kernels/wasm/backend.ts quantTable).
// Not here: double quantization of absmax and the zero-point variant (quant layer, JS); how the
// work is split over threads (backend.ts: by whole blocks starting on a byte).
//
// SIMD path (full blocks whose size is a multiple of 16, i.e. every block size the config allows):
// - absmax with f32x4.pmax (b < a ? a : b), which keeps the accumulator when the new value is NaN,
//   exactly the reference's strict '>' (a plain f32x4.max would propagate NaN);
// - s = x · splat(reciprocal): the same single IEEE rounding as the scalar product (never fused);
// - no clamp: every midpoint lies strictly inside (-1, 1), so s > 1 and s = 1 (s < -1 and s = -1)
//   are above (below) the same midpoints, and NaN is above none, as in the reference;
// - position = number of midpoints below s. Grid path (flag 1, NF4): bucket u = round(f32(s·15)
//   + 1.5·2^23) read from the low mantissa byte (0..30; NaN -> 0), monotone in s because both
//   roundings are; with at most one midpoint per bucket, position = below[u] + (s > mid[u]), both
//   fetched per lane with byte swizzles (two 16-entry halves, four byte planes for the f32), so one
//   exact f32 compare replaces fifteen. Count path (flag 0, FP4): Σ_i (s > m_i), 15 f32x4.gt masks
//   (-1) subtracted from i32 counters, each midpoint broadcast from memory as it is used (15
//   splatted midpoints kept live would spill);
// - narrow the counters to bytes, map sorted position -> code with one swizzle, and pack pairs of
//   bytes into (first << 4) | second with 16-bit lane shifts: 8 output bytes per 16 elements.

const ABSMAX_FLOOR: f32 = 1e-38;
const CODE_MAP_OFFSET = 64;
const BELOW_OFFSET = 80;
const PLANES_OFFSET = 112;
const GRID_FLAG_OFFSET = 240;
/** Flag value: grid tables valid and the code map is the identity. */
const GRID_IDENTITY = 1;
/** s·GRID_SCALE + GRID_MAGIC rounds to the integer round(15s + 15) in the low mantissa bits. */
const GRID_SCALE: f32 = 15;
const GRID_MAGIC: f32 = 12582927; // 1.5·2^23 + 15

/** Number of the 15 sorted midpoints at t strictly below s: a 4-level binary search. */
@inline function sortedPosition(s: f32, t: usize): u32 {
  let k: u32 = s > load<f32>(t, 28) ? 8 : 0;
  if (s > load<f32>(t + (<usize>(k + 3) << 2))) k += 4;
  if (s > load<f32>(t + (<usize>(k + 1) << 2))) k += 2;
  if (s > load<f32>(t + (<usize>k << 2))) k += 1;
  return k;
}

@inline function clampUnit(v: f32): f32 {
  return v > 1 ? 1 : v < -1 ? -1 : v;
}

/** max|x| over x[0..len) (f32 at x), len a multiple of 16; NaN skipped. */
@inline function absmaxSimd(x: usize, len: i32): f32 {
  let m0 = f32x4.splat(0), m1 = f32x4.splat(0), m2 = f32x4.splat(0), m3 = f32x4.splat(0);
  for (let j = 0; j < len; j += 16) {
    const p = x + (<usize>j << 2);
    m0 = f32x4.pmax(m0, f32x4.abs(v128.load(p)));
    m1 = f32x4.pmax(m1, f32x4.abs(v128.load(p, 16)));
    m2 = f32x4.pmax(m2, f32x4.abs(v128.load(p, 32)));
    m3 = f32x4.pmax(m3, f32x4.abs(v128.load(p, 48)));
  }
  // Lanes hold no NaN (pmax never takes one in), so the order of the reduction does not matter.
  let m = f32x4.pmax(f32x4.pmax(m0, m1), f32x4.pmax(m2, m3));
  m = f32x4.pmax(m, v128.shuffle<f32>(m, m, 2, 3, 0, 1));
  m = f32x4.pmax(m, v128.shuffle<f32>(m, m, 1, 0, 3, 2));
  return f32x4.extract_lane(m, 0);
}

/** c + (s > m) per lane (the mask is -1). */
@inline function countAbove(c: v128, s: v128, m: v128): v128 {
  return i32x4.sub(c, f32x4.gt(s, m));
}

/** Sorted positions (0..15, one byte per element) of the 16 scaled values: count path. */
@inline function positionsByCount(s0: v128, s1: v128, s2: v128, s3: v128, t: usize): v128 {
  let c0 = i32x4.splat(0), c1 = i32x4.splat(0), c2 = i32x4.splat(0), c3 = i32x4.splat(0);
  let m: v128;
  // The 15 midpoints, unrolled by hand (binaryen does not unroll the loop).
  m = v128.load32_splat(t, 0); c0 = countAbove(c0, s0, m); c1 = countAbove(c1, s1, m); c2 = countAbove(c2, s2, m); c3 = countAbove(c3, s3, m);
  m = v128.load32_splat(t, 4); c0 = countAbove(c0, s0, m); c1 = countAbove(c1, s1, m); c2 = countAbove(c2, s2, m); c3 = countAbove(c3, s3, m);
  m = v128.load32_splat(t, 8); c0 = countAbove(c0, s0, m); c1 = countAbove(c1, s1, m); c2 = countAbove(c2, s2, m); c3 = countAbove(c3, s3, m);
  m = v128.load32_splat(t, 12); c0 = countAbove(c0, s0, m); c1 = countAbove(c1, s1, m); c2 = countAbove(c2, s2, m); c3 = countAbove(c3, s3, m);
  m = v128.load32_splat(t, 16); c0 = countAbove(c0, s0, m); c1 = countAbove(c1, s1, m); c2 = countAbove(c2, s2, m); c3 = countAbove(c3, s3, m);
  m = v128.load32_splat(t, 20); c0 = countAbove(c0, s0, m); c1 = countAbove(c1, s1, m); c2 = countAbove(c2, s2, m); c3 = countAbove(c3, s3, m);
  m = v128.load32_splat(t, 24); c0 = countAbove(c0, s0, m); c1 = countAbove(c1, s1, m); c2 = countAbove(c2, s2, m); c3 = countAbove(c3, s3, m);
  m = v128.load32_splat(t, 28); c0 = countAbove(c0, s0, m); c1 = countAbove(c1, s1, m); c2 = countAbove(c2, s2, m); c3 = countAbove(c3, s3, m);
  m = v128.load32_splat(t, 32); c0 = countAbove(c0, s0, m); c1 = countAbove(c1, s1, m); c2 = countAbove(c2, s2, m); c3 = countAbove(c3, s3, m);
  m = v128.load32_splat(t, 36); c0 = countAbove(c0, s0, m); c1 = countAbove(c1, s1, m); c2 = countAbove(c2, s2, m); c3 = countAbove(c3, s3, m);
  m = v128.load32_splat(t, 40); c0 = countAbove(c0, s0, m); c1 = countAbove(c1, s1, m); c2 = countAbove(c2, s2, m); c3 = countAbove(c3, s3, m);
  m = v128.load32_splat(t, 44); c0 = countAbove(c0, s0, m); c1 = countAbove(c1, s1, m); c2 = countAbove(c2, s2, m); c3 = countAbove(c3, s3, m);
  m = v128.load32_splat(t, 48); c0 = countAbove(c0, s0, m); c1 = countAbove(c1, s1, m); c2 = countAbove(c2, s2, m); c3 = countAbove(c3, s3, m);
  m = v128.load32_splat(t, 52); c0 = countAbove(c0, s0, m); c1 = countAbove(c1, s1, m); c2 = countAbove(c2, s2, m); c3 = countAbove(c3, s3, m);
  m = v128.load32_splat(t, 56); c0 = countAbove(c0, s0, m); c1 = countAbove(c1, s1, m); c2 = countAbove(c2, s2, m); c3 = countAbove(c3, s3, m);
  return i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(c0, c1), i16x8.narrow_i32x4_s(c2, c3));
}

/** Grid bucket of each lane, in the low byte of its i32 lane. */
@inline function bucketOf(s: v128): v128 {
  return v128.and(f32x4.add(f32x4.mul(s, f32x4.splat(GRID_SCALE)), f32x4.splat(GRID_MAGIC)), i32x4.splat(0xff));
}

/**
 * Per lane, byte i of the 16-byte table t when i < 16 and 0 when i >= 128 (never called with
 * 16..127). Relaxed swizzle is fully specified on exactly these two ranges (it may differ from the
 * plain swizzle only for 16..127), so both builds give the same bytes; it is one instruction
 * (pshufb) where the plain one needs an extra saturating add.
 */
@inline function swizzleInRange(t: v128, i: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i8x16.relaxed_swizzle(t, i);
  return i8x16.swizzle(t, i);
}

/**
 * Byte u (0..30) of the 32-byte table at p, per lane: ua = u for u < 16, else 0xff; ub = u - 16
 * for u >= 16, else 240..255 (each half reads 0 where the other one answers).
 */
@inline function lookup32(p: usize, ua: v128, ub: v128): v128 {
  return v128.or(swizzleInRange(v128.load(p), ua), swizzleInRange(v128.load(p, 16), ub));
}

/** Sorted positions (0..15, one byte per element) of the 16 scaled values: grid path. */
@inline function positionsByGrid(s0: v128, s1: v128, s2: v128, s3: v128, t: usize): v128 {
  const u = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(bucketOf(s0), bucketOf(s1)), i16x8.narrow_i32x4_u(bucketOf(s2), bucketOf(s3)));
  const ua = v128.or(u, i8x16.gt_u(u, i8x16.splat(15)));
  const ub = i8x16.sub(u, i8x16.splat(16));
  const below = lookup32(t + BELOW_OFFSET, ua, ub);
  const q0 = lookup32(t + PLANES_OFFSET, ua, ub);
  const q1 = lookup32(t + PLANES_OFFSET + 32, ua, ub);
  const q2 = lookup32(t + PLANES_OFFSET + 64, ua, ub);
  const q3 = lookup32(t + PLANES_OFFSET + 96, ua, ub);
  // Byte planes -> f32 lanes in element order (as the decoder in q4.ts).
  const pa = i8x16.shuffle(q0, q1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const pb = i8x16.shuffle(q0, q1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const pc = i8x16.shuffle(q2, q3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const pd = i8x16.shuffle(q2, q3, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const g0 = f32x4.gt(s0, i8x16.shuffle(pa, pc, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23));
  const g1 = f32x4.gt(s1, i8x16.shuffle(pa, pc, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31));
  const g2 = f32x4.gt(s2, i8x16.shuffle(pb, pd, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23));
  const g3 = f32x4.gt(s3, i8x16.shuffle(pb, pd, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31));
  return i8x16.sub(below, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(g0, g1), i16x8.narrow_i32x4_s(g2, g3)));
}

/**
 * Codes of the 16 values at x scaled by inv, packed into 8 bytes at out. t: the table, codeMap:
 * its 16-byte position -> code map (as a vector). grid: the grid path with the identity code map
 * (NF4, whose codes are sorted positions); otherwise the count path and the map.
 */
@inline function encode16(out: usize, x: usize, inv: v128, t: usize, codeMap: v128, grid: bool): void {
  const s0 = f32x4.mul(v128.load(x), inv);
  const s1 = f32x4.mul(v128.load(x, 16), inv);
  const s2 = f32x4.mul(v128.load(x, 32), inv);
  const s3 = f32x4.mul(v128.load(x, 48), inv);
  const codes = grid ? positionsByGrid(s0, s1, s2, s3, t) : swizzleInRange(codeMap, positionsByCount(s0, s1, s2, s3, t));
  // 16-bit lane k holds code 2k (low byte) and code 2k+1 (high byte): (2k << 4) | (2k+1).
  const pairs = v128.or(v128.and(i16x8.shl(codes, 4), i16x8.splat(0xf0)), i16x8.shr_u(codes, 8));
  v128.store64_lane(out, i8x16.narrow_i16x8_u(pairs, pairs), 0);
}

/** Scalar twin for partial blocks and block sizes that are not multiples of 16. */
function quantizeBlockScalar(packed: usize, x: usize, start: i32, len: i32, amax: f32, partial: bool, zeroCode: u32, table: usize): void {
  const codeMap = table + CODE_MAP_OFFSET;
  const clamped: f32 = amax > ABSMAX_FLOOR ? amax : ABSMAX_FLOOR;
  const inv: f32 = <f32>1 / clamped;
  for (let j = 0; j < len; j++) {
    const i = start + j;
    const v = load<f32>(x + (<usize>i << 2));
    const s = clampUnit(partial ? v / clamped : v * inv);
    const q = <u32>load<u8>(codeMap + <usize>sortedPosition(s, table));
    const byteAt = packed + (<usize>i >> 1);
    if ((i & 1) == 0) store<u8>(byteAt, <u8>((q << 4) | zeroCode));
    else store<u8>(byteAt, <u8>((<u32>load<u8>(byteAt) & 0xf0) | q));
  }
}

/**
 * Quantizes x[0..n) (f32 at x) into packed[ceil(n/2)] and absmax[ceil(n/blockSize)]. Any blockSize
 * >= 1; the SIMD path needs it to be a multiple of 16 (x, packed: any alignment).
 */
export function quantizeBlockwise4(packed: usize, absmax: usize, x: usize, n: i32, blockSize: i32, zeroCode: i32, table: usize): void {
  const nBlocks = (n + blockSize - 1) / blockSize;
  const simd = blockSize % 16 == 0;
  const codeMap = v128.load(table + CODE_MAP_OFFSET);
  const grid = load<i32>(table + GRID_FLAG_OFFSET) == GRID_IDENTITY;
  for (let b = 0; b < nBlocks; b++) {
    const start = b * blockSize;
    const len = min(blockSize, n - start);
    const partial = len < blockSize;
    if (simd && !partial) {
      const amax = absmaxSimd(x + (<usize>start << 2), len);
      const clamped: f32 = amax > ABSMAX_FLOOR ? amax : ABSMAX_FLOOR;
      const inv = f32x4.splat(<f32>1 / clamped);
      if (grid) {
        for (let j = 0; j < len; j += 16) encode16(packed + (<usize>(start + j) >> 1), x + (<usize>(start + j) << 2), inv, table, codeMap, true);
      } else {
        for (let j = 0; j < len; j += 16) encode16(packed + (<usize>(start + j) >> 1), x + (<usize>(start + j) << 2), inv, table, codeMap, false);
      }
      store<f32>(absmax + (<usize>b << 2), amax);
      continue;
    }
    let amax: f32 = 0;
    for (let j = 0; j < len; j++) {
      const a = abs<f32>(load<f32>(x + (<usize>(start + j) << 2)));
      if (a > amax) amax = a;
    }
    quantizeBlockScalar(packed, x, start, len, amax, partial, <u32>zeroCode, table);
    store<f32>(absmax + (<usize>b << 2), partial ? (amax > ABSMAX_FLOOR ? amax : ABSMAX_FLOOR) : amax);
  }
}
