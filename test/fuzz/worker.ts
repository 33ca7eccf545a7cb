// Worker thread of the fuzz runner: runs cases [from, to) of one format and reports each to the
// parent: a heartbeat before every case (so a hang is seen and the worker terminated), then its
// result. Runs in a worker so the allocation guard's global wrappers and any runaway case stay
// out of the parent.

import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { describeSpec, runCase, sampleSpecs, type CaseResult } from './harness.js';
import type { FuzzTarget } from './harness.js';

export interface WorkerJob {
  /** Module exporting FUZZ_TARGETS (targets.ts, or the harness self-test's targets). */
  targetsModule: string;
  format: string;
  seed: number;
  from: number;
  to: number;
  dir: string;
}

export type WorkerMessage =
  | { type: 'start'; index: number }
  | { type: 'result'; index: number; result: CaseResult; spec: string | null }
  | { type: 'done'; peakRssMb: number };

// `node --test dist/test/` loads every file of the folder, this one too: outside a worker it does nothing.
if (parentPort !== null) {
  const job = workerData as WorkerJob;
  const port = parentPort;
  const { FUZZ_TARGETS } = (await import(job.targetsModule)) as { FUZZ_TARGETS: ReadonlyArray<FuzzTarget<unknown>> };
  const target = FUZZ_TARGETS.find((t) => t.format === job.format)!;
  const specs = sampleSpecs(target, job.seed, job.from, job.to);
  for (let i = 0; i < specs.length; i++) {
    const index = job.from + i;
    port.postMessage({ type: 'start', index } satisfies WorkerMessage);
    const result = runCase(target, specs[i], job.dir);
    port.postMessage({ type: 'result', index, result, spec: result.outcome === 'failure' ? describeSpec(specs[i]) : null } satisfies WorkerMessage);
  }
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  port.postMessage({ type: 'done', peakRssMb: hwm === null ? 0 : Number(hwm[1]) / 1024 } satisfies WorkerMessage);
}
