// The fuzz harness catches what it claims to: an allocation from an unchecked length field
// (even when the parser wraps the resulting error in a typed one), untyped errors and hangs,
// while typed errors and successes pass. The broken parsers are in selftest-targets.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFuzz } from './runner.js';

const SELFTEST = new URL('./selftest-targets.js', import.meta.url);
const run = async (format: string, cases: number, hangBoundMs = 20_000) => (await runFuzz({ formats: [format], cases, seed: 7, targetsModule: SELFTEST, hangBoundMs }))[0];

test('an allocation sized by an unchecked length field is a failure', async () => {
  for (const format of ['allocates-from-length', 'allocates-array-from-length', 'wraps-allocation-error']) {
    const r = await run(format, 5);
    assert.equal(r.failures, 5, format);
    assert.equal(r.examples[0].error, 'AllocationBudget', format);
  }
});

test('an untyped error is a failure, a typed one is not', async () => {
  const bad = await run('untyped-error', 4);
  assert.equal(bad.failures, 4);
  assert.equal(bad.examples[0].error, 'SyntaxError');
  const good = await run('typed', 40);
  assert.equal(good.failures, 0);
  assert.ok(good.success > 0 && good.typed > 0);
  assert.equal(good.success + good.typed, 40);
});

test('a hang is caught, its worker terminated, and the run goes on', async () => {
  const r = await run('hangs', 6, 1500);
  // Lengths 2 and 3 loop forever; 0 and 1 finish.
  assert.ok(r.hangs > 0 && r.hangs < 6, `hangs ${r.hangs}`);
  assert.equal(r.cases, 6);
  assert.equal(r.failures, r.hangs);
});
