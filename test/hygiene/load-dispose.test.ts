// Resource hygiene: loading and disposing a model repeatedly in one process does not leak
// (RSS flat after the first cycle, file descriptors unchanged), and disposing the kernels
// releases their worker threads and descriptors. Counts come from /proc/self (Linux only).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { createKernels } from '../../src/kernels/index.js';
import { loadModel } from '../../src/model/load.js';
import { fixture } from '../helpers/shared.js';
import { rssMb } from '../helpers/memory.js';

const linux = process.platform === 'linux';
const fds = (): number => readdirSync('/proc/self/fd').length;
const threads = (): number => readdirSync('/proc/self/task').length;
/** RSS growth allowed between cycle 1 and the last one (allocator and JIT noise, not a model's worth). */
const RSS_SLACK_MB = 24;
const CYCLES = 5;

test('model load + dispose cycles and kernel dispose release memory, descriptors and threads', { skip: !linux }, async () => {
  const fdsBefore = fds();
  const threadsBefore = threads();
  const kernels = await createKernels({ backend: 'wasm', threads: 2 });
  const ids = Int32Array.from({ length: 16 }, (_, i) => (i * 37) % 512);
  const cycle = async (): Promise<void> => {
    const model = await loadModel(fixture('bnb-models', 'stories260K-nf4-dq'), { kernels });
    model.forward(ids, 1, ids.length, { logits: 'last' });
    model.dispose();
  };
  await cycle();
  global.gc?.();
  const rssAfterFirst = rssMb();
  const fdsAfterFirst = fds();
  for (let i = 1; i < CYCLES; i++) await cycle();
  global.gc?.();
  assert.equal(fds(), fdsAfterFirst, 'file descriptors leaked by load/dispose');
  assert.ok(rssMb() - rssAfterFirst < RSS_SLACK_MB, `RSS grew ${(rssMb() - rssAfterFirst).toFixed(1)} MiB over ${CYCLES - 1} cycles`);
  await kernels.dispose();
  // Worker exit is asynchronous at the OS level: give the threads a moment to go.
  for (let i = 0; i < 50 && threads() > threadsBefore; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(threads(), threadsBefore, 'worker threads still running after kernels.dispose()');
  assert.equal(fds(), fdsBefore, 'file descriptors still open after kernels.dispose()');
});
