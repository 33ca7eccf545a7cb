// Deliberately broken parsers for the harness self-test (harness.test.ts): each must be caught
// by the harness as a failure of its kind. Not part of `npm run fuzz`.

import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError } from '../../src/errors.js';
import type { FuzzTarget } from './harness.js';

const lengthField: fc.Arbitrary<number> = fc.constantFrom(2 ** 30, 2 ** 31 - 1);

/** Reads a u32 length and allocates it without checking it against the file size. */
function readLength(dir: string): number {
  const b = readFileSync(join(dir, 'f.bin'));
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0, true);
}

const file = (n: number): Record<string, Uint8Array> => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setUint32(0, n, true);
  return { 'f.bin': b };
};

export const FUZZ_TARGETS: ReadonlyArray<FuzzTarget<unknown>> = [
  { format: 'allocates-from-length', cases: lengthField, materialize: (n) => file(n as number), run: (dir) => void new Uint8Array(readLength(dir)) },
  { format: 'allocates-array-from-length', cases: lengthField, materialize: (n) => file(n as number), run: (dir) => void new Array<string>(readLength(dir)) },
  {
    format: 'wraps-allocation-error',
    cases: lengthField,
    materialize: (n) => file(n as number),
    run: (dir) => {
      try {
        void Buffer.alloc(readLength(dir));
      } catch (cause) {
        throw new FormatError('wrapped', { cause });
      }
    },
  },
  { format: 'untyped-error', cases: fc.nat(), materialize: (n) => file(n as number), run: (dir) => void (JSON.parse('{') as unknown, readLength(dir)) },
  {
    format: 'hangs',
    cases: fc.nat({ max: 3 }),
    materialize: (n) => file(n as number),
    run: (dir) => {
      for (let i = readLength(dir); i >= 0; i = i === 2 ? i : i - 1) { /* stuck at 2 */ }
    },
  },
  { format: 'typed', cases: fc.nat(), materialize: (n) => file(n as number), run: (dir) => { if (readLength(dir) % 2 === 1) throw new FormatError('odd'); } },
];
