// The fuzz harness: a target per format turns a generated case (a small printable description)
// into files in a scratch folder and runs the parser on them; the harness classifies every case.
// A case passes when it succeeds or throws a QloraError (src/errors.ts); it fails when it throws
// anything else (TypeError, RangeError, plain Error...), asks for more memory than a bound
// proportional to its input (alloc-guard.ts), or runs longer than a time bound. A hang that never
// returns is caught one level up: runner.ts runs targets in a worker and terminates it.

import fc from 'fast-check';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { QloraError } from '../../src/errors.js';
import { installAllocationGuard, withAllocationBudget } from './alloc-guard.js';

/** Files of one case, by path relative to the case folder. */
export type CaseFiles = Record<string, Uint8Array>;

export interface FuzzTarget<Spec> {
  readonly format: string;
  /** Cases: property-based generation and fixture mutations, as one arbitrary. */
  readonly cases: fc.Arbitrary<Spec>;
  /** Files the case consists of. */
  materialize(spec: Spec): CaseFiles;
  /** Parses (and uses) the files in `dir`; returns normally or throws. */
  run(dir: string): void;
}

/** Bytes a case may ask for in one request / in total: a multiple of its input plus a constant. */
export const ALLOC_SINGLE_FACTOR = 16;
export const ALLOC_TOTAL_FACTOR = 64;
export const ALLOC_SLACK_BYTES = 16 << 20;
/** A case slower than this is counted as a hang (the machine is shared: generous). */
export const CASE_TIME_BOUND_MS = 5000;

export type Outcome = 'success' | 'typed' | 'failure';

export interface CaseResult {
  readonly outcome: Outcome;
  /** Error name for typed errors and failures. */
  readonly error?: string;
  readonly message?: string;
  readonly ms: number;
  readonly inputBytes: number;
  readonly largestAllocation: number;
}

export interface FormatCounts {
  format: string;
  cases: number;
  success: number;
  typed: number;
  failures: number;
  /** Typed errors by class name. */
  typedByClass: Record<string, number>;
  slowestMs: number;
  /** Largest single allocation / max(input bytes, 64 KiB) over all cases (small inputs get a floor). */
  worstAllocationRatio: number;
  /** First few failures, with their case description for replay. */
  examples: Array<{ index: number; spec: string; error: string; message: string }>;
}

export function emptyCounts(format: string): FormatCounts {
  return { format, cases: 0, success: 0, typed: 0, failures: 0, typedByClass: {}, slowestMs: 0, worstAllocationRatio: 0, examples: [] };
}

function writeCase(dir: string, files: CaseFiles): number {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  let bytes = 0;
  for (const [rel, data] of Object.entries(files)) {
    const path = join(dir, rel);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, data);
    bytes += data.byteLength;
  }
  return bytes;
}

/** Runs one case in this thread. */
export function runCase<Spec>(target: FuzzTarget<Spec>, spec: Spec, dir: string): CaseResult {
  installAllocationGuard();
  const inputBytes = writeCase(dir, target.materialize(spec));
  const single = ALLOC_SINGLE_FACTOR * inputBytes + ALLOC_SLACK_BYTES;
  const total = ALLOC_TOTAL_FACTOR * inputBytes + ALLOC_SLACK_BYTES;
  const t0 = performance.now();
  let thrown: unknown = undefined;
  let threw = false;
  const { stats } = withAllocationBudget(single, total, () => {
    try {
      target.run(dir);
    } catch (err) {
      threw = true;
      thrown = err;
    }
  });
  const ms = performance.now() - t0;
  const base = { ms, inputBytes, largestAllocation: stats.largest };
  if (stats.violation !== null) return { ...base, outcome: 'failure', error: 'AllocationBudget', message: stats.violation };
  if (ms > CASE_TIME_BOUND_MS) return { ...base, outcome: 'failure', error: 'Slow', message: `case took ${ms.toFixed(0)} ms (bound ${CASE_TIME_BOUND_MS} ms)` };
  if (!threw) return { ...base, outcome: 'success' };
  if (thrown instanceof QloraError) return { ...base, outcome: 'typed', error: thrown.name, message: thrown.message };
  const e = thrown instanceof Error ? thrown : new Error(String(thrown));
  return { ...base, outcome: 'failure', error: e.name, message: `${e.message}\n${e.stack ?? ''}` };
}

/** Cases `from..to` of a seeded run, deterministic for (seed, index): the same spec every time. */
export function sampleSpecs<Spec>(target: FuzzTarget<Spec>, seed: number, from: number, to: number): Spec[] {
  if (to <= from) return [];
  return fc.sample(target.cases, { seed, numRuns: to }).slice(from);
}

/** Adds one case to the counts; `spec` is the case's description (kept for the first failures). */
export function addResult(c: FormatCounts, index: number, spec: string | null, r: CaseResult, maxExamples = 5): void {
  c.cases++;
  if (r.ms > c.slowestMs) c.slowestMs = r.ms;
  c.worstAllocationRatio = Math.max(c.worstAllocationRatio, r.largestAllocation / Math.max(r.inputBytes, 1 << 16));
  if (r.outcome === 'success') c.success++;
  else if (r.outcome === 'typed') {
    c.typed++;
    c.typedByClass[r.error!] = (c.typedByClass[r.error!] ?? 0) + 1;
  } else {
    c.failures++;
    if (c.examples.length < maxExamples) c.examples.push({ index, spec: spec ?? '', error: r.error!, message: r.message! });
  }
}

export function describeSpec(spec: unknown): string {
  const s = JSON.stringify(spec, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? `<${v.length} bytes>` : v));
  return s.length > 2000 ? `${s.slice(0, 2000)}...` : s;
}
