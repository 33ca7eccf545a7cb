// The ggml type table: ids, names and block arithmetic (FORMATS.md §7.1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BLOCK_LAYOUTS, GgmlType, QK32, QK_K, ggmlTypeByName, ggmlTypeName, ggmlTypeTraits, knownGgmlTypes } from '../../src/quant/ggml/types.js';

test('declared block layouts sum to the block sizes of the traits table', () => {
  for (const [id, layout] of Object.entries(BLOCK_LAYOUTS)) {
    const t = ggmlTypeTraits(Number(id))!;
    assert.equal(layout!.reduce((s, f) => s + f.bytes, 0), t.blockBytes, t.name);
    assert.deepEqual(t.layout, layout);
  }
});

test('types used by qlora-ts have the sizes and bits/weight of FORMATS.md §7.1', () => {
  const expected: Array<[GgmlType, number, number, number]> = [
    [GgmlType.F32, 1, 4, 32], [GgmlType.F16, 1, 2, 16], [GgmlType.Q4_0, 32, 18, 4.5], [GgmlType.Q4_1, 32, 20, 5],
    [GgmlType.Q8_0, 32, 34, 8.5], [GgmlType.Q4_K, 256, 144, 4.5], [GgmlType.Q6_K, 256, 210, 6.5625],
    [GgmlType.IQ4_NL, 32, 18, 4.5], [GgmlType.BF16, 1, 2, 16],
  ];
  for (const [type, elems, bytes, bpw] of expected) {
    const t = ggmlTypeTraits(type)!;
    assert.equal(t.blockElems, elems, t.name);
    assert.equal(t.blockBytes, bytes, t.name);
    assert.equal((8 * t.blockBytes) / t.blockElems, bpw, t.name);
  }
});

test('ids and names follow ggml.h; removed ids are unknown', () => {
  assert.equal(GgmlType.Q4_0, 2);
  assert.equal(GgmlType.IQ4_NL, 20);
  assert.equal(GgmlType.BF16, 30);
  assert.equal(GgmlType.MXFP4, 39);
  for (const removed of [4, 5, 31, 32, 33, 36, 37, 38, 40, 1000]) assert.equal(ggmlTypeTraits(removed), undefined, String(removed));
  assert.equal(ggmlTypeName(4), 'type 4');
  assert.equal(ggmlTypeByName('q4_k'), GgmlType.Q4_K);
  const all = knownGgmlTypes();
  assert.equal(all.length, 32);
  for (const t of all) {
    assert.equal(GgmlType[t.type], t.name);
    assert.ok(t.blockElems === 1 || t.blockElems === QK32 || t.blockElems === QK_K, t.name);
  }
  // Selected K/IQ sizes against gguf-py GGML_QUANT_SIZES.
  const sizes: Record<string, number> = { Q2_K: 84, Q3_K: 110, Q5_K: 176, Q8_K: 292, IQ2_XXS: 66, IQ2_XS: 74, IQ3_XXS: 98, IQ1_S: 50, IQ3_S: 110, IQ2_S: 82, IQ4_XS: 136, IQ1_M: 56, TQ1_0: 54, TQ2_0: 66, MXFP4: 17, Q5_0: 22, Q5_1: 24, Q8_1: 36 };
  for (const [name, bytes] of Object.entries(sizes)) assert.equal(ggmlTypeTraits(ggmlTypeByName(name)!)!.blockBytes, bytes, name);
});
