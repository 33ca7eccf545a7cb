// Mutations of real fixture files, as fast-check arbitraries of small, printable descriptions
// (so a failing case can be reported and replayed) plus the functions that apply them.
// Byte level: bit flips, byte sets, truncation, inserted / deleted / copied (overlapping) runs,
// and length / count / offset fields (located by the format's own field finder) set to huge,
// negative-as-unsigned, off-by-one or file-size values. JSON level: a value anywhere in the tree
// replaced by a hostile one, a key removed or added, and a duplicated key.
// Not here: which files a format mutates (targets-*.ts) or how cases run (harness.ts).

import fc from 'fast-check';

/** A length, count or offset field of a binary file: where it is and how wide (little-endian). */
export interface NumericField {
  readonly at: number;
  readonly width: 4 | 8;
}

export type ByteOp =
  | { readonly op: 'flip'; readonly at: number; readonly bit: number }
  | { readonly op: 'set'; readonly at: number; readonly value: number }
  | { readonly op: 'truncate'; readonly at: number }
  | { readonly op: 'insert'; readonly at: number; readonly bytes: readonly number[] }
  | { readonly op: 'delete'; readonly at: number; readonly length: number }
  | { readonly op: 'copy'; readonly from: number; readonly to: number; readonly length: number }
  | { readonly op: 'field'; readonly index: number; readonly value: FieldValue };

/** What a numeric field is set to; resolved against the field's old value and the file size. */
export type FieldValue = { readonly kind: 'const'; readonly value: string } | { readonly kind: 'relative'; readonly to: 'old' | 'size'; readonly delta: number };

const U64_SPECIALS = ['0', '1', '2147483647', '2147483648', '4294967295', '4294967296', '9007199254740993', '9223372036854775807', '9223372036854775808', '18446744073709551615', '18446744073709551608'];

const fieldValue: fc.Arbitrary<FieldValue> = fc.oneof(
  fc.constantFrom(...U64_SPECIALS).map((value) => ({ kind: 'const', value }) as const),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((v) => ({ kind: 'const', value: v.toString() }) as const),
  fc.record({ kind: fc.constant('relative' as const), to: fc.constantFrom('old' as const, 'size' as const), delta: fc.integer({ min: -64, max: 64 }) }),
);

const position = fc.nat({ max: 0x7fffffff });

/** One byte-level mutation; positions are taken modulo the current length when applied. */
export const byteOp: fc.Arbitrary<ByteOp> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('flip' as const), at: position, bit: fc.nat({ max: 7 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('set' as const), at: position, value: fc.constantFrom(0, 0xff, 0x7f, 0x80, 0x22, 0x5c, 0x7b, 0x7d) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('truncate' as const), at: position }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('insert' as const), at: position, bytes: fc.array(fc.nat({ max: 255 }), { minLength: 1, maxLength: 16 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), at: position, length: fc.integer({ min: 1, max: 64 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('copy' as const), from: position, to: position, length: fc.integer({ min: 1, max: 256 }) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('field' as const), index: fc.nat({ max: 0x7fffffff }), value: fieldValue }) },
);

/** 1-4 byte mutations, mostly one (a single fault reaches deeper into the parser). */
export const byteOps: fc.Arbitrary<readonly ByteOp[]> = fc.oneof({ weight: 3, arbitrary: fc.tuple(byteOp) }, { weight: 1, arbitrary: fc.array(byteOp, { minLength: 2, maxLength: 4 }) });

function resolveField(bytes: Uint8Array, f: NumericField, v: FieldValue): bigint {
  const mask = f.width === 8 ? (1n << 64n) - 1n : (1n << 32n) - 1n;
  if (v.kind === 'const') return BigInt(v.value) & mask;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const old = f.width === 8 ? dv.getBigUint64(f.at, true) : BigInt(dv.getUint32(f.at, true));
  const base = v.to === 'old' ? old : BigInt(bytes.length);
  return (base + BigInt(v.delta)) & mask;
}

/** Applies the ops in order to a copy; `fields` lists the numeric fields of the unmutated file. */
export function applyByteOps(original: Uint8Array, ops: readonly ByteOp[], fields: readonly NumericField[] = []): Uint8Array {
  let b = Uint8Array.from(original);
  for (const o of ops) {
    const n = b.length;
    switch (o.op) {
      case 'flip':
        if (n > 0) b[o.at % n] ^= 1 << o.bit;
        break;
      case 'set':
        if (n > 0) b[o.at % n] = o.value;
        break;
      case 'truncate':
        b = b.slice(0, n === 0 ? 0 : o.at % n);
        break;
      case 'insert': {
        const at = o.at % (n + 1);
        const out = new Uint8Array(n + o.bytes.length);
        out.set(b.subarray(0, at));
        out.set(o.bytes, at);
        out.set(b.subarray(at), at + o.bytes.length);
        b = out;
        break;
      }
      case 'delete': {
        if (n === 0) break;
        const at = o.at % n;
        const out = new Uint8Array(n - Math.min(o.length, n - at));
        out.set(b.subarray(0, at));
        out.set(b.subarray(at + o.length), at);
        b = out;
        break;
      }
      case 'copy': {
        if (n === 0) break;
        const from = o.from % n;
        const to = o.to % n;
        const len = Math.min(o.length, n - from, n - to);
        b.copyWithin(to, from, from + len);
        break;
      }
      case 'field': {
        const usable = fields.filter((f) => f.at + f.width <= n);
        if (usable.length === 0) break;
        const f = usable[o.index % usable.length];
        const v = resolveField(b, f, o.value);
        const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
        if (f.width === 8) dv.setBigUint64(f.at, v, true);
        else dv.setUint32(f.at, Number(v), true);
        break;
      }
    }
  }
  return b;
}

// ------------------------------------------------------------------------------------------------
// JSON

export type JsonOp =
  | { readonly op: 'replace'; readonly path: number; readonly value: unknown }
  | { readonly op: 'remove'; readonly path: number }
  | { readonly op: 'add'; readonly path: number; readonly key: string; readonly value: unknown };

/** Values that break assumptions: huge, negative, fractional, wrong type, deep, long, empty. */
export const hostileJsonValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(0, -1, 1, 2, 3, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 2 ** 64, -(2 ** 63), 1e308, -1e308, 1e-320, 0.5, -0.5, 1.5, -0,
    '', ' ', 'null', 'NaN', 'F16', 'F32', 'U8', 'BF16', 'nf4', 'fp4', 'float32', 'bfloat16', 'llama', 'LORA', 'q_proj', 'model.layers.0.self_attn.q_proj',
    '\u0000', '\uffff', '../../etc/passwd', null, true, false, [], {}, [0], [-1], [1, 1], [2 ** 40, 2 ** 40], [0, 2 ** 53]),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ maxLength: 40 }),
  fc.array(fc.oneof(fc.integer({ min: -3, max: 1 << 20 }), fc.constant(2 ** 40)), { maxLength: 5 }),
  fc.jsonValue({ maxDepth: 3 }),
);

export const jsonOp: fc.Arbitrary<JsonOp> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('replace' as const), path: fc.nat(), value: hostileJsonValue }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('remove' as const), path: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('add' as const), path: fc.nat(), key: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('__proto__', 'constructor', 'quant_type', 'r', 'dtype')), value: hostileJsonValue }) },
);

export const jsonOps: fc.Arbitrary<readonly JsonOp[]> = fc.array(jsonOp, { minLength: 1, maxLength: 3 });

type Container = Record<string, unknown> | unknown[];

/** Every (container, key) slot of a JSON tree, depth-first (the root is not a slot). */
function slots(root: unknown): Array<[Container, string | number]> {
  const out: Array<[Container, string | number]> = [];
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (Array.isArray(v)) {
      v.forEach((child, i) => { out.push([v, i]); stack.push(child); });
    } else if (v !== null && typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) { out.push([v as Record<string, unknown>, k]); stack.push(child); }
    }
  }
  return out;
}

function containers(root: unknown): Container[] {
  const out: Container[] = [];
  if (root !== null && typeof root === 'object') out.push(root as Container);
  for (const [c, k] of slots(root)) {
    const v = (c as Record<string | number, unknown>)[k];
    if (v !== null && typeof v === 'object') out.push(v as Container);
  }
  return out;
}

/** Applies JSON ops to a deep copy of `value`. */
export function applyJsonOps(value: unknown, ops: readonly JsonOp[]): unknown {
  const root = structuredClone(value);
  for (const o of ops) {
    if (o.op === 'add') {
      const cs = containers(root);
      if (cs.length === 0) continue;
      const c = cs[o.path % cs.length];
      if (Array.isArray(c)) c.push(o.value);
      else Object.defineProperty(c, o.key, { value: o.value, enumerable: true, writable: true, configurable: true });
      continue;
    }
    const all = slots(root);
    if (all.length === 0) continue;
    const [c, k] = all[o.path % all.length];
    if (o.op === 'replace') (c as Record<string | number, unknown>)[k] = o.value;
    else if (Array.isArray(c)) c.splice(k as number, 1);
    else delete c[k as string];
  }
  return root;
}

/** JSON text edits that a tree cannot express: a duplicated key, deep nesting, a BOM, garbage. */
export type JsonTextOp = { readonly op: 'dupkey'; readonly at: number } | { readonly op: 'nest'; readonly depth: number } | { readonly op: 'bom' } | { readonly op: 'none' };

export const jsonTextOp: fc.Arbitrary<JsonTextOp> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ op: 'none' as const }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('dupkey' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('nest' as const), depth: fc.constantFrom(1000, 20000, 200000) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'bom' as const }) },
);

export function applyJsonTextOp(text: string, o: JsonTextOp): string {
  switch (o.op) {
    case 'none':
      return text;
    case 'bom':
      return `\ufeff${text}`;
    case 'nest': {
      // Deep nesting inside the first object: recursive walkers overflow the stack on this.
      const brace = text.indexOf('{');
      if (brace < 0) return '['.repeat(o.depth) + ']'.repeat(o.depth);
      return `${text.slice(0, brace + 1)}"deep":${'['.repeat(o.depth)}${']'.repeat(o.depth)},${text.slice(brace + 1)}`;
    }
    case 'dupkey': {
      // Repeat the first "key": value pair found after a pseudo-random position.
      const re = /"([^"\\]{1,40})"\s*:\s*("[^"\\]*"|-?[0-9.eE+]+|true|false|null)/g;
      const matches = [...text.matchAll(re)];
      if (matches.length === 0) return text;
      const m = matches[o.at % matches.length];
      const end = m.index + m[0].length;
      return `${text.slice(0, end)},${m[0]}${text.slice(end)}`;
    }
  }
}

/** A JSON file mutated at the tree level, then the text level, then (sometimes) the byte level. */
export interface JsonMutation {
  readonly tree: readonly JsonOp[];
  readonly text: JsonTextOp;
  readonly bytes: readonly ByteOp[];
}

export const jsonMutation: fc.Arbitrary<JsonMutation> = fc.record({
  tree: fc.oneof({ weight: 4, arbitrary: jsonOps }, { weight: 1, arbitrary: fc.constant([]) }),
  text: jsonTextOp,
  bytes: fc.oneof({ weight: 4, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: byteOps }),
});

const encoder = new TextEncoder();

export function applyJsonMutation(value: unknown, m: JsonMutation, indent?: number): Uint8Array {
  const text = applyJsonTextOp(JSON.stringify(applyJsonOps(value, m.tree), null, indent), m.text);
  return applyByteOps(encoder.encode(text), m.bytes);
}
