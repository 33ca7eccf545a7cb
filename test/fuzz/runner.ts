// Runs fuzz targets in worker threads with a watchdog: a case that does not finish within the
// hang bound gets its worker terminated, is counted as a failure (with its description for
// replay), and the run continues with the next case in a fresh worker. Used by `npm run fuzz`
// (scripts/fuzz.ts) and by the short seeded subset in the test suite.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { addResult, describeSpec, emptyCounts, sampleSpecs, type FormatCounts, type FuzzTarget } from './harness.js';
import type { WorkerJob, WorkerMessage } from './worker.js';

/** A case still running after this long is a hang (a slow but finishing case is caught by the harness bound). */
export const HANG_BOUND_MS = 30_000;

export interface FuzzRunOptions {
  formats: readonly string[];
  cases: number;
  seed: number;
  /** Scratch folder parent; default os.tmpdir(). */
  scratch?: string;
  hangBoundMs?: number;
  /** Module exporting FUZZ_TARGETS; default targets.ts. */
  targetsModule?: URL;
  onProgress?: (format: string, done: number, total: number) => void;
}

export interface FormatReport extends FormatCounts {
  hangs: number;
  seconds: number;
  peakRssMb: number;
}

/** The compiled worker beside this file (dist/test/fuzz: tsx loaders do not reach workers on Node 20). */
const workerUrl = new URL('./worker.js', import.meta.url);

/** Runs cases [from, to) in one worker, feeding results to `onResult`; resolves with the index of a hung case, or null. */
function runWorker(job: WorkerJob, hangBoundMs: number, onResult: (m: Extract<WorkerMessage, { type: 'result' }>) => void): Promise<{ hungAt: number | null; peakRssMb: number }> {
  return new Promise((resolvePromise, reject) => {
    const worker = new Worker(workerUrl, { workerData: job });
    let current = job.from;
    let lastBeat = Date.now();
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearInterval(timer);
      fn();
    };
    const timer = setInterval(() => {
      if (Date.now() - lastBeat > hangBoundMs) settle(() => void worker.terminate().then(() => resolvePromise({ hungAt: current, peakRssMb: 0 })));
    }, 250);
    worker.on('message', (m: WorkerMessage) => {
      lastBeat = Date.now();
      if (m.type === 'start') current = m.index;
      else if (m.type === 'result') onResult(m);
      else settle(() => void worker.terminate().then(() => resolvePromise({ hungAt: null, peakRssMb: m.peakRssMb })));
    });
    worker.on('error', (err) => settle(() => reject(new Error(`fuzz worker for ${job.format} crashed at case ${current}: ${err.message}`, { cause: err }))));
    worker.on('exit', (code) => settle(() => reject(new Error(`fuzz worker for ${job.format} exited (code ${code}) at case ${current}`))));
  });
}

export async function runFuzz(o: FuzzRunOptions): Promise<FormatReport[]> {
  const hangBoundMs = o.hangBoundMs ?? HANG_BOUND_MS;
  const targetsModule = o.targetsModule ?? new URL('./targets.js', import.meta.url);
  const targets = ((await import(targetsModule.href)) as { FUZZ_TARGETS: ReadonlyArray<FuzzTarget<unknown>> }).FUZZ_TARGETS;
  const reports: FormatReport[] = [];
  const scratch = mkdtempSync(join(o.scratch ?? tmpdir(), 'qlora-fuzz-'));
  try {
    for (const format of o.formats) {
      const t0 = performance.now();
      const total = emptyCounts(format);
      let hangs = 0;
      let peakRssMb = 0;
      let from = 0;
      while (from < o.cases) {
        const job: WorkerJob = { targetsModule: targetsModule.href, format, seed: o.seed, from, to: o.cases, dir: join(scratch, format) };
        const r = await runWorker(job, hangBoundMs, (m) => {
          addResult(total, m.index, m.spec, m.result);
          o.onProgress?.(format, m.index + 1, o.cases);
        });
        peakRssMb = Math.max(peakRssMb, r.peakRssMb);
        if (r.hungAt === null) break;
        hangs++;
        const spec = sampleSpecs(targets.find((t) => t.format === format)!, o.seed, r.hungAt, r.hungAt + 1)[0];
        addResult(total, r.hungAt, describeSpec(spec), { outcome: 'failure', error: 'Hang', message: `no result after ${hangBoundMs} ms`, ms: hangBoundMs, inputBytes: 0, largestAllocation: 0 });
        from = r.hungAt + 1;
      }
      reports.push({ ...total, hangs, seconds: (performance.now() - t0) / 1000, peakRssMb });
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return reports;
}
