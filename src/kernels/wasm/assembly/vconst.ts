// Vector constants that hot loops keep in registers, stored in the module's static data and
// loaded, rather than written as splats of literals. V8 12 and later (Node 22+) rematerialize a
// constant vector at every use inside a loop instead of keeping it in a register: three
// instructions, a memory load among them, before each pmaddwd or nibble mask (measured on Node
// 24.22: the int8 GEMM at 0.67x Node 20's speed, the int8 GEMV at 0.85x). A loaded value cannot be
// rematerialized, so it stays in a register as Node 20 kept the literal. Callers load each once
// per function, outside their loops. (The static bytes sit below the heap base; every instance
// over the shared memory writes the same bytes there.)
// Not here: constants that cost one instruction to rebuild (zero: vpxor).

const ONES_I16: usize = memory.data<u16>([1, 1, 1, 1, 1, 1, 1, 1], 16);
const NIBBLE_MASK: usize = memory.data<u8>([15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15], 16);

/** i16x8.splat(1): the `ones` operand of act-i8.ts dotI8Add's split form. */
@inline export function onesI16(): v128 {
  return v128.load(ONES_I16);
}

/** i8x16.splat(0x0f): the low-nibble mask of packed 4-bit codes. */
@inline export function nibbleMask(): v128 {
  return v128.load(NIBBLE_MASK);
}
