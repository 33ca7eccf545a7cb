// The short seeded subset of `npm run fuzz` (scripts/fuzz.ts) that runs with the normal tests:
// a few hundred cases per format, each of which must end in success or a typed QloraError,
// within the time and allocation bounds of harness.ts, and none may hang its worker.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FUZZ_TARGETS } from './targets.js';
import { runFuzz } from './runner.js';

/** Fewer for the slow targets: a case builds a whole tokenizer. */
const CASES: Readonly<Record<string, number>> = { tokenizer: 150, dataset: 150 };
const DEFAULT_CASES = 300;
const SEED = 1401;

for (const target of FUZZ_TARGETS) {
  test(`fuzz subset: ${target.format}`, async () => {
    const [r] = await runFuzz({ formats: [target.format], cases: CASES[target.format] ?? DEFAULT_CASES, seed: SEED, hangBoundMs: 20_000 });
    const detail = r.examples.map((e) => `case ${e.index} ${e.error}: ${e.message.split('\n')[0]}\n  ${e.spec}`).join('\n');
    assert.equal(r.failures, 0, `${r.failures} failing cases:\n${detail}`);
    assert.equal(r.cases, r.success + r.typed);
    // The mutations must reach both outcomes, or the generator has collapsed.
    assert.ok(r.success > 0 && r.typed > 0, `success ${r.success}, typed ${r.typed}`);
  });
}
